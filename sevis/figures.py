"""Plotly figures for every view of sevis: pure functions, tidy data in, `go.Figure` out.

Each figure is built from a pandas DataFrame (the data behind it, which export.py writes as CSV/JSON), so
what a student downloads is exactly what the plot shows. Frame builders (`*_frame`) turn sevis results
(excitations, ExcitationStats, knock-out sweeps, SE block lists) into those tables.

Wording is for students: block names as in the paper (SE_stage_block), "channel index", "mean excitation s".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .analysis import ExcitationStats, sample_channels

# One colour per class, stable across figures; "all" is always black.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
ALL_COLOR = "#111111"
FONT = dict(family="Arial, Helvetica, sans-serif", size=13)
S_AXIS = "excitation s"
MEAN_S_AXIS = "mean excitation s"
CHANNEL_AXIS = "channel index"


@dataclass
class Panel:
    """One exportable figure: the plot, the data behind it, and a caption saying what it shows."""

    key: str  # short stem for file names, e.g. "fig6_class_means"
    title: str
    caption: str  # one or two sentences for students (teaching-pack README)
    figure: go.Figure
    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Files that travel with the panel in a teaching pack (file name → bytes), e.g. the input image as PNG.
    files: dict[str, bytes] = field(default_factory=dict)


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


# The title sits at the top of the figure, the legend in its own row(s) under it. Legend rows are counted for a
# plot LEGEND_WRAP_WIDTH px wide (about the app's main column in a 1280 px window) unless the figure sets its own
# width, and every extra row adds to the top margin and the height, so a wrapped legend never covers the title,
# the subplot titles or the plot.
LEGEND_WRAP_WIDTH = 760
TITLE_TOP, LEGEND_TOP, LEGEND_ROW, TITLE_LINE = 12, 42, 22, 20  # px from the top; px per legend row / title line
_CHAR_PX, _ENTRY_PX = 7.0, 46.0  # Arial 13 px: width of a character, and of a legend symbol with its gaps


def legend_rows(fig: go.Figure, width: int | None = None) -> int:
    """Return how many rows the horizontal legend of `fig` takes in a figure `width` px wide (0: no legend)."""
    if fig.layout.showlegend is False:
        return 0
    names: list[str] = []
    for t in fig.data:
        shown = getattr(t, "showlegend", False)  # tables have no legend entry at all
        if shown is False or not t.name or t.type in ("heatmap", "image"):
            continue
        if shown is None and len(fig.data) < 2:
            continue  # plotly shows no legend for a single trace
        key = getattr(t, "legendgroup", None) or t.name
        if key not in names:
            names.append(str(t.name))
    if not names:
        return 0
    avail = (width or fig.layout.width or LEGEND_WRAP_WIDTH) - 30
    title = fig.layout.legend.title.text or ""
    rows, used = 1, _CHAR_PX * len(title) + (10 if title else 0)
    for name in names:
        entry = _ENTRY_PX + _CHAR_PX * len(name)
        if used > 0 and used + entry > avail:
            rows, used = rows + 1, 0.0
        used += entry
    return rows


def _layout(fig: go.Figure, title: str, height: int | None = None, subtitle: str | None = None,
            **kw) -> go.Figure:
    """Apply sevis's common layout: title (and an optional subtitle line) at the top, the legend under it."""
    settings = dict(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=16), subtitle=dict(text=subtitle or ""),
                   yref="container", y=1, yanchor="top", pad=dict(t=TITLE_TOP)),
        template="plotly_white", font=FONT, margin=dict(l=85, r=20, t=95, b=55),
        # The legend sits in its own row under the title, never over subplot titles.
        legend=dict(orientation="h", yref="container", yanchor="top", xref="container", xanchor="left", x=0.01,
                    title_text=""),
    )
    if height:
        settings["height"] = height
    settings.update(kw)
    fig.update_layout(**settings)
    height = fig.layout.height or 450
    title_extra = TITLE_LINE if subtitle else 0  # a subtitle line pushes the legend down
    grouped = any(getattr(t, "legendgroup", None) for t in fig.data)  # groups add plotly's tracegroupgap per row
    row = LEGEND_ROW + ((fig.layout.legend.tracegroupgap or 10) if grouped else 0)
    extra = title_extra + row * max(legend_rows(fig) - 1, 0)
    if extra:
        height += extra
        fig.update_layout(height=height, margin_t=(fig.layout.margin.t or 95) + extra)
    fig.update_layout(legend_y=1 - (LEGEND_TOP + title_extra) / height)
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    return fig


def _grid(n: int, cols: int | None = None) -> tuple[int, int]:
    cols = cols or (1 if n == 1 else 2 if n <= 4 else 3 if n <= 9 else 4)
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def _subplots(titles: Sequence[str], cols: int | None = None, shared_y: bool = True):
    rows, cols = _grid(max(len(titles), 1), cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), shared_yaxes=shared_y,
                        horizontal_spacing=0.06 if cols > 1 else 0.02,
                        vertical_spacing=min(0.12, 0.35 / max(rows - 1, 1)) if rows > 1 else 0.1)
    return fig, rows, cols


def _pos(i: int, cols: int) -> tuple[int, int]:
    return i // cols + 1, i % cols + 1


def _s_range(values: Iterable[float]) -> list[float]:
    """Return a y range that shows [0, 1] for sigmoid gates and more for gates that leave it (relu, tanh)."""
    v = np.asarray(list(values), np.float64)
    v = v[np.isfinite(v)]
    lo = min(0.0, float(v.min())) if v.size else 0.0
    hi = max(1.0, float(v.max())) if v.size else 1.0
    pad = 0.03 * (hi - lo)
    return [lo - pad, hi + pad]


