"""Plot helpers every view uses: the Panel (figure + data + caption), colours, fonts, layout and subplot grids,
label shortening and the table figure.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# The table formatter lives in tables; views import it from here too (one place for Panel, figures and tables).
from sevis.figures.tables import (  # noqa: F401 (re-exported)
    COLUMN_NAMES,
    MISSING,
    human_column,
    readable_table,
    significant,
    table_height,
)

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
TITLE_TOP, LEGEND_TOP, LEGEND_ROW, TITLE_LINE = 12, 42, 22, 20  # px from the top; px per legend row / title line
_CHAR_PX, _ENTRY_PX = 7.0, 46.0  # Arial 13 px: width of a character, and of a legend symbol with its gaps
LEGEND_WRAP_WIDTH = 760


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


def apply_layout(fig: go.Figure, title: str, height: int | None = None, subtitle: str | None = None,
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
    return plain_heatmaps(thin_bars(fig))


WIDE_BARS = 96  # more bars than this in one trace: narrower than their outline at 1280 px, so grey fog


def _axis_keys(trace) -> tuple[str, str]:
    """Return the layout keys of a trace's axes, e.g. ("xaxis2", "yaxis2")."""
    x, y = getattr(trace, "xaxis", None) or "x", getattr(trace, "yaxis", None) or "y"
    return "xaxis" + x[1:], "yaxis" + y[1:]


def plain_heatmaps(fig: go.Figure) -> go.Figure:
    """Turn gridlines off on every axis pair that holds a heat map or an image (lines drawn through the cells)."""
    for t in fig.data:
        if t.type in ("heatmap", "image"):
            for key in _axis_keys(t):
                fig.layout[key].update(showgrid=False, zeroline=False)
    return fig


def thin_bars(fig: go.Figure) -> go.Figure:
    """Draw bar traces with more than WIDE_BARS bars without outlines (plotly_white draws a white outline that,
    on bars under a pixel wide, turns the chart grey)."""
    for t in fig.data:
        if t.type == "bar" and t.x is not None and len(t.x) > WIDE_BARS:
            t.marker.line.width = 0
    return fig


# Lecture mode ("slides"): sizes for a projector at 1280×800, read from the back of a lecture hall.
SLIDES_FONT, SLIDES_TITLE, SLIDES_MIN_TEXT = 18, 22, 16
SLIDES_WIDTH = 1000  # px: about the main column of a 1280 px window
SLIDES_ROW_EXTRA = 40  # px added per row of subplots, for the larger subplot titles and tick labels
SUBTITLE_LINE = 22  # px per line of a 16 px subtitle


def wrap_text(text: str, chars: int) -> str:
    """Return `text` with <br> at spaces so that no line is much longer than `chars` characters (HTML tags and
    existing <br> kept)."""
    if len(re.sub(r"<[^>]+>", "", text)) <= chars:
        return text
    out = []
    for part in text.split("<br>"):
        line, lines = "", []
        for word in part.split(" "):
            if line and len(re.sub(r"<[^>]+>", "", line + " " + word)) > chars:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        out.append("<br>".join(lines))
    return "<br>".join(out)


def _grid_columns(fig: go.Figure) -> tuple[int, int]:
    """Return (columns, rows) of a figure's subplot grid, from its axes' domains."""
    lay = fig.layout.to_plotly_json()
    xs = {tuple(v.get("domain", (0, 1))) for k, v in lay.items() if k.startswith("xaxis") and isinstance(v, dict)}
    ys = {tuple(v.get("domain", (0, 1))) for k, v in lay.items() if k.startswith("yaxis") and isinstance(v, dict)}
    return max(len(xs), 1), max(len(ys), 1)
SORTED_AXIS = "channels sorted by value (highest first)"
SORTED_AXIS_SHORT = "channels, sorted"
ORDERED = "ordered"  # a trace's meta when its bars already come in a deliberate order: slides keep it


