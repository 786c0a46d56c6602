"""Figures several views share: excitation frames, top-k bars, per-block lines, the paper's Fig. 6 and the depth
profile, feature-map grids, and click targets on heat strips and Fig. 6.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.core.statistics import ExcitationStats, sample_channels
from sevis.figures.plots import (
    CHANNEL_AXIS,
    INTEGER_TICKS,
    MEAN_S_AXIS,
    PALETTE,
    S_AXIS,
    apply_layout,
    class_colors,
    color_for,
    decode_typed_arrays,
    grid_position,
    label_axes,
    panel_height,
    s_axis_range,
    short_labels,
    subplot_grid,
)


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


def channel_ticks(channels) -> dict:
    """Return x-axis settings for channel indices (integers): whole-number labels, a tick at each channel when
    there are few (never a fractional tick)."""
    n = len(pd.unique(np.asarray(channels))) if len(channels) else 0
    return dict(tickformat="d") | (dict(tickmode="linear", dtick=1) if 0 < n <= INTEGER_TICKS else {})


def block_lines(frame: pd.DataFrame, blocks: Sequence[str] | None = None, cols: int | None = None,
                title: str = "Excitation s over channel index, one panel per SE block") -> go.Figure:
    """Per-block line plots of s over channel index; one line per image in `frame` (overlay when several)."""
    blocks = list(blocks) if blocks is not None else list(dict.fromkeys(frame["block"]))
    images = list(dict.fromkeys(frame["image"])) if len(frame) else []
    fig, rows, cols = subplot_grid(blocks, cols)
    for i, block in enumerate(blocks):
        r, c = grid_position(i, cols)
        for j, image in enumerate(images):
            part = frame[(frame["block"] == block) & (frame["image"] == image)]
            fig.add_trace(go.Scatter(
                x=part["channel"], y=part["s"], mode="lines", name=image, legendgroup=image,
                showlegend=i == 0 and len(images) > 1, line=dict(color=color_for(j), width=1.6),
                hovertemplate=f"{image}<br>block {block}<br>channel %{{x}}<br>s = %{{y:.3f}}<extra></extra>",
            ), row=r, col=c)
    fig.update_yaxes(range=s_axis_range(frame["s"]) if len(frame) else [0, 1])
    fig.update_xaxes(**channel_ticks(frame["channel"]))
    label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, S_AXIS)
    return apply_layout(fig, title, height=panel_height(rows), showlegend=len(images) > 1)


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
    return apply_layout(fig, title, height=90 + 34 * max(len(frame), 1), margin=dict(l=140, r=20, t=50, b=45))


def fig6(frame: pd.DataFrame, cols: int | None = None,
         title: str = "Mean excitation per class at each SE block (the paper's Fig. 6)") -> go.Figure:
    """One panel per block: per-class mean s over channel index, and the "all" line (mean over every image)."""
    blocks = list(dict.fromkeys(frame["block"]))
    classes = list(dict.fromkeys(frame["class"]))
    colors = class_colors(classes)
    fig, rows, cols = subplot_grid(blocks, cols)
    sampled = len(frame) and frame.groupby("block")["channel"].apply(lambda s: (np.diff(s.unique()) > 1).any()).any()
    for i, block in enumerate(blocks):
        r, c = grid_position(i, cols)
        for cls in classes:
            part = frame[(frame["block"] == block) & (frame["class"] == cls)]
            is_all = cls == "all"
            fig.add_trace(go.Scatter(
                x=part["channel"], y=part["mean"], name=cls, legendgroup=cls, showlegend=i == 0,
                mode="lines+markers" if sampled else "lines", marker=dict(size=4),
                line=dict(color=colors[cls], width=2.6 if is_all else 1.6, dash="dash" if is_all else "solid"),
                hovertemplate=f"{cls}<br>block {block}<br>channel %{{x}}<br>mean s = %{{y:.3f}}<extra></extra>",
            ), row=r, col=c)
    fig.update_yaxes(range=s_axis_range(frame["mean"]) if len(frame) else [0, 1])
    fig.update_xaxes(**channel_ticks(frame["channel"]))
    label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, MEAN_S_AXIS)
    return apply_layout(fig, title, height=panel_height(rows, 250, 130))


NEAR_ALL_TOLERANCE = 0.05  # the paper's class-agnostic criterion: a class mean within this of the "all" curve


def deviation_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return Fig. 6's deviations from a class_depth_frame: per block, class (not "all") and channel, the class
    mean, the "all" mean, deviation = class mean − all, and rank: the channel's place when channels are sorted
    by how much the shown class means differ (std over classes, largest first; ties by channel index)."""
    cols = ["block", "depth", "class", "channel", "mean", "all_mean", "deviation", "rank"]
    if not len(frame):
        return pd.DataFrame(columns=cols)
    parts = []
    for block, part in frame.groupby("block", sort=False):
        all_mean = part[part["class"] == "all"].set_index("channel")["mean"]
        cls = part[part["class"] != "all"].copy()
        cls["all_mean"] = cls["channel"].map(all_mean)
        cls["deviation"] = cls["mean"] - cls["all_mean"]
        spread = cls.groupby("channel")["mean"].std(ddof=0).fillna(0.0)
        order = sorted(spread.index, key=lambda c: (-round(float(spread[c]), 12), c))
        cls["rank"] = cls["channel"].map({c: i for i, c in enumerate(order)})
        parts.append(cls)
    return pd.concat(parts, ignore_index=True)[cols]