def _label_axes(fig: go.Figure, rows: int, cols: int, n: int, x: str, y: str) -> None:
    """Put the x title under the bottom row and the y title left of the first column only."""
    for i in range(n):
        r, c = _pos(i, cols)
        if r == rows or i + cols >= n:
            fig.update_xaxes(title_text=x, row=r, col=c)
        if c == 1:
            fig.update_yaxes(title_text=y, row=r, col=c)


def _panel_height(rows: int, per_row: int = 230, extra: int = 110) -> int:
    return extra + per_row * rows


# ---------------------------------------------------------------------------------------- frames
def excitation_frame(excitations: Mapping[str, np.ndarray], image: str = "image") -> pd.DataFrame:
    """Return one image's excitations as a long table: image, block, depth, channel, s."""
    frames = []
    for depth, (block, s) in enumerate(excitations.items()):
        s = np.asarray(s, np.float64).ravel()
        frames.append(pd.DataFrame({"image": image, "block": block, "depth": depth,
                                    "channel": np.arange(len(s)), "s": s}))
    if not frames:
        return pd.DataFrame(columns=["image", "block", "depth", "channel", "s"])
    return pd.concat(frames, ignore_index=True)


def topk_frame(topk: Sequence[tuple[str, float]], image: str = "image") -> pd.DataFrame:
    """Return (image, rank, class, probability) rows for one image's top-k list."""
    return pd.DataFrame([{"image": image, "rank": i + 1, "class": c, "probability": float(p)}
                         for i, (c, p) in enumerate(topk)])


def class_depth_frame(stats: ExcitationStats, classes: Sequence[str], blocks: Sequence[str],
                      channels: str = "uniform", n: int | None = 50, seed: int = 0) -> pd.DataFrame:
    """Return per-class mean and std of s at the chosen blocks and channels, plus the "all" rows.

    Columns: block, depth, class, channel, mean, std, images. channels: "all", "first" (the first n)
    or "uniform" (n channels sampled uniformly at random, as the paper does with 50).
    """
    order = {b: i for i, b in enumerate(stats.blocks)}
    unknown = [c for c in classes if c not in stats.classes]
    if unknown:
        raise ValueError(f"unknown class(es): {', '.join(unknown)}")
    counts = stats.count
    rows = []
    for block in blocks:
        mean, std = stats.mean(block), stats.std(block)
        idx = sample_channels(mean.shape[1], n, channels, seed)
        for cls in classes:
            k = stats.classes.index(cls)
            rows.append(pd.DataFrame({"block": block, "depth": order[block], "class": cls, "channel": idx,
                                      "mean": mean[k, idx], "std": std[k, idx], "images": int(counts[k])}))
        rows.append(pd.DataFrame({"block": block, "depth": order[block], "class": "all", "channel": idx,
                                  "mean": stats.overall_mean(block)[idx], "std": stats.overall_std(block)[idx],
                                  "images": int(counts.sum())}))
    if not rows:
        return pd.DataFrame(columns=["block", "depth", "class", "channel", "mean", "std", "images"])
    return pd.concat(rows, ignore_index=True)


def blocks_frame(blocks: Sequence) -> pd.DataFrame:
    """Return the SE blocks (sevis.recorder.SEBlock) as a table for the architecture view."""
    return pd.DataFrame([{
        "block": b.name, "depth": b.index, "stage": b.stage, "channels": b.channels,
        "squeeze width": b.squeeze_channels, "parameters": b.parameters, "type": b.kind, "module path": b.path,
    } for b in blocks], columns=["block", "depth", "stage", "channels", "squeeze width", "parameters", "type",
                                 "module path"])


# ---------------------------------------------------------------------------------------- live
def heat_strip(frame: pd.DataFrame, title: str = "Excitations at every SE block") -> go.Figure:
    """Blocks × channels heat map of s for one image (rows in depth order, top = first block).

    Blocks have different channel counts; cells past a block's last channel are left empty.
    """
    blocks = list(dict.fromkeys(frame["block"]))
    width = int(frame["channel"].max()) + 1 if len(frame) else 1
    z = np.full((len(blocks), width), np.nan)
    for i, b in enumerate(blocks):
        part = frame[frame["block"] == b]
        z[i, part["channel"].to_numpy()] = part["s"].to_numpy()
    lo, hi = _s_range(frame["s"]) if len(frame) else (0.0, 1.0)
    fig = go.Figure(go.Heatmap(
        z=z, x=np.arange(width), y=blocks, zmin=max(lo, 0.0) if lo >= -0.05 else lo, zmax=min(hi, 1.0) if hi <= 1.05 else hi,
        colorscale="Viridis", colorbar=dict(title=dict(text="s", side="right"), thickness=12),
        hovertemplate="block %{y}<br>channel %{x}<br>s = %{z:.3f}<extra></extra>", hoverongaps=False,
    ))
    fig.update_yaxes(autorange="reversed", title_text="SE block (shallow → deep)", type="category")
    fig.update_xaxes(title_text=CHANNEL_AXIS)
    return _layout(fig, title, height=max(260, 110 + 24 * len(blocks)))