def sort_wide_bars(fig: go.Figure) -> go.Figure:
    """Redraw each vertical bar trace with more than WIDE_BARS bars sorted by value, highest first (x = rank),
    so hundreds of channels read as one profile; the channel stays in customdata and the hover text. Traces whose
    meta is ORDERED (already in a deliberate order, e.g. several rows sharing one channel order) are left alone."""
    for t in fig.data:
        if t.type != "bar" or t.x is None or len(t.x) <= WIDE_BARS or t.orientation == "h" or t.meta == ORDERED:
            continue
        y = np.asarray(t.y, dtype=float)
        order = np.argsort(-np.nan_to_num(y, nan=-np.inf), kind="stable")
        x = np.asarray(t.x)
        custom = np.asarray(t.customdata, dtype=object) if t.customdata is not None else x[:, None].astype(object)
        colors = t.marker.color
        if colors is not None and not isinstance(colors, str) and len(colors) == len(y):
            t.marker.color = [colors[i] for i in order]
        t.update(x=np.arange(len(y)), y=y[order], customdata=custom[order])
        col = 1 if custom.ndim == 2 and custom.shape[1] > 1 else 0
        t.hovertemplate = (t.hovertemplate or "%{x}: %{y:.3f}").replace("%{x}", f"%{{customdata[{col}]}}")
        axis = fig.layout[_axis_keys(t)[0]]
        if axis.title.text:  # only where the axis was labelled (a grid labels its bottom row only)
            axis.title.text = SORTED_AXIS if _grid_columns(fig)[0] < 3 else SORTED_AXIS_SHORT
    return fig


def slides_style(fig: go.Figure) -> go.Figure:
    """Return a copy of `fig` for a projector: base font SLIDES_FONT px, title SLIDES_TITLE px, every other text
    (subplot titles, annotations, ticks, legend, colour bars) at least SLIDES_MIN_TEXT px, no gridlines on
    heat maps, wide bar charts sorted; taller, with room for the larger title and legend."""
    out = go.Figure(fig)
    lay = out.layout
    out.update_layout(font=dict(family=FONT["family"], size=SLIDES_FONT), title_font_size=SLIDES_TITLE,
                      legend_font_size=SLIDES_MIN_TEXT)
    sub_lines = 0
    if lay.title.subtitle and lay.title.subtitle.text:
        subtitle = wrap_text(lay.title.subtitle.text, int(SLIDES_WIDTH / (0.55 * SLIDES_MIN_TEXT)))
        out.update_layout(title_subtitle_font_size=SLIDES_MIN_TEXT, title_subtitle_text=subtitle)
        sub_lines = subtitle.count("<br>") + 1
    cols, rows = _grid_columns(out)
    per_col = max(8, int(SLIDES_WIDTH / cols / (0.55 * SLIDES_MIN_TEXT)))  # characters that fit over one column
    for a in lay.annotations or ():
        a.font.size = max(a.font.size or 0, SLIDES_MIN_TEXT)
        if a.text and a.xref == "paper" and not a.textangle and a.yanchor == "bottom":  # a subplot title
            a.text = wrap_text(a.text.replace(" · ", "<br>") if cols > 4 else a.text, per_col)
    title_lines = 1
    if lay.title.text:
        out.layout.title.text = wrap_text(lay.title.text, int(SLIDES_WIDTH / (0.55 * SLIDES_TITLE)))
        title_lines = out.layout.title.text.count("<br>") + 1
        if title_lines > 1:  # plotly grows a top-anchored multi-line title upwards: push it down by the extra lines
            out.layout.title.pad.t = (lay.title.pad.t or 0) + 28 * (title_lines - 1)
    for key in list(lay.to_plotly_json()):
        if key.startswith(("xaxis", "yaxis")):
            lay[key].tickfont.size = SLIDES_MIN_TEXT
            if lay[key].tickangle not in (None, 0, -90, 90):  # slanted labels collide at 16 px: stand them up
                lay[key].tickangle = -90
            lay[key].title.font.size = SLIDES_MIN_TEXT + 1
    for t in out.data:
        if t.type == "heatmap":
            t.colorbar.tickfont.size = SLIDES_MIN_TEXT
            t.colorbar.title.font.size = SLIDES_MIN_TEXT
        if t.type == "table":
            t.header.font.size = SLIDES_MIN_TEXT
            t.cells.font.size = SLIDES_MIN_TEXT
            t.cells.height = max(t.cells.height or 0, 30)
        if t.type == "bar" and getattr(t, "textfont", None) is not None:
            t.textfont.size = SLIDES_MIN_TEXT
    sort_wide_bars(out)
    plain_heatmaps(out)
    height = lay.height or 450
    # The legend at 16 px wraps into more rows than apply_layout counted at 13 px: room for each extra row.
    scale = SLIDES_MIN_TEXT / FONT["size"]
    width = lay.width or LEGEND_WRAP_WIDTH
    rows_now = legend_rows(out, int(width / scale))
    more_rows = max(rows_now - legend_rows(out, width), 0)
    title_shift = 28 * (title_lines - 1)
    wrapped = any("<br>" in (a.text or "") for a in out.layout.annotations or ())  # two-line subplot titles
    # A subtitle at 16 px takes SUBTITLE_LINE px a line; apply_layout kept TITLE_LINE px for one line at 13 px.
    subtitle_px = SUBTITLE_LINE * sub_lines + (6 if sub_lines else 0)
    sub_more = max(subtitle_px - TITLE_LINE, 0) if sub_lines else 0
    title_extra = (title_shift + (LEGEND_ROW + 8) * more_rows + 8 * rows_now + (18 if wrapped else 0)
                   + sub_more)
    top = (lay.margin.t if lay.margin.t is not None else 95) + 24 + title_extra
    if rows_now == 0:  # no legend: the row kept for it under the title would only push the plot down
        top = min(top, 80 + (18 if wrapped else 0) + title_shift + subtitle_px)
    tables = [t for t in out.data if t.type == "table"]
    if tables:  # as tall as every row needs at 16 px, so the table never scrolls inside itself
        t = tables[0]
        cells = [[str(v) for v in col] for col in (t.cells.values or ())]
        header = [re.sub(r"<[^>]+>", "", str(h)) for h in (t.header.values or ())]
        new_height = table_height(cells, header, line_px=24, chars=int(SLIDES_WIDTH / (0.55 * SLIDES_MIN_TEXT)),
                                  top=top, bottom=(lay.margin.b or 10)) + 20
    else:
        new_height = int(height * 1.12) + 24 + title_extra + SLIDES_ROW_EXTRA * (rows - 1)
    out.update_layout(height=new_height, margin_t=top)
    if lay.legend.y is not None and lay.legend.yref == "container":
        out.update_layout(legend_y=1 - (1 - lay.legend.y) * height / new_height
                          - (22 + title_shift + sub_more) / new_height)
    # Tick labels and axis titles at 16-17 px need more room under the bottom row than 13 px did.
    out.update_layout(margin_b=max(lay.margin.b if lay.margin.b is not None else 55, 70) if not tables
                      else lay.margin.b)
    return out


