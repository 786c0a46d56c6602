"""The "Inside a block" view: one SE block's computation for one image, as a chain with its shapes.

U (C×H×W) → z = squeeze(U) (C) → δ(W1·z) (C/r) → s = σ(W2·δ(W1·z)) (C) → U·s (C×H×W) → prediction.

Everything is read through the recorder (capture_internals), so it works for every SE implementation
sevis knows; where an implementation has no readable W1 the hidden layer is left out and a note says so.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.analysis.anatomy import DEFAULT_K, BlockAnatomy, block_anatomy, chain_text
from sevis.analysis.images import default_sample_images, image_stem
from sevis.core.formula import block_formula
from sevis.core.recorder import find_se_blocks
from sevis.errors import SevisError
from sevis.figures.overlay import overlay_panel
from sevis.figures.plots import CHANNEL_AXIS, PALETTE, Panel, apply_layout, integer_axis, s_axis_range
from sevis.figures.sentences import finish, is_number, num, same
from sevis.figures.shared_figures import MAP_COLUMNS, feature_map_grid, topk_bar, topk_frame
from sevis.models.zoo import LoadedModel
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "inside"
TITLE = "Inside a block"


NO_BLOCKS = "This model has no SE blocks, so there is no block to look inside."
MAX_K = 8  # channels each side: beyond this the feature-map grid is too small to read


def formula_words(gate: str, act: str | None) -> str:
    """Return the sentence naming what the block computes, with its own gate and activation."""
    return f"This block computes s = {gate}(W₂·{act}(W₁·z))" if act else f"This block computes s = {gate}(W·z)"


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return Inside a block for the one image of request.images at request.block (None: default_block), with
    request.n channels each side (None: DEFAULT_K): the chain z → δ(W1·z) → s, the feature maps U and U·s of the
    highest- and lowest-s channels, the prediction, and the same channels over the image.

    notes: the chain with its shapes (starts "U ("), the block's formula (starts "This block computes"), then
    what the recorder could not read. numbers: `block`, `channels`, `k`, `top_channel`/`top_s`,
    `bottom_channel`/`bottom_s`, `channels_below_half`, `energy_kept`, `top_class`, `top_probability`."""
    result = ViewResult(SLUG, TITLE)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    if not blocks:
        result.notes.append(NO_BLOCKS)
        return result
    if len(request.images) != 1:
        raise SevisError(f"the {TITLE} view needs exactly one image, {len(request.images)} given: name one image "
                         "file (sevis export inside IMAGE --block B) or pick one in the app's sidebar")
    if request.channel is not None:
        raise SevisError(f"the {TITLE} view shows every channel of its block; one channel is the Channel view's "
                         "(sevis export channel --block B --channel C)")
    names = [b.name for b in blocks]
    block = request.block or default_block(blocks)
    if block not in names:
        raise SevisError(f"no SE block named {block!r} in {loaded.name}; blocks: {', '.join(names)}")
    k = DEFAULT_K if request.n is None else int(request.n)
    if not 1 <= k <= MAX_K:
        raise SevisError(f"the {TITLE} view shows 1 to {MAX_K} channels each side, not {k}")
    image = request.images[0]
    a = block_anatomy(loaded, image, block)
    gate, act = block_formula(loaded.model, a.block)
    result.panels = anatomy_panels(a, k, gate, act) + [overlay_panel(loaded, a, image)]
    result.notes += [chain_text(a, gate), formula_words(gate, act), *a.notes]
    result.takeaway = anatomy_takeaway(a, k)
    high, low = a.extremes(k)
    result.numbers = {"block": block, "channels": len(a.s), "k": k, "top_channel": int(high[0]),
                      "top_s": float(a.s[high[0]]), "bottom_channel": int(low[0]), "bottom_s": float(a.s[low[0]]),
                      "channels_below_half": int((a.s < 0.5).sum()), "energy_kept": energy_kept(a),
                      "top_class": a.topk[0][0], "top_probability": float(a.topk[0][1])}
    return result


def prepared_requests(loaded: LoadedModel) -> list[ViewRequest]:
    """Return the request `sevis prepare` stores: the app's first open, the first sample image the sidebar
    preselects at the default block."""
    return [ViewRequest(images=tuple(default_sample_images(loaded)[:1]))]


