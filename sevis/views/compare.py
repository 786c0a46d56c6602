"""Compare view: excitations of two or more images (or class means) overlaid, their difference and similarity by depth.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sevis.analysis.images import analyse_images, default_sample_images
from sevis.analysis.reference import class_mean_excitations, paper_blocks, reference_statistics
from sevis.core.recorder import find_se_blocks
from sevis.core.statistics import similarity_by_depth
from sevis.errors import SevisError
from sevis.figures.plots import (
    CHANNEL_AXIS,
    PALETTE,
    Panel,
    apply_layout,
    color_for,
    grid_position,
    label_axes,
    panel_height,
    subplot_grid,
)
from sevis.figures.sentences import finish, num, same
from sevis.figures.shared_figures import block_lines, excitation_frame
from sevis.models.zoo import LoadedModel
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "compare"
TITLE = "Compare"


NO_BLOCKS = "This model has no SE blocks: nothing to compare."
ALL_IMAGES = "all"  # in request.classes: the mean over every reference image


def mean_label(cls: str) -> str:
    """Return how a class mean is named in the view: "mean of Bag", "mean of all images"."""
    return "mean of all images" if cls == ALL_IMAGES else f"mean of {cls}"


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Compare view of request.images (in order), then the class means of request.classes over the
    reference set (request.folder; "all": the mean over every image), at request.blocks (None: every block up to
    8, else the paper's choice): overlaid, the first two's difference, and their similarity against depth.

    numbers: the first pair's Pearson r per block (`pearson/<block>`), `items` (how many are compared)."""
    result = ViewResult(SLUG, TITLE)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    if not blocks:
        result.notes.append(NO_BLOCKS)
        return result
    names = [b.name for b in blocks]
    unknown = [b for b in request.blocks or () if b not in names]
    if unknown:
        raise SevisError(f"no SE block named {', '.join(unknown)} in {loaded.name}; blocks: {', '.join(names)}")
    if len(request.images) + len(request.classes or ()) < 2:
        raise SevisError(f"the {TITLE} view needs two or more images or class means: name two image files, or one "
                         "and --classes CLASS (or 'all' for the mean over every reference image)")
    items: "OrderedDict[str, dict]" = OrderedDict((r.name, r.excitations)
                                                  for r in analyse_images(loaded, list(request.images)))
    if request.classes:
        ref = reference_statistics(loaded, request.folder, progress=progress)
        missing = [c for c in request.classes if c != ALL_IMAGES and c not in ref.stats.classes]
        if missing:
            raise SevisError(f"unknown class(es) {', '.join(missing)}; classes: {', '.join(ref.stats.classes)} "
                             f"(or {ALL_IMAGES!r})")
        for cls in request.classes:
            items[mean_label(cls)] = class_mean_excitations(ref.stats, cls)
        result.notes.append(f"Class means over {ref.source}.")
    labels = list(items)
    if len(labels) > 2:
        result.notes.append(f"The difference plot shows the first two: {labels[0]} and {labels[1]}.")
    sel = list(request.blocks) if request.blocks else (names if len(names) <= 8 else paper_blocks(blocks))
    result.panels = compare_panels(items, sel)
    similarity = result.panels[-1].data
    result.takeaway = compare_takeaway(similarity)
    first = similarity[similarity["pair"] == similarity["pair"].iloc[0]]
    result.numbers = {"items": len(labels), **{f"pearson/{b}": float(r) for b, r in zip(first["block"],
                                                                                         first["pearson"])}}
    return result


def prepared_requests(loaded: LoadedModel) -> list[ViewRequest]:
    """Return the request `sevis prepare` stores: the app's first open, the sample images the sidebar
    preselects."""
    return [ViewRequest(images=tuple(default_sample_images(loaded)))]


def compare_panels(items: Mapping[str, Mapping[str, np.ndarray]], blocks: Sequence[str] | None = None) -> list[Panel]:
    """Overlay, difference (first two) and similarity-by-depth panels for two or more excitation sets.

    items: label -> (block -> C-vector); a label may be an image or a class mean ("mean of class Bag").
    """
    labels = list(items)
    if len(labels) < 2:
        raise ValueError("compare needs at least two images or class means")
    frame = pd.concat([excitation_frame(items[l], l) for l in labels], ignore_index=True)
    sel = frame if blocks is None else frame[frame["block"].isin(list(blocks))]
    a, b = labels[0], labels[1]
    sims = []
    for other in labels[1:]:
        s = similarity_by_depth(items[a], items[other])
        s.insert(0, "pair", f"{a} vs {other}")
        sims.append(s)
    sim = pd.concat(sims, ignore_index=True)
    diff = sel[sel["image"].isin([a, b])]
    return [
        Panel("compare_overlay", "Excitations overlaid per SE block",
                "One panel per SE block; one line per image (or class mean). Where the lines agree, the block "
                "treats the inputs alike.", block_lines(sel, blocks, title="Excitations overlaid per SE block"), sel),
        Panel("compare_difference", f"Difference s({a}) − s({b})",
                "Per channel, how much more (blue) or less (red) the first input is excited than the second.",
                difference_plot(diff, a, b, blocks), diff),
        Panel("compare_similarity", "Similarity of the excitations against depth",
                "Pearson correlation r of the excitation vectors at each block (for a single pair also the cosine "
                "similarity, which stays high for any two positive s vectors, so r is the one to read). Early "
                "blocks tend to respond alike to any input; deep blocks differ by class.",
                similarity_plot(sim, "Similarity of the excitation patterns at each depth"), sim),
    ]


def compare_takeaway(similarity: pd.DataFrame, measure: str = "pearson") -> str | None:
    """Return where the first pair is most and least alike (frame from similarity_by_depth / compare_panels),
    or that it is equally alike at every block."""
    part = similarity[similarity["pair"] == similarity["pair"].iloc[0]] if "pair" in similarity else similarity
    part = part.dropna(subset=[measure])
    if part.empty:
        return None
    hi, lo = part.loc[part[measure].idxmax()], part.loc[part[measure].idxmin()]
    name = {"pearson": "r", "cosine": "cosine"}.get(measure, measure)
    pair = f"{part['pair'].iloc[0]}: " if "pair" in part else ""
    if same(hi[measure], lo[measure]):
        return finish(capitalise=not pair,
                      text=f"{pair}the excitation patterns are equally alike at every block where {name} is defined "
                           f"({name} = {num(hi[measure])}).")
    return finish(capitalise=not pair,
                  text=f"{pair}the excitation patterns are most alike at {hi['block']} ({name} = {num(hi[measure])}) "
                       f"and least alike at {lo['block']} ({name} = {num(lo[measure])}).")


def difference_plot(frame: pd.DataFrame, a: str, b: str, blocks: Sequence[str] | None = None,
                    cols: int | None = None) -> go.Figure:
    """Per-block bars of s(a) − s(b) over channel index."""
    blocks = list(blocks) if blocks is not None else list(dict.fromkeys(frame["block"]))
    fig, rows, cols = subplot_grid(blocks, cols)
    lim = 0.0
    for i, block in enumerate(blocks):
        r, c = grid_position(i, cols)
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
    label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, "Δs")
    return apply_layout(fig, f"Difference of excitations: s({a}) − s({b})", height=panel_height(rows), bargap=0.05)


def similarity_plot(frame: pd.DataFrame,
                    title: str = "How similar are the excitation patterns at each depth?") -> go.Figure:
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
    return apply_layout(fig, title, height=360, subtitle=subtitle)