def block_lines(frame: pd.DataFrame, blocks: Sequence[str] | None = None, cols: int | None = None,
                title: str = "Excitation s over channel index, one panel per SE block") -> go.Figure:
    """Per-block line plots of s over channel index; one line per image in `frame` (overlay when several)."""
    blocks = list(blocks) if blocks is not None else list(dict.fromkeys(frame["block"]))
    images = list(dict.fromkeys(frame["image"])) if len(frame) else []
    fig, rows, cols = _subplots(blocks, cols)
    for i, block in enumerate(blocks):
        r, c = _pos(i, cols)
        for j, image in enumerate(images):
            part = frame[(frame["block"] == block) & (frame["image"] == image)]
            fig.add_trace(go.Scatter(
                x=part["channel"], y=part["s"], mode="lines", name=image, legendgroup=image,
                showlegend=i == 0 and len(images) > 1, line=dict(color=color_for(j), width=1.6),
                hovertemplate=f"{image}<br>block {block}<br>channel %{{x}}<br>s = %{{y:.3f}}<extra></extra>",
            ), row=r, col=c)
    fig.update_yaxes(range=_s_range(frame["s"]) if len(frame) else [0, 1])
    _label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, S_AXIS)
    return _layout(fig, title, height=_panel_height(rows), showlegend=len(images) > 1)


LABEL_WIDTH = 20  # characters of a class name on a bar chart's axis (about the 140 px left margin)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip(" ,") + "…"


def short_labels(names: Sequence[str], width: int = LABEL_WIDTH) -> list[str]:
    """Return axis labels for class `names`: the first synonym ("tabby, tabby cat" → "tabby"), cut to `width`
    characters with "…", and unique (a clash falls back to the cut full name, then gets " (2)", " (3)"…), so
    that no two bars share a category. The full names go to the hover text."""
    names = [str(n) for n in names]
    labels = [_truncate(n.split(", ")[0], width) for n in names]
    clash = {l for l in labels if labels.count(l) > 1}
    labels = [_truncate(n, width) if l in clash else l for n, l in zip(names, labels)]
    used: set[str] = set()
    out = []
    for label in labels:
        unique, k = label, 2
        while unique in used:
            unique, k = f"{label} ({k})", k + 1
        used.add(unique)
        out.append(unique)
    return out