def anatomy_panels(a: BlockAnatomy, k: int = DEFAULT_K, gate: str = "σ", act: str | None = "δ") -> list[Panel]:
    """Return the view's panels: the chain z → δ(W1·z) → s as bars, U and U·s for the k highest- and
    k lowest-s channels on one colour scale, and the prediction. `gate` and `act` name the block's own gate and
    activation (sevis.core.formula.block_formula), so the labels show the formula this block computes."""
    act = act or "δ"
    name, stem = a.block.name, image_stem(a.image)
    high, low = a.extremes(k)
    sh = a.shapes()
    rows = [pd.DataFrame({"quantity": "z", "label": f"z = squeeze(U): {sh['z']} values, one per channel",
                          "index": np.arange(len(a.z)), "value": a.z})]
    if a.hidden is not None:
        rows.append(pd.DataFrame({"quantity": "hidden", "label": f"{act}(W1·z): {sh['δ(W1·z)']} hidden units (C/r)",
                                  "index": np.arange(len(a.hidden)), "value": a.hidden}))
    rows.append(pd.DataFrame({"quantity": "s", "label": f"s = {gate}(W2·{act}(W1·z)): {sh['s']} values, the excitation",
                              "index": np.arange(len(a.s)), "value": a.s}))
    chain = pd.concat(rows, ignore_index=True)
    chain.insert(0, "block", name)
    chain.insert(0, "image", a.image)

    columns = [f"ch {c} · s={a.s[c]:.2f}" for c in high + low]
    maps = []
    for col, c in zip(columns, high + low):
        for row, arr in ((f"U ({sh['U']})", a.u[c]), (f"U·s ({sh['U·s']})", a.scaled[c])):
            yy, xx = np.indices(arr.shape)
            maps.append(pd.DataFrame({"row": row, "column": col, "channel": c, "s": float(a.s[c]),
                                      "group": "highest s" if c in high else "lowest s",
                                      "y": yy.ravel(), "x": xx.ravel(), "value": arr.ravel()}))
    maps = pd.concat(maps, ignore_index=True)
    zmax = float(np.abs(a.u[high + low]).max()) or 1.0
    wrapped = len(high) + len(low) > MAP_COLUMNS  # the lowest-s channels get their own pair of rows
    top = topk_frame(a.topk, a.image)
    return [
        Panel(f"{stem}_{name}_chain", f"Inside {name} for {a.image}: z, δ(W1·z) and s",
                "Top: the squeeze z, one average per channel of U. "
                + ("Middle: the C/r hidden units δ(W1·z) of the bottleneck. " if a.hidden is not None else "")
                + f"Bottom: the excitation s each channel is multiplied by. Green: the {len(high)} channels with "
                "the highest s, red: the lowest (shown as feature maps below). Click a bar to open that channel.",
                anatomy_chain(chain, name, high, low,
                                f"Inside {name} for {a.image}: squeeze z → hidden δ(W1·z) → excitation s"
                                if a.hidden is not None else f"Inside {name} for {a.image}: squeeze z → excitation s"),
                chain),
        Panel(f"{stem}_{name}_feature_maps", f"Feature maps U and U·s at {name} for {a.image}",
                maps_caption(len(high), len(low), wrapped),
                feature_map_grid(maps, f"Feature maps before (U) and after (U·s) scaling at {name}: "
                                         f"{len(high)} highest-s and {len(low)} lowest-s channels",
                                 columns, list(dict.fromkeys(maps["row"])), zmax,
                                 max_cols=len(high) if wrapped else None), maps),
        Panel(f"{stem}_{name}_prediction", f"Prediction for {a.image}",
                "The five most probable classes for this image, from the intact network.",
                topk_bar(top, f"Top-5 predictions for {a.image}"), top),
    ]


def maps_caption(n_high: int, n_low: int, wrapped: bool) -> str:
    """Return the feature maps' caption for the grid's layout: one pair of rows, or one pair per group."""
    if wrapped:
        return (f"Upper two rows: the block's input U of the {n_high} channels with the highest s, and the same "
                f"channels after scaling (U·s); lower two rows: the same for the {n_low} channels with the lowest s. "
                "One colour scale throughout, so a channel that s suppresses fades to white.")
    return (f"Top row: the block's input U for the {n_high} channels with the highest s (left) and the {n_low} with "
            "the lowest (right); bottom row: the same channels after scaling, U·s, on the same colour scale, so a "
            "channel that s suppresses fades to white.")


def default_block(blocks: Sequence) -> str:
    """Return the block the view opens on: the first block of stage 2 (SE_2_1 in SE-ResNets: large feature
    maps that still show the image), else the first block of the second stage present, else the first block."""
    stage2 = [b.name for b in blocks if b.stage == 2]
    if stage2:
        return stage2[0]
    stages = list(dict.fromkeys(b.stage for b in blocks))
    second = [b.name for b in blocks if len(stages) > 1 and b.stage == stages[1]]
    return (second or [blocks[0].name])[0]


def energy_kept(a: BlockAnatomy) -> float:
    """Return the share of U's energy (sum of squares) that U·s keeps; NaN when U is zero everywhere. A ratio
    of sums, so it holds for feature maps of any size (random weights can leave U near 1e-22)."""
    u2 = float((a.u.astype(np.float64) ** 2).sum())
    return float((a.scaled.astype(np.float64) ** 2).sum() / u2) if u2 > 0 else float("nan")


def anatomy_takeaway(a: BlockAnatomy, k: int = DEFAULT_K) -> str:
    """Return one sentence computed from the block's numbers: which channels pass, which are muted (or that
    s is the same in every channel), how much of U's energy U·s keeps."""
    high, low = a.extremes(k)
    name, n = a.block.name, len(a.s)
    below = int((a.s < 0.5).sum())
    energy = energy_kept(a)
    kept = ("U is zero everywhere, so there is no energy to keep" if not is_number(energy) else
            f"U·s keeps {num(100 * energy, '.0f' if energy >= 0.01 else '.2g')}% of U's energy (sum of squares)")
    if same(a.s[high[0]], a.s[low[0]]):
        return finish(f"At {name}, s is {num(a.s[high[0]])} in every one of the {n} channels (to two decimals): "
                      f"the block scales all channels alike and picks none out; {kept}.")
    return finish(f"At {name}, channel {high[0]} is passed on most (s = {num(a.s[high[0]])}) and channel {low[0]} "
                  f"is scaled down most (s = {num(a.s[low[0]])}); {below} of {n} channels get s < 0.5, and {kept}.")


HIGH_COLOR, LOW_COLOR, OTHER_COLOR = "#2ca02c", "#d62728", "#9aa5b1"  # highest-s, lowest-s, other channels


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
        fig.update_xaxes(title_text=CHANNEL_AXIS if per_channel else "hidden unit (C/r of them)",
                         **integer_axis(len(idx)), row=i + 1, col=1)
        if q == "s":
            fig.update_yaxes(range=s_axis_range(part["value"]), row=i + 1, col=1)
    return apply_layout(fig, title or f"Inside {block}: squeeze z, hidden δ(W1·z), excitation s",
                        height=150 + 190 * len(quantities),
                        showlegend=False, bargap=0.1, clickmode="event+select")