PHONE_WIDTH = 360  # px: a figure on a 390 px phone screen, less the page's padding
PHONE_TITLE_CHARS, PHONE_SUBPLOT_CHARS = 34, 40  # characters a line of the title / a panel title holds there


def stacked(fig: go.Figure, width: int = PHONE_WIDTH) -> go.Figure:
    """Return a copy of a subplot grid (Fig. 6, per-block lines, the depth profile) with its panels stacked in one
    column, for a phone: each panel keeps its height and gets the full width, panel titles and the title wrap to
    the narrow figure, every panel shows its own tick labels (a shared axis hid them beside the first column),
    the x title sits under the last panel only and a colour bar lies under the plot. A figure of one column, or
    one whose panels are images drawn to scale (feature maps), comes back unchanged."""
    cols, rows = _grid_columns(fig)
    lay = fig.layout
    keys = [k for k in lay.to_plotly_json() if k.startswith("xaxis")]
    if cols < 2 or any(lay[k.replace("x", "y", 1)].scaleanchor for k in keys if k.replace("x", "y", 1) in lay):
        return go.Figure(fig)
    out = go.Figure(fig)
    lay = out.layout
    # Panels in reading order (top row first, left to right), by their axes' domains.
    panels = []
    for xk in keys:
        yk = "yaxis" + xk[5:]
        xd, yd = tuple(lay[xk].domain or (0, 1)), tuple(lay[yk].domain or (0, 1))
        panels.append((-yd[1], xd[0], xk, yk, xd, yd))
    panels.sort()
    n = len(panels)
    height = lay.height or 450
    top = lay.margin.t if lay.margin.t is not None else 95
    bottom = lay.margin.b if lay.margin.b is not None else 55
    per_panel = (height - top - bottom) / rows  # each panel keeps the height it had (with its share of the gaps)
    title = wrap_text(lay.title.text or "", PHONE_TITLE_CHARS)
    title_lines = title.count("<br>") + 1 if title else 0
    title_pad = TITLE_TOP + 20 * max(title_lines - 1, 0)  # a top-anchored title of several lines grows upwards
    for t in out.data:  # long legend entries wrap to the narrow figure
        if t.name and len(t.name) > PHONE_SUBPLOT_CHARS:
            t.name = wrap_text(t.name, PHONE_SUBPLOT_CHARS)
    legend = legend_rows(out, width)
    legend_lines = sum(t.name.count("<br>") for t in out.data if t.name and t.showlegend is not False)
    titles = [a for a in lay.annotations or () if a.xref == "paper" and a.yref == "paper" and a.yanchor == "bottom"
              and not a.textangle]
    for a in titles:
        a.text = wrap_text((a.text or "").replace("<br>", " "), PHONE_SUBPLOT_CHARS)
    top_y = max(p[5][1] for p in panels)
    first_title = max([a.text.count("<br>") + 1 for a in titles if a.y >= top_y - 1e-6] or [0])
    new_top = (30 + 22 * title_lines + title_pad - TITLE_TOP
               + ((LEGEND_ROW + 10) * legend + 16 * legend_lines + 10 if legend else 0)
               + (TITLE_LINE if lay.title.subtitle and lay.title.subtitle.text else 0)
               + 16 * first_title + 8)  # the first panel's title sits above the plot
    colorbar = lay.coloraxis.colorbar is not None and any(getattr(t, "coloraxis", None) for t in out.data)
    new_bottom = bottom + (70 if colorbar else 0)
    plot_h = per_panel * n
    new_height = int(new_top + new_bottom + plot_h)
    gap = min(0.35 * per_panel, 70) / plot_h  # room between panels for the next panel's title and tick labels
    slot = (1 + gap) / n
    x_titles = [lay[xk].title.text for *_, xk, _, _, _ in panels if lay[xk].title.text]
    # Each panel's title sat centred over its old domain: pair them before anything moves.
    own = {xk: [a for a in titles if abs(a.x - (xd[0] + xd[1]) / 2) < 1e-6 and abs(a.y - yd[1]) < 1e-6]
           for *_, xk, _, xd, yd in panels}
    for i, (_, _, xk, yk, xd, yd) in enumerate(panels):
        y1 = 1 - i * slot
        y0 = max(y1 - slot + gap, 0.0)
        for a in own[xk]:
            a.update(x=0.5, y=y1)
        lay[xk].update(domain=[0, 1], title_text=x_titles[0] if x_titles and i == n - 1 else None)
        hidden = lay[yk].showticklabels is False and not lay[yk].matches  # hidden by the view, not by sharing
        lay[yk].update(domain=[y0, y1], showticklabels=not hidden)
    if legend:
        out.update_layout(legend_y=1 - (title_pad + 18 + 22 * title_lines) / new_height)
    if colorbar:
        out.update_layout(coloraxis_colorbar=dict(orientation="h", x=0.5, xanchor="center", y=-60 / plot_h,
                                                  yanchor="top", thickness=12, len=0.9, title_side="top"))
    out.update_layout(height=new_height, width=None, title_text=title, title_pad_t=title_pad,
                      margin=dict(t=new_top, b=new_bottom, l=min(lay.margin.l or 85, 90), r=10))
    return out


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    cols = cols or (1 if n == 1 else 2 if n <= 4 else 3 if n <= 9 else 4)
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def subplot_grid(titles: Sequence[str], cols: int | None = None, shared_y: bool = True):
    rows, cols = grid_shape(max(len(titles), 1), cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), shared_yaxes=shared_y,
                        horizontal_spacing=0.06 if cols > 1 else 0.02,
                        vertical_spacing=min(0.12, 0.35 / max(rows - 1, 1)) if rows > 1 else 0.1)
    return fig, rows, cols