def topk_bar(frame: pd.DataFrame, title: str = "Top-5 predictions") -> go.Figure:
    """Horizontal bars of the top-k class probabilities, most probable on top; long class names are shortened
    on the axis (short_labels) and shown in full on hover."""
    fig = go.Figure(go.Bar(
        x=frame["probability"], y=short_labels(frame["class"]), orientation="h", marker_color=PALETTE[0],
        text=[f"{p:.1%}" for p in frame["probability"]], textposition="auto", customdata=list(frame["class"]),
        hovertemplate="%{customdata}: %{x:.2%}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    return _layout(fig, title, height=90 + 34 * max(len(frame), 1), margin=dict(l=140, r=20, t=50, b=45))


# ---------------------------------------------------------------------------------------- compare
def difference_plot(frame: pd.DataFrame, a: str, b: str, blocks: Sequence[str] | None = None,
                    cols: int | None = None) -> go.Figure:
    """Per-block bars of s(a) − s(b) over channel index."""
    blocks = list(blocks) if blocks is not None else list(dict.fromkeys(frame["block"]))
    fig, rows, cols = _subplots(blocks, cols)
    lim = 0.0
    for i, block in enumerate(blocks):
        r, c = _pos(i, cols)
        sa = frame[(frame["block"] == block) & (frame["image"] == a)].set_index("channel")["s"]
        sb = frame[(frame["block"] == block) & (frame["image"] == b)].set_index("channel")["s"]
        d = (sa - sb).dropna()
        lim = max(lim, float(d.abs().max()) if len(d) else 0.0)
        fig.add_trace(go.Bar(
            x=d.index, y=d.values, marker_color=np.where(d.values >= 0, PALETTE[0], PALETTE[3]), showlegend=False,
            hovertemplate=f"block {block}<br>channel %{{x}}<br>Δs = %{{y:+.3f}}<extra></extra>",
        ), row=r, col=c)
    lim = max(lim * 1.05, 0.05)
    fig.update_yaxes(range=[-lim, lim])
    _label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, "Δs")
    return _layout(fig, f"Difference of excitations: s({a}) − s({b})", height=_panel_height(rows), bargap=0.05)


def similarity_plot(frame: pd.DataFrame, title: str = "How similar are the excitation patterns at each depth?") -> go.Figure:
    """Cosine similarity and Pearson correlation per block, against depth (frame from similarity_by_depth).

    A frame with a "pair" column gets one line per pair (Pearson r only: s is positive, so cosine similarity
    stays near 1 for any two inputs and hides differences)."""
    fig = go.Figure()
    subtitle = None
    if "pair" in frame.columns and frame["pair"].nunique() > 1:
        pairs = list(dict.fromkeys(frame["pair"]))
        # Pairs "a vs b", "a vs c", …: the subtitle names a once and the legend only b, c, … (short entries
        # that fit beside each other, instead of long ones wrapping into the title).
        anchor = pairs[0].split(" vs ", 1)[0]
        first = anchor + " vs "
        shared = all(p.startswith(first) and len(p) > len(first) for p in pairs)
        if shared:
            subtitle = f"Pearson r of {anchor} with each input in the legend"
        for j, pair in enumerate(pairs):
            part = frame[frame["pair"] == pair]
            fig.add_trace(go.Scatter(x=part["block"], y=part["pearson"], mode="lines+markers",
                                     name=pair[len(first):] if shared else pair, line=dict(color=color_for(j)),
                                     hovertemplate="%{x}: Pearson r %{y:.3f}<extra>" + pair + "</extra>"))
    else:
        fig.add_trace(go.Scatter(x=frame["block"], y=frame["cosine"], mode="lines+markers", name="cosine similarity",
                                 line=dict(color=PALETTE[0]), hovertemplate="%{x}: cosine %{y:.3f}<extra></extra>"))
        fig.add_trace(go.Scatter(x=frame["block"], y=frame["pearson"], mode="lines+markers",
                                 name="Pearson correlation", line=dict(color=PALETTE[1], dash="dot"),
                                 hovertemplate="%{x}: Pearson %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="SE block (shallow → deep)", type="category")
    fig.update_yaxes(title_text="similarity (1 = identical pattern)", range=[-1.05, 1.05])
    return _layout(fig, title, height=360, subtitle=subtitle)


# ---------------------------------------------------------------------------------------- class × depth
def _class_colors(classes: Sequence[str]) -> dict[str, str]:
    return {c: color_for(i) for i, c in enumerate(c for c in classes if c != "all")} | {"all": ALL_COLOR}


def fig6(frame: pd.DataFrame, cols: int | None = None,
         title: str = "Mean excitation per class at each SE block (the paper's Fig. 6)") -> go.Figure:
    """One panel per block: per-class mean s over channel index, and the "all" line (mean over every image)."""
    blocks = list(dict.fromkeys(frame["block"]))
    classes = list(dict.fromkeys(frame["class"]))
    colors = _class_colors(classes)
    fig, rows, cols = _subplots(blocks, cols)
    sampled = len(frame) and frame.groupby("block")["channel"].apply(lambda s: (np.diff(s.unique()) > 1).any()).any()
    for i, block in enumerate(blocks):
        r, c = _pos(i, cols)
        for cls in classes:
            part = frame[(frame["block"] == block) & (frame["class"] == cls)]
            is_all = cls == "all"
            fig.add_trace(go.Scatter(
                x=part["channel"], y=part["mean"], name=cls, legendgroup=cls, showlegend=i == 0,
                mode="lines+markers" if sampled else "lines", marker=dict(size=4),
                line=dict(color=colors[cls], width=2.6 if is_all else 1.6, dash="dash" if is_all else "solid"),
                hovertemplate=f"{cls}<br>block {block}<br>channel %{{x}}<br>mean s = %{{y:.3f}}<extra></extra>",
            ), row=r, col=c)
    fig.update_yaxes(range=_s_range(frame["mean"]) if len(frame) else [0, 1])
    _label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, MEAN_S_AXIS)
    return _layout(fig, title, height=_panel_height(rows, 250, 130))


def fig7(frame: pd.DataFrame, cls: str, cols: int | None = None, title: str | None = None) -> go.Figure:
    """One panel per block: mean s of one class with a ±1 std band (the paper's Fig. 7)."""
    part_cls = frame[frame["class"] == cls]
    if part_cls.empty:
        raise ValueError(f"class {cls!r} is not in the frame")
    blocks = list(dict.fromkeys(part_cls["block"]))
    color = _class_colors(list(dict.fromkeys(frame["class"])))[cls]
    fig, rows, cols = _subplots(blocks, cols)
    rgb = tuple(int(color[k:k + 2], 16) for k in (1, 3, 5))
    for i, block in enumerate(blocks):
        r, c = _pos(i, cols)
        p = part_cls[part_cls["block"] == block]
        x = p["channel"].to_numpy()
        hi, lo = (p["mean"] + p["std"]).to_numpy(), (p["mean"] - p["std"]).to_numpy()
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                 fillcolor=f"rgba({rgb[0]},{rgb[1]},{rgb[2]},0.22)", line=dict(width=0),
                                 name="± 1 std", legendgroup="std", showlegend=i == 0, hoverinfo="skip"),
                      row=r, col=c)
        fig.add_trace(go.Scatter(
            x=x, y=p["mean"], mode="lines", name=f"mean ({cls})", legendgroup="mean", showlegend=i == 0,
            line=dict(color=color, width=1.8), customdata=p["std"],
            hovertemplate=f"{cls}<br>block {block}<br>channel %{{x}}<br>mean s = %{{y:.3f}} ± %{{customdata:.3f}}<extra></extra>",
        ), row=r, col=c)
    fig.update_yaxes(range=_s_range(np.concatenate([(part_cls["mean"] - part_cls["std"]).to_numpy(),
                                                    (part_cls["mean"] + part_cls["std"]).to_numpy()])))
    _label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, MEAN_S_AXIS)
    title = title or f"How much s varies within one class: {cls}, mean ± std (the paper's Fig. 7)"
    return _layout(fig, title, height=_panel_height(rows, 250, 130))


# Panels of the depth profile: (title, measure column, y range); the untrained control is the same column
# with a "control_" prefix, drawn dashed.
DEPTH_PANELS = [
    ("Class specificity: between-class share of the variance of s", "class_specificity", [-0.02, 1.02]),
    ("Decorrelation: 1 − mean r between class-mean profiles", "decorrelation", None),
    ("Between-class spread: std of class means (units of s)", "between_class_spread", None),
    ("Saturation: share of channels with mean s > 0.9", "saturation", [-0.02, 1.02]),
]