def near_all_words(share: float) -> str:
    """Return a block's share of class means near "all" in the words every view uses ("72% of class means within
    0.05 of all")."""
    return f"{100 * share:.0f}% of class means within {NEAR_ALL_TOLERANCE} of all"


def near_all_shares(deviations: pd.DataFrame, tolerance: float = NEAR_ALL_TOLERANCE) -> dict[str, float]:
    """Return, per block, the share of the shown class means (class × channel) within `tolerance` of "all"."""
    return {b: float((part["deviation"].abs() <= tolerance).mean())
            for b, part in deviations.groupby("block", sort=False)}


def fig6_deviation(deviations: pd.DataFrame, cols: int | None = None,
                   title: str = "How far each class's mean excitation lies from the mean over all images "
                                "(Fig. 6, as deviations)", shares: dict[str, float] | None = None) -> go.Figure:
    """One heat map per block (deviation_frame): rows are classes, columns channels sorted by how much the
    class means differ, colour = class mean − "all" on one scale for every panel (white: the class gets the
    same s as every image). Each panel's title carries its block's share of class means within 0.05 of "all":
    `shares` (ExcitationStats.near_all_share, over every class and channel: the one definition every view states),
    else the share of the cells shown."""
    blocks = list(dict.fromkeys(deviations["block"]))
    shares = shares if shares is not None else near_all_shares(deviations)
    titles = [f"{b}: {near_all_words(shares[b])}" for b in blocks]
    fig, rows, cols = subplot_grid(titles, cols)
    finite = deviations["deviation"].to_numpy(np.float64)
    finite = finite[np.isfinite(finite)]
    zmax = max(float(np.abs(finite).max()) if finite.size else 0.0, NEAR_ALL_TOLERANCE)
    classes = list(dict.fromkeys(deviations["class"]))
    for i, block in enumerate(blocks):
        r, c = grid_position(i, cols)
        part = deviations[deviations["block"] == block]
        ranks = int(part["rank"].max()) + 1
        z = np.full((len(classes), ranks), np.nan)
        data = np.zeros((len(classes), ranks, 3))
        channels = np.zeros(ranks, int)
        for k, cls in enumerate(classes):
            p = part[part["class"] == cls]
            rk = p["rank"].to_numpy(int)
            z[k, rk] = p["deviation"].to_numpy()
            data[k, rk] = np.stack([p["channel"], p["mean"], p["all_mean"]], axis=1)
            channels[rk] = p["channel"].to_numpy(int)
        fig.add_trace(go.Heatmap(
            z=z, x=np.arange(ranks), y=classes, coloraxis="coloraxis", customdata=data,
            meta={"block": block, "channels": channels.tolist()},
            hovertemplate=(f"%{{y}} · {block} · channel %{{customdata[0]:.0f}}<br>class mean s = %{{customdata[1]:.3f}}"
                           "<br>all = %{customdata[2]:.3f}<br>difference %{z:+.3f}<extra></extra>")), row=r, col=c)
    fig.update_yaxes(autorange="reversed", type="category")
    # Column numbers are ranks, not channel indices (hover names the channel): no ticks, one x title.
    fig.update_xaxes(showticklabels=False, ticks="")
    label_axes(fig, rows, cols, len(blocks), "", "class")
    fig.update_xaxes(title_text="channels, most class-dependent left", row=rows, col=1)
    fig.update_layout(coloraxis=dict(colorscale="RdBu_r", cmin=-zmax, cmax=zmax,
                                     colorbar=dict(title=dict(text="class mean − all", side="right"), thickness=10)))
    fig.update_annotations(font_size=12)
    return apply_layout(fig, title, height=panel_height(rows, 70 + 22 * len(classes), 130))


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
    """The depth measures (sevis.core.statistics.depth_measures) against depth, one panel per measure: the trained
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
        if f"control_{col}_min" in measures:  # the range over the control's seeds, as a band
            lo, hi = measures[f"control_{col}_min"].to_numpy(), measures[f"control_{col}_max"].to_numpy()
            seeds = int(measures["control_seeds"].iloc[0]) if "control_seeds" in measures else 0
            fig.add_trace(go.Scatter(x=x + x[::-1], y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                     fillcolor="rgba(85,85,85,0.18)", line=dict(width=0), hoverinfo="skip",
                                     name=f"untrained control: range over {seeds} seeds", legendgroup="control-range",
                                     showlegend=first), r, c)
        if f"control_{col}" in measures:
            seeds = int(measures["control_seeds"].iloc[0]) if "control_seeds" in measures else 1
            fig.add_trace(go.Scatter(x=x, y=measures[f"control_{col}"], mode="lines+markers",
                                     name="untrained control (same architecture, random weights"
                                          + (f"; mean of {seeds} seeds)" if seeds > 1 else ")"),
                                     legendgroup="control", showlegend=first,
                                     line=dict(color="#555555", width=1.8, dash="dash"),
                                     marker=dict(symbol="circle-open"),
                                     hovertemplate="%{x}<br>%{y:.3f}<extra>untrained control</extra>"), r, c)
        if first and "learned_specificity" in measures:
            fig.add_trace(go.Scatter(x=x, y=measures["learned_specificity"], mode="lines", name="learned part "
                                     "(trained − control)", line=dict(color=PALETTE[2], width=2.0, dash="dot"),
                                     hovertemplate="%{x}<br>%{y:.3f}<extra>learned part</extra>"), r, c)
        fig.update_xaxes(type="category", tickangle=-45, row=r, col=c)
        if yrange:
            fig.update_yaxes(range=yrange, row=r, col=c)
    fig.update_annotations(font_size=12)
    return apply_layout(fig, title, height=640)


MAP_COLUMNS = 4  # feature maps per line: more wrap onto the next rows (8 across are ~85 px each at 1280 px)


def feature_map_grid(frame: pd.DataFrame, title: str, columns: Sequence[str], rows: Sequence[str],
                     zmax: float | None = None, subtitle: str | None = None, max_cols: int | None = None) -> go.Figure:
    """Heat maps of feature maps (frame: row, column, y, x, value), rows × columns, all on one colour
    scale (symmetric around 0, ±zmax) so that a channel scaled down by s fades towards white. More than
    `max_cols` columns (default MAP_COLUMNS) wrap: the next columns repeat the rows below, so each map stays
    large enough to read (about 200 px on a 1000 px figure)."""
    n_rows, n_cols = len(rows), len(columns)
    per_line = max(1, min(max_cols or MAP_COLUMNS, n_cols))
    chunks = -(-n_cols // per_line) if n_cols else 1
    grid_rows, grid_cols = n_rows * chunks, per_line
    cell = {(q * n_rows + r, c): (row, columns[q * per_line + c]) for q in range(chunks)
            for r, row in enumerate(rows) for c in range(per_line) if q * per_line + c < n_cols}
    fig = make_subplots(rows=grid_rows, cols=grid_cols, row_titles=list(rows) * chunks, subplot_titles=[
        cell[(gr, gc)][1] if (gr, gc) in cell and gr % n_rows == 0 else ""
        for gr in range(grid_rows) for gc in range(grid_cols)],
        horizontal_spacing=0.012 if grid_cols > 4 else 0.03, vertical_spacing=0.06 if chunks == 1 else 0.1 / chunks)
    zmax = zmax if zmax is not None else (float(frame["value"].abs().max()) if len(frame) else 1.0) or 1.0
    first = True
    for (gr, gc), (row, col) in cell.items():
        part = frame[(frame["row"] == row) & (frame["column"] == col)]
        if part.empty:
            continue
        h, w = int(part["y"].max()) + 1, int(part["x"].max()) + 1
        z = np.full((h, w), np.nan)
        z[part["y"].to_numpy(), part["x"].to_numpy()] = part["value"].to_numpy()
        fig.add_trace(go.Heatmap(z=z, zmin=-zmax, zmax=zmax, colorscale="RdBu_r", showscale=first,
                                 colorbar=dict(title=dict(text="activation", side="right"), thickness=10, len=0.8),
                                 hovertemplate=f"{row} · {col}<br>y %{{y}}, x %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                      row=gr + 1, col=gc + 1)
        first = False
        k = gr * grid_cols + gc
        fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor=f"x{k + 1 if k else ''}",
                         row=gr + 1, col=gc + 1)
        fig.update_xaxes(showticklabels=False, row=gr + 1, col=gc + 1)
    fig.update_annotations(font_size=11 if grid_cols > 4 else 12)
    per_row = 150 if grid_cols > 4 else 185 if grid_cols > 2 else 160
    return apply_layout(fig, title, height=140 + per_row * grid_rows, subtitle=subtitle,
                        margin=dict(l=40, r=60, t=95, b=20))


def _values(v) -> np.ndarray:
    """Return a trace's data as a numpy array, also from Plotly's typed-array form (a figure that went through
    pickle or JSON; plots.decode_typed_arrays)."""
    return np.asarray(decode_typed_arrays(v))


def add_channel_targets(fig: go.Figure, blocks: Sequence[str]) -> go.Figure:
    """Return a copy of a per-block figure (heat strip, Fig. 6, block lines) in which every channel can be
    clicked: heat maps get an invisible marker per cell, line traces small markers; each point carries
    customdata [block, channel]. For the app only; exports keep the plain figure."""
    out = go.Figure(fig)
    extra = []
    for trace in out.data:
        if trace.type == "heatmap" and trace.z is not None:
            z = _values(trace.z).astype(float)
            ys, xs = np.nonzero(np.isfinite(z))
            names = np.asarray(list(_values(trace.y)), dtype=object)
            meta = trace.meta if isinstance(trace.meta, dict) and "block" in trace.meta else None
            # Fig. 6's deviations: rows are classes, columns channels in sorted order (meta names both).
            target = (np.stack([np.full(len(xs), meta["block"], dtype=object), np.asarray(meta["channels"])[xs],
                                z[ys, xs]], axis=1) if meta else np.stack([names[ys], xs], axis=1))
            hover = ("%{y} · block %{customdata[0]} · channel %{customdata[1]}<br>class mean − all = "
                     "%{customdata[2]:+.3f}<br>click to open it<extra></extra>" if meta else
                     "block %{customdata[0]}<br>channel %{customdata[1]}<br>click to open it<extra></extra>")
            extra.append(go.Scatter(
                x=_values(trace.x)[xs], y=names[ys], mode="markers", showlegend=False,
                xaxis=trace.xaxis, yaxis=trace.yaxis,
                marker=dict(size=8, opacity=0), selected=dict(marker=dict(opacity=0)),
                unselected=dict(marker=dict(opacity=0)), customdata=target, hovertemplate=hover))
        elif trace.type == "scatter" and trace.x is not None and trace.fill is None:
            k = int(trace.xaxis[1:] or 1) - 1 if trace.xaxis else 0
            if k < len(blocks):
                x = _values(trace.x)
                trace.customdata = np.stack([np.full(len(x), blocks[k], dtype=object), x], axis=1)
                if "markers" not in (trace.mode or "lines"):
                    trace.mode = "lines+markers"
                    trace.marker = dict(size=3)
    for t in extra:
        out.add_trace(t)
    out.update_layout(clickmode="event+select")
    return out