def grid_position(i: int, cols: int) -> tuple[int, int]:
    return i // cols + 1, i % cols + 1


def s_axis_range(values: Iterable[float]) -> list[float]:
    """Return a y range that shows [0, 1] for sigmoid gates and more for gates that leave it (relu, tanh)."""
    v = np.asarray(list(values), np.float64)
    v = v[np.isfinite(v)]
    lo = min(0.0, float(v.min())) if v.size else 0.0
    hi = max(1.0, float(v.max())) if v.size else 1.0
    pad = 0.03 * (hi - lo)
    return [lo - pad, hi + pad]


def label_axes(fig: go.Figure, rows: int, cols: int, n: int, x: str, y: str) -> None:
    """Put the x title under the bottom row and the y title left of the first column only."""
    for i in range(n):
        r, c = grid_position(i, cols)
        if r == rows or i + cols >= n:
            fig.update_xaxes(title_text=x, row=r, col=c)
        if c == 1:
            fig.update_yaxes(title_text=y, row=r, col=c)


INTEGER_TICKS = 10  # up to this many integer positions (channels, hidden units, epochs) get a tick each


def integer_axis(count: int, start: int = 0) -> dict:
    """Return axis settings for `count` integer positions from `start` (channels, hidden units, counts): a tick at
    every integer up to INTEGER_TICKS positions, whole-number labels beyond, never a fractional tick like 0.5;
    the range spans the positions with half a step either side (bars sit centred on their integer)."""
    settings = dict(tickformat="d", range=[start - 0.5, start + max(count, 1) - 0.5])
    if count <= INTEGER_TICKS:
        settings.update(tickmode="linear", tick0=start, dtick=1)
    return settings