def depth_profile(measures: pd.DataFrame,
                  title: str = "How the excitations depend on the class, from shallow to deep blocks") -> go.Figure:
    """The depth measures (sevis.analysis.depth_measures) against depth, one panel per measure: the trained
    model solid, its untrained control dashed (when measured), and in the first panel the learned part
    (trained − control) dotted."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for t, _, _ in DEPTH_PANELS],
                        vertical_spacing=0.2, horizontal_spacing=0.08)
    x = list(measures["block"])
    for i, (_, col, yrange) in enumerate(DEPTH_PANELS):
        r, c = i // 2 + 1, i % 2 + 1
        first = i == 0
        fig.add_trace(go.Scatter(x=x, y=measures[col], mode="lines+markers", name="trained model",
                                 legendgroup="trained", showlegend=first, line=dict(color=PALETTE[3], width=2.4),
                                 hovertemplate="%{x}<br>%{y:.3f}<extra>trained</extra>"), r, c)
        if f"control_{col}" in measures:
            fig.add_trace(go.Scatter(x=x, y=measures[f"control_{col}"], mode="lines+markers",
                                     name="untrained control (same architecture, random weights)",
                                     legendgroup="control", showlegend=first,
                                     line=dict(color="#555555", width=1.8, dash="dash"), marker=dict(symbol="circle-open"),
                                     hovertemplate="%{x}<br>%{y:.3f}<extra>untrained control</extra>"), r, c)
        if first and "learned_specificity" in measures:
            fig.add_trace(go.Scatter(x=x, y=measures["learned_specificity"], mode="lines", name="learned part "
                                     "(trained − control)", line=dict(color=PALETTE[2], width=2.0, dash="dot"),
                                     hovertemplate="%{x}<br>%{y:.3f}<extra>learned part</extra>"), r, c)
        fig.update_xaxes(type="category", tickangle=-45, row=r, col=c)
        if yrange:
            fig.update_yaxes(range=yrange, row=r, col=c)
    fig.update_annotations(font_size=12)
    return _layout(fig, title, height=640)


# ---------------------------------------------------------------------------------------- knock-out
def knockout_bars(sweep: pd.DataFrame, mode: str = "identity", title: str | None = None) -> go.Figure:
    """Change of reference-set accuracy (percentage points) when each SE block is knocked out alone."""
    base = float(sweep.loc[sweep["block"] == "none", "accuracy"].iloc[0]) if (sweep["block"] == "none").any() else float("nan")
    rows = sweep[sweep["block"] != "none"]
    change = 100.0 * rows["change"].to_numpy()
    fig = go.Figure(go.Bar(
        x=rows["block"], y=change, marker_color=np.where(change < 0, PALETTE[3], PALETTE[2]),
        customdata=100.0 * rows["accuracy"].to_numpy(), text=[f"{v:+.1f}" for v in change], textposition="outside",
        hovertemplate="knock out %{x}<br>accuracy %{customdata:.2f}%<br>change %{y:+.2f} points<extra></extra>",
    ))
    what = "s := 1 (identity)" if mode == "identity" else "s := reference-set mean"
    title = title or f"Accuracy change when one SE block is knocked out ({what}); baseline {base:.1%}"
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    lo = min(float(change.min()) if change.size else 0.0, -1.0)
    hi = max(float(change.max()) if change.size else 0.0, 0.5)
    pad = 0.2 * (hi - lo) + 0.2  # room for the value labels outside the bars
    fig.update_yaxes(title_text="accuracy change (percentage points)", range=[lo - pad, hi + pad])
    fig.update_xaxes(title_text="knocked-out SE block (shallow → deep)", type="category")
    return _layout(fig, title, height=380, showlegend=False)


def prediction_change(before: pd.DataFrame, after: pd.DataFrame, title: str = "Prediction before and after the knock-out") -> go.Figure:
    """Grouped bars of class probabilities before and after knocking blocks out (top-k frames); long class names
    are shortened on the axis (short_labels) and shown in full on hover."""
    classes = list(dict.fromkeys(list(before["class"]) + list(after["class"])))
    labels = short_labels(classes)
    pb = dict(zip(before["class"], before["probability"]))
    pa = dict(zip(after["class"], after["probability"]))
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=[pb.get(c, np.nan) for c in classes], orientation="h", name="original",
                         marker_color=PALETTE[0], customdata=classes,
                         hovertemplate="%{customdata}: %{x:.2%}<extra>original</extra>"))
    fig.add_trace(go.Bar(y=labels, x=[pa.get(c, np.nan) for c in classes], orientation="h", name="knocked out",
                         marker_color=PALETTE[3], customdata=classes,
                         hovertemplate="%{customdata}: %{x:.2%}<extra>knocked out</extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    return _layout(fig, title, height=110 + 40 * len(classes), barmode="group", margin=dict(l=140, r=20, t=70, b=45))


# ---------------------------------------------------------------------------------------- architecture
def table_figure(frame: pd.DataFrame, title: str) -> go.Figure:
    """A plain table figure (for exporting tables as images)."""
    cells = []
    for col in frame.columns:
        v = frame[col]
        if pd.api.types.is_float_dtype(v):
            cells.append(["" if math.isnan(x) else f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}" for x in v.astype(float)])
        elif pd.api.types.is_integer_dtype(v):
            cells.append([f"{x:,}" for x in v])
        else:
            cells.append(["" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x) for x in v])
    # Long texts wrap: give each row the lines its longest cell needs (about 110 characters across the table).
    per_col = max(12, 110 // max(len(frame.columns), 1))
    lines = [max([1] + [math.ceil(len(col[i]) / per_col) for col in cells]) for i in range(len(frame))]
    fig = go.Figure(go.Table(header=dict(values=[f"<b>{c}</b>" for c in frame.columns], fill_color="#e8eef7", align="left"),
                             cells=dict(values=cells, align="left", height=24)))
    return _layout(fig, title, height=min(130 + 26 + sum(20 * n + 8 for n in lines), 2400),
                   margin=dict(l=10, r=10, t=50, b=10))


def se_params_by_stage(frame: pd.DataFrame, estimate: pd.DataFrame | None = None,
                       title: str = "SE's extra parameters per stage") -> go.Figure:
    """Bars of SE's real extra parameters per stage (from sevis.params.se_parameters), with the paper's
    estimate (2/r)·N_s·C_s² beside them when given."""
    rows = frame[frame["stage"].astype(str) != "total"]
    stages = [f"stage {s}" for s in rows["stage"]]
    fig = go.Figure(go.Bar(x=stages, y=rows["parameters"], name="real count", marker_color=PALETTE[0],
                           hovertemplate="%{x}: %{y:,} parameters<extra>real</extra>"))
    if estimate is not None and len(estimate):
        est = estimate[estimate["stage"].astype(str) != "total"]
        fig.add_trace(go.Bar(x=[f"stage {s}" for s in est["stage"]], y=est["estimate"], name="paper estimate (2/r)·N·C²",
                             marker_color=PALETTE[1], hovertemplate="%{x}: %{y:,.0f}<extra>paper estimate</extra>"))
    fig.update_yaxes(title_text="parameters")
    fig.update_xaxes(title_text="stage")
    return _layout(fig, title, height=360, barmode="group")


def params_vs_r(sweep: pd.DataFrame, title: str = "SE's extra parameters against the reduction ratio r") -> go.Figure:
    """Lines of SE's exact extra parameters and the paper's estimate against r (sevis.params.reduction_sweep)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=sweep["r"], y=sweep["se_parameters"], mode="lines+markers", name="real count",
                             line=dict(color=PALETTE[0], width=2.4), customdata=100 * sweep["se_share"],
                             hovertemplate="r = %{x}<br>%{y:,} extra parameters (%{customdata:.1f}% of the plain model)<extra></extra>"))
    fig.add_trace(go.Scatter(x=sweep["r"], y=sweep["estimate"], mode="lines+markers", name="paper estimate (2/r)·Σ N·C²",
                             line=dict(color=PALETTE[1], dash="dash"), hovertemplate="r = %{x}<br>%{y:,.0f}<extra>estimate</extra>"))
    fig.update_xaxes(title_text="reduction ratio r", type="log", tickvals=list(sweep["r"]), ticktext=[str(r) for r in sweep["r"]])
    fig.update_yaxes(title_text="extra parameters from SE")
    return _layout(fig, title, height=360)


# ---------------------------------------------------------------------------------------- inside a block / channel
HIGH_COLOR, LOW_COLOR, OTHER_COLOR = "#2ca02c", "#d62728", "#9aa5b1"


def channel_colors(n: int, high: Sequence[int], low: Sequence[int]) -> list[str]:
    """Return one bar colour per channel: green for `high`, red for `low`, grey for the rest."""
    colors = [OTHER_COLOR] * n
    for c in high:
        colors[int(c)] = HIGH_COLOR
    for c in low:
        colors[int(c)] = LOW_COLOR
    return colors


def anatomy_chain(frame: pd.DataFrame, block: str, high: Sequence[int], low: Sequence[int],
                  title: str | None = None) -> go.Figure:
    """One row of bars per quantity of the SE computation (frame: quantity, label, index, value), in order:
    z, δ(W1·z) (when readable), s. Channels in `high`/`low` are coloured; each bar carries
    customdata [block, index] so a click on a z or s bar names a channel."""
    quantities = list(dict.fromkeys(frame["quantity"]))
    labels = [frame.loc[frame["quantity"] == q, "label"].iloc[0] for q in quantities]
    fig = make_subplots(rows=len(quantities), cols=1, subplot_titles=labels, vertical_spacing=0.16)
    for i, q in enumerate(quantities):
        part = frame[frame["quantity"] == q]
        idx = part["index"].to_numpy()
        per_channel = q != "hidden"
        fig.add_trace(go.Bar(
            x=idx, y=part["value"], showlegend=False,
            marker_color=channel_colors(len(idx), high, low) if per_channel else PALETTE[4],
            customdata=np.stack([np.full(len(idx), block, dtype=object), idx], axis=1) if per_channel else None,
            hovertemplate=(f"{q} · channel %{{x}}<br>value %{{y:.3f}}<extra></extra>" if per_channel
                           else "hidden unit %{x}<br>δ(W1·z) = %{y:.3f}<extra></extra>"),
        ), row=i + 1, col=1)
        fig.update_xaxes(title_text=CHANNEL_AXIS if per_channel else "hidden unit (C/r of them)", row=i + 1, col=1)
        if q == "s":
            fig.update_yaxes(range=_s_range(part["value"]), row=i + 1, col=1)
    return _layout(fig, title or f"Inside {block}: squeeze z, hidden δ(W1·z), excitation s", height=150 + 190 * len(quantities),
                   showlegend=False, bargap=0.1, clickmode="event+select")