def panel_height(rows: int, per_row: int = 230, extra: int = 110) -> int:
    return extra + per_row * rows


LABEL_WIDTH = 20  # characters of a class name on a bar chart's axis (about the 140 px left margin)


def truncate_label(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip(" ,") + "…"


def short_labels(names: Sequence[str], width: int = LABEL_WIDTH) -> list[str]:
    """Return axis labels for class `names`: the first synonym ("tabby, tabby cat" → "tabby"), cut to `width`
    characters with "…", and unique (a clash falls back to the cut full name, then gets " (2)", " (3)"…), so
    that no two bars share a category. The full names go to the hover text."""
    names = [str(n) for n in names]
    labels = [truncate_label(n.split(", ")[0], width) for n in names]
    clash = {l for l in labels if labels.count(l) > 1}
    labels = [truncate_label(n, width) if l in clash else l for n, l in zip(names, labels)]
    used: set[str] = set()
    out = []
    for label in labels:
        unique, k = label, 2
        while unique in used:
            unique, k = f"{label} ({k})", k + 1
        used.add(unique)
        out.append(unique)
    return out


def class_colors(classes: Sequence[str]) -> dict[str, str]:
    return {c: color_for(i) for i, c in enumerate(c for c in classes if c != "all")} | {"all": ALL_COLOR}


def table_figure(frame: pd.DataFrame, title: str, names: Mapping[str, str] | None = None, **readable) -> go.Figure:
    """A table figure (for exporting tables as images): readable_table's headers and numbers, every row shown
    (the figure is as tall as its rows need, so the table never scrolls inside itself)."""
    shown = readable_table(frame, names, **readable)
    cells = [list(shown[c]) for c in shown.columns]
    header = [str(c) for c in shown.columns]
    fig = go.Figure(go.Table(header=dict(values=[f"<b>{c}</b>" for c in header], fill_color="#e8eef7",
                                         align="left"),
                             cells=dict(values=cells, align="left", height=24)))
    return apply_layout(fig, title, height=max(table_height(cells, header), 120),
                        margin=dict(l=10, r=10, t=50, b=10))


def decode_typed_arrays(node):
    """Return `node` (a figure's JSON-like dict) with Plotly's typed arrays ({"dtype", "bdata", "shape"}) as numpy
    arrays. A figure that went through pickle (st.cache_data) or JSON holds its arrays in that form, which code that
    reads trace.x / .y / .z (click targets, lecture mode's sorted bars) cannot use."""
    import base64
    if isinstance(node, dict):
        if "bdata" in node and "dtype" in node:
            arr = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            shape = node.get("shape")
            if shape:
                arr = arr.reshape([int(n) for n in str(shape).split(",")] if isinstance(shape, str) else shape)
            return arr.copy()
        return {k: decode_typed_arrays(v) for k, v in node.items()}
    if isinstance(node, list):
        return [decode_typed_arrays(v) for v in node]
    return node


def has_typed_arrays(fig: go.Figure) -> bool:
    """Return whether any trace of `fig` holds an array in Plotly's typed-array form (see decode_typed_arrays)."""
    return any(isinstance(v, dict) and "bdata" in v for t in fig.data for v in t.to_plotly_json().values())


def with_arrays(fig: go.Figure) -> go.Figure:
    """Return `fig` with its typed arrays decoded (the same figure when it has none)."""
    if not has_typed_arrays(fig):
        return fig
    return go.Figure(decode_typed_arrays(fig.to_plotly_json()), skip_invalid=True)