def feature_map_grid(frame: pd.DataFrame, title: str, columns: Sequence[str], rows: Sequence[str],
                     zmax: float | None = None, subtitle: str | None = None) -> go.Figure:
    """Heat maps of feature maps (frame: row, column, y, x, value), rows × columns, all on one colour
    scale (symmetric around 0, ±zmax) so that a channel scaled down by s fades towards white."""
    n_rows, n_cols = len(rows), len(columns)
    fig = make_subplots(rows=n_rows, cols=n_cols, row_titles=list(rows), subplot_titles=[
        columns[c] if r == 0 else "" for r in range(n_rows) for c in range(n_cols)],
        horizontal_spacing=0.012, vertical_spacing=0.06)
    zmax = zmax if zmax is not None else (float(frame["value"].abs().max()) if len(frame) else 1.0) or 1.0
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            part = frame[(frame["row"] == row) & (frame["column"] == col)]
            if part.empty:
                continue
            h, w = int(part["y"].max()) + 1, int(part["x"].max()) + 1
            z = np.full((h, w), np.nan)
            z[part["y"].to_numpy(), part["x"].to_numpy()] = part["value"].to_numpy()
            fig.add_trace(go.Heatmap(z=z, zmin=-zmax, zmax=zmax, colorscale="RdBu_r", showscale=r == 0 and c == 0,
                                     colorbar=dict(title=dict(text="activation", side="right"), thickness=10, len=0.8),
                                     hovertemplate=f"{row} · {col}<br>y %{{y}}, x %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                          row=r + 1, col=c + 1)
            fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor=f"x{r * n_cols + c + 1 if r * n_cols + c else ''}",
                             row=r + 1, col=c + 1)
            fig.update_xaxes(showticklabels=False, row=r + 1, col=c + 1)
    fig.update_annotations(font_size=11)
    return _layout(fig, title, height=140 + 150 * n_rows, subtitle=subtitle, margin=dict(l=40, r=60, t=95, b=20))


def class_strip(frame: pd.DataFrame, title: str) -> go.Figure:
    """Box plot with every point of s per class (frame: class, s), classes in frame order."""
    fig = go.Figure()
    for j, (cls, part) in enumerate(frame.groupby("class", sort=False)):
        fig.add_trace(go.Box(y=part["s"], name=str(cls), boxpoints="all", jitter=0.45, pointpos=0,
                             marker=dict(size=3, color=color_for(j), opacity=0.55), line=dict(color=color_for(j)),
                             fillcolor="rgba(0,0,0,0)", hovertemplate=f"{cls}<br>s = %{{y:.3f}}<extra></extra>"))
    fig.update_yaxes(title_text=S_AXIS, range=_s_range(frame["s"]) if len(frame) else [0, 1])
    fig.update_xaxes(title_text="class", type="category")
    return _layout(fig, title, height=380, showlegend=False)


def image_grid(images: Sequence[np.ndarray], labels: Sequence[str], rows: Sequence[str], per_row: int,
               title: str) -> go.Figure:
    """Images (H×W×3 uint8) in len(rows) rows of `per_row`, each titled by its label (Microscope-style)."""
    fig = make_subplots(rows=len(rows), cols=per_row, subplot_titles=list(labels), row_titles=list(rows),
                        horizontal_spacing=0.01, vertical_spacing=0.12)
    for i, img in enumerate(images):
        r, c = divmod(i, per_row)
        fig.add_trace(go.Image(z=img, hovertemplate=f"{labels[i]}<extra></extra>"), row=r + 1, col=c + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, showgrid=False)
    fig.update_annotations(font_size=10)
    return _layout(fig, title, height=130 + 165 * len(rows), margin=dict(l=40, r=40, t=80, b=10))


def prediction_variants(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Grouped horizontal bars of class probabilities (frame: class, when, probability), one colour per `when`."""
    fig = go.Figure()
    classes = list(dict.fromkeys(frame["class"]))
    for j, (when, part) in enumerate(frame.groupby("when", sort=False)):
        p = dict(zip(part["class"], part["probability"]))
        fig.add_trace(go.Bar(y=classes, x=[p.get(c, np.nan) for c in classes], orientation="h", name=str(when),
                             marker_color=(PALETTE[0], PALETTE[3], PALETTE[2], PALETTE[1])[j % 4],
                             hovertemplate=f"%{{y}}: %{{x:.2%}}<extra>{when}</extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    return _layout(fig, title, height=130 + 50 * len(classes), subtitle=subtitle, barmode="group",
                   margin=dict(l=140, r=20, t=80, b=45))


def add_channel_targets(fig: go.Figure, blocks: Sequence[str]) -> go.Figure:
    """Return a copy of a per-block figure (heat strip, Fig. 6, block lines) in which every channel can be
    clicked: heat maps get an invisible marker per cell, line traces small markers; each point carries
    customdata [block, channel]. For the app only; exports keep the plain figure."""
    out = go.Figure(fig)
    extra = []
    for trace in out.data:
        if trace.type == "heatmap" and trace.z is not None:
            z = np.asarray(trace.z, dtype=float)
            ys, xs = np.nonzero(np.isfinite(z))
            names = np.asarray(list(trace.y), dtype=object)
            extra.append(go.Scatter(
                x=np.asarray(trace.x)[xs], y=names[ys], mode="markers", showlegend=False,
                marker=dict(size=8, opacity=0), selected=dict(marker=dict(opacity=0)),
                unselected=dict(marker=dict(opacity=0)), customdata=np.stack([names[ys], xs], axis=1),
                hovertemplate="block %{customdata[0]}<br>channel %{customdata[1]}<br>click to open it<extra></extra>"))
        elif trace.type == "scatter" and trace.x is not None and trace.fill is None:
            k = int(trace.xaxis[1:] or 1) - 1 if trace.xaxis else 0
            if k < len(blocks):
                x = np.asarray(trace.x)
                trace.customdata = np.stack([np.full(len(x), blocks[k], dtype=object), x], axis=1)
                if "markers" not in (trace.mode or "lines"):
                    trace.mode = "lines+markers"
                    trace.marker = dict(size=3)
    for t in extra:
        out.add_trace(t)
    out.update_layout(clickmode="event+select")
    return out


# ---------------------------------------------------------------------------------------- ablations
def ablation_deltas(table: pd.DataFrame, seeds: int,
                    title: str = "Accuracy change against the baseline, ours and the paper's") -> go.Figure:
    """Bars per variant (sevis.ablations.comparison_table): our accuracy change vs the baseline in points, the
    paper's top-1 error change with the sign flipped (so up is better in both), and the noise floor as a band."""
    rows = table[table["variant"] != "baseline"]
    x = list(rows["variant"])
    fig = go.Figure()
    floor = rows["noise_floor"].dropna()
    if len(floor):
        f = float(floor.iloc[0])
        fig.add_hrect(y0=-f, y1=f, fillcolor="#bbbbbb", opacity=0.35, line_width=0, layer="below")
        # Named in the legend, not on the band: a band a few hundredths of a point high leaves no room for a label.
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip",
                                 marker=dict(symbol="square", size=12, color="#bbbbbb"),
                                 name=f"noise floor ±{f:.2f} (range of {seeds} baseline seeds)"))
    fig.add_trace(go.Bar(x=x, y=rows["delta"], name="ours: accuracy change (points)", marker_color=PALETTE[0],
                         customdata=rows["accuracy"],
                         hovertemplate="%{x}<br>accuracy %{customdata:.2f}%<br>change %{y:+.2f} points<extra>ours</extra>"))
    paper = -rows["paper_delta"].astype(float)
    fig.add_trace(go.Bar(x=x, y=paper, name="paper: top-1 error change, sign flipped (points)",
                         marker_color=PALETTE[1],
                         hovertemplate="%{x}<br>top-1 error change %{customdata:+.2f} points<extra>paper</extra>",
                         customdata=rows["paper_delta"]))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="change vs baseline (points; up is better)")
    fig.update_xaxes(title_text="variant", type="category", tickangle=-35)
    return _layout(fig, title, height=430, barmode="group")


def _depth_order(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Return every block of `frames` in depth order (SE_stage_block names sort by stage, then block)."""
    names = list(dict.fromkeys(b for f in frames.values() for b in f["block"]))

    def key(name: str):
        parts = name.split("_")
        return tuple(int(p) for p in parts[1:]) if name.startswith("SE_") and all(p.isdigit() for p in parts[1:]) else (99,)
    return sorted(names, key=key)


def depth_profile_pair(measures: Mapping[str, pd.DataFrame],
                       title: str = "Depth profiles of two variants") -> go.Figure:
    """The depth measures of several models overlaid: each model in its colour, solid; its untrained control in
    the same colour, dashed (when measured). Blocks a model lacks leave gaps."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for t, _, _ in DEPTH_PANELS],
                        vertical_spacing=0.2, horizontal_spacing=0.08)
    order = _depth_order(measures)
    for k, (name, m) in enumerate(measures.items()):
        color = PALETTE[k % len(PALETTE)]
        m = m.set_index("block").reindex(order)
        for i, (_, col, yrange) in enumerate(DEPTH_PANELS):
            r, c = i // 2 + 1, i % 2 + 1
            if col not in m:  # a model without SE blocks has no measures
                continue
            fig.add_trace(go.Scatter(x=order, y=m[col], mode="lines+markers", name=name, legendgroup=name,
                                     showlegend=i == 0, line=dict(color=color, width=2.4), connectgaps=False,
                                     hovertemplate=f"{name}<br>%{{x}}<br>%{{y:.3f}}<extra></extra>"), r, c)
            if f"control_{col}" in m:
                fig.add_trace(go.Scatter(x=order, y=m[f"control_{col}"], mode="lines", name=f"{name}: untrained control",
                                         legendgroup=f"{name}-control", showlegend=i == 0,
                                         line=dict(color=color, width=1.4, dash="dash"),
                                         hovertemplate=f"{name} untrained<br>%{{x}}<br>%{{y:.3f}}<extra></extra>"), r, c)
            fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, tickangle=-45, row=r, col=c)
            if yrange:
                fig.update_yaxes(range=yrange, row=r, col=c)
    fig.update_annotations(font_size=12)
    return _layout(fig, title, height=660)


def knockout_pair(measures: Mapping[str, pd.DataFrame], column: str = "knockout_identity",
                  title: str | None = None) -> go.Figure:
    """Grouped bars: each model's accuracy change (points) when one SE block is knocked out alone."""
    order = _depth_order(measures)
    fig = go.Figure()
    for k, (name, m) in enumerate(measures.items()):
        if column not in m:
            continue
        m = m.set_index("block").reindex(order)
        fig.add_trace(go.Bar(x=order, y=100.0 * m[column].astype(float), name=name, marker_color=PALETTE[k % len(PALETTE)],
                             hovertemplate=f"{name}<br>knock out %{{x}}<br>change %{{y:+.2f}} points<extra></extra>"))
    what = "s := 1 (identity)" if column == "knockout_identity" else "s := reference-set mean"
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="accuracy change (percentage points)")
    fig.update_xaxes(title_text="knocked-out SE block (shallow → deep)", type="category", categoryorder="array",
                     categoryarray=order, tickangle=-45)
    return _layout(fig, title or f"Accuracy change when one SE block is knocked out ({what})", height=400,
                   barmode="group")
