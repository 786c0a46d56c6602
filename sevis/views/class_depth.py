"""Class x depth view: the paper's Fig. 6 and 7, the depth profile with the untrained control, paper vs this model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.analysis.measures import measures_and_paper
from sevis.analysis.reference import (
    ReferenceStats,
    paper_blocks,
    reference_control,
    reference_statistics,
    reference_sweep,
    too_few_images,
)
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.core.statistics import ExcitationStats, depth_measures
from sevis.errors import SevisError
from sevis.figures.plots import (
    CHANNEL_AXIS,
    MEAN_S_AXIS,
    Panel,
    apply_layout,
    class_colors,
    grid_position,
    label_axes,
    panel_height,
    s_axis_range,
    subplot_grid,
    table_figure,
)
from sevis.figures.sentences import curve, difference, finish, listing, num
from sevis.figures.shared_figures import class_depth_frame, depth_profile, deviation_frame, fig6, fig6_deviation
from sevis.names import fig6_default_classes
from sevis.views.base import Progress, ViewRequest, ViewResult


def class_depth_measures(ref: ReferenceStats, control: ExcitationStats | None, blocks: Sequence[SEBlock],
                         knockout_identity: pd.DataFrame | None = None,
                         knockout_mean: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (the depth measures per block, the paper-vs-model table) over a reference set."""
    return measures_and_paper(ref.stats, control, blocks, knockout_identity, knockout_mean)


SLUG = "class-depth"
TITLE = "Class × depth"
RANDOM_NOTE = ("With random weights these statistics are themselves an untrained control: they show what the data and "
               "the architecture give without learning. The paper's findings are about trained models, so their table "
               "is not shown.")


def default_channels(blocks: Sequence[SEBlock]) -> tuple[str, int]:
    """Return the Fig. 6 channel choice a view opens with: 50 evenly spaced channels of wide blocks, else all."""
    widest = max(b.channels for b in blocks)
    return ("uniform" if widest > 64 else "all"), min(50, widest)


def compute(loaded, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Class × depth view: Fig. 6 and 7 over the reference set, the depth profile beside the untrained
    control (its seeds' mean and range) and the knock-out sweeps, the paper-vs-model table and the takeaway.

    numbers: per block, its share of class means within 0.05 of "all" (`near_all/<block>`), its class specificity
    and the control's (`class_specificity/<block>`, `control_class_specificity/<block>`)."""
    result = ViewResult(SLUG, TITLE)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    if not blocks:
        result.notes.append("This model has no SE blocks.")
        return result
    ref = reference_statistics(loaded, request.folder, progress=progress)
    acc = f" · accuracy {ref.accuracy:.1%}" if ref.accuracy is not None else ""
    result.notes.append(f"Statistics over {ref.source}{acc}.")
    if ref.note:
        result.notes.append(ref.note)
    problem = too_few_images(ref.stats)
    if problem:
        result.notes.append(problem)
        return result
    classes = list(request.classes) if request.classes else fig6_default_classes(ref.stats.classes)
    names = [b.name for b in blocks]
    sel = list(request.blocks) if request.blocks else paper_blocks(blocks)
    unknown = [c for c in classes if c not in ref.stats.classes]
    if request.fig7_class and request.fig7_class not in ref.stats.classes:
        unknown.append(request.fig7_class)
    if unknown:
        raise SevisError(f"unknown class(es) {', '.join(unknown)}; classes: {', '.join(ref.stats.classes)}")
    if [b for b in sel if b not in names]:
        raise SevisError(f"no SE block named {', '.join(b for b in sel if b not in names)} in {loaded.name}; "
                         f"blocks: {', '.join(names)}")
    channels, n = default_channels(blocks)
    channels, n = request.channels or channels, request.n or n
    result.panels = [p for p in class_figure_panels(ref, classes, sel, channels, n, request.seed, request.fig7_class,
                                                    request.form) if request.wants(p.key)]
    if not (request.wants("depth_profile") or request.wants("paper_vs_model") or request.wants("what_se_adds")):
        return result  # Fig. 6 / Fig. 7 alone: no control, sweeps or squeeze comparison to compute
    control = ko_identity = ko_mean = None
    if loaded.random_weights:
        result.notes.append(RANDOM_NOTE)
    else:
        try:
            control = reference_control(loaded, request.folder)
            if ref.accuracy is not None:  # the knock-out finding needs labels in the model's classes
                ko_identity = reference_sweep(loaded, request.folder, "identity", ref.stats)[0]
                ko_mean = reference_sweep(loaded, request.folder, "mean", ref.stats)[0]
        except SevisError as e:
            result.notes.append(str(e))
    measures, paper = class_depth_measures(ref, control, blocks, ko_identity, ko_mean)
    paper = None if loaded.random_weights else paper
    result.panels += depth_profile_panels(ref, measures, paper)
    adds = None
    if ref.accuracy is not None and not loaded.random_weights:  # needs labels in the model's classes
        adds = squeeze_comparison(loaded, ref, request.folder)
        if adds is not None:
            result.panels.append(what_se_adds_panel(adds, ref.source))
            for _, row in adds.iterrows():
                result.numbers[f"s_minus_z/{row['block']}"] = float(row["s_minus_z"])
    shares = {b: ref.stats.near_all_share(b) for b in sel}
    result.takeaway = class_depth_takeaway(measures, paper, sel, shares)
    if adds is not None:  # like the rest of the takeaway, about the blocks in Fig. 6
        result.takeaway = finish(f"{result.takeaway} {what_se_adds_words(adds[adds['block'].isin(sel)])}")
    for _, row in measures.iterrows():
        result.numbers[f"near_all/{row['block']}"] = ref.stats.near_all_share(row["block"])
        for col in ("class_specificity", "control_class_specificity"):
            if col in measures:
                result.numbers[f"{col}/{row['block']}"] = float(row[col])
    return result


FIG6_FORMS = {"deviation": "deviation from all (sorted channels)", "paper": "the paper's form (mean s per class)"}


def squeeze_comparison(loaded, ref: ReferenceStats, folder: str | None) -> pd.DataFrame | None:
    """Return what SE adds beyond its input at every block (sevis.analysis.squeeze.what_se_adds: s beside z, the plain
    twin and the untrained control), or None when the reference set has no labelled batches for this model."""
    from sevis.analysis.reference import reference_batches
    from sevis.analysis.squeeze import what_se_adds
    from sevis.models.zoo import load_model
    from sevis.names import plain_twin_spec
    try:
        batches, _ = reference_batches(loaded, folder)
    except SevisError:
        return None
    twin_spec = plain_twin_spec(loaded.spec)
    twin = None
    if twin_spec:
        try:
            twin = load_model(twin_spec)
        except SevisError:
            twin = None  # not trained here: the comparison goes without it
    return what_se_adds(loaded, ref.stats, batches, twin)


def what_se_adds_panel(adds: pd.DataFrame, source: str) -> Panel:
    """Return the panel of what SE adds: class specificity of s, of its input z and of the plain twin's features at
    the same place, per block, with s − z beside the untrained control's range."""
    x = list(adds["block"])
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Class specificity of s, of its input z, and of the plain twin",
                                        "s − z, and the untrained control's range"))
    for col, name, dash in (("s", "s (the excitation)", "solid"), ("z", "z = GAP(U), its input", "dash"),
                            ("twin", "plain twin's features, same place", "dot")):
        if adds[col].notna().any():
            fig.add_trace(go.Scatter(x=x, y=adds[col], mode="lines+markers", name=name, line=dict(dash=dash)),
                          row=1, col=1)
    lo, hi = adds["control_s_minus_z_min"], adds["control_s_minus_z_max"]
    fig.add_trace(go.Scatter(x=x + x[::-1], y=list(hi) + list(lo[::-1]), fill="toself", line=dict(width=0),
                             fillcolor="rgba(120,120,120,0.25)", name="untrained control (range of seeds)",
                             hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Bar(x=x, y=adds["s_minus_z"], name="s − z (trained)", marker_color=[
        "#1b7837" if a is True else "#b2182b" if a is False else "#999999" for a in adds["adds"]]), row=1, col=2)
    fig.update_yaxes(title_text="class specificity", row=1, col=1)
    fig.update_yaxes(title_text="difference", row=1, col=2)
    fig.update_xaxes(title_text="SE block (shallow → deep)")
    return Panel("what_se_adds", "What SE adds beyond its input",
                 f"Over {source}. Left: the class specificity (share of variance between class means) of the "
                 "excitation s, of the squeeze z it is computed from, and of the plain twin's pooled features at the "
                 "same place (trained without SE). Right: s − z per block, green where it lies above every seed of "
                 "the untrained control (the gate adds class information), red where below (the gate is more "
                 "class-agnostic than its input), grey inside the control's range (no difference shown).",
                 apply_layout(fig, "What SE adds beyond its input", height=420), adds)


def what_se_adds_words(adds: pd.DataFrame) -> str:
    """Return one sentence on where s is more, and where less, class-specific than its input z (beyond the
    untrained control's range), and how the plain twin's features compare."""
    more = list(adds.loc[adds["adds"].eq(True), "block"])
    less = list(adds.loc[adds["adds"].eq(False), "block"])
    n = len(adds)
    if not more and not less:
        text = (f"At none of these {n} blocks does s differ from its input z in class specificity by more than the "
                "untrained control does: no difference shown.")
    else:
        parts = []
        if more:
            parts.append(f"more class-specific than its input z at {len(more)} of these {n} blocks ({listing(more)})")
        if less:
            parts.append(f"less at {len(less)} ({listing(less)})")
        text = f"Beyond the untrained control's range, s is {' and '.join(parts)}."
    twin = adds["twin"].dropna()
    if len(twin):
        lo, hi = num(twin.min()), num(twin.max())
        span = lo if lo == hi else f"{lo} to {hi}"
        text += f" The plain twin's features at the same places have class specificity {span}."
    return text


def class_depth_panels(ref: ReferenceStats, classes: Sequence[str], blocks: Sequence[str], channels: str = "uniform",
                       n: int | None = 50, seed: int = 0, fig7_class: str | None = None,
                       measures: pd.DataFrame | None = None, paper: pd.DataFrame | None = None,
                       form: str = "deviation") -> list[Panel]:
    """The paper's Fig. 6 (per-class means, as deviations from "all" or in the paper's form), Fig. 7 (mean ± std in
    one class), the depth profile (measures from class_depth_measures; without them, the trained model's alone)
    and the paper-vs-model table."""
    return (class_figure_panels(ref, classes, blocks, channels, n, seed, fig7_class, form)
            + depth_profile_panels(ref, measures, paper))


def class_figure_panels(ref: ReferenceStats, classes: Sequence[str], blocks: Sequence[str], channels: str = "uniform",
                        n: int | None = 50, seed: int = 0, fig7_class: str | None = None,
                        form: str = "deviation") -> list[Panel]:
    """The paper's Fig. 6 and Fig. 7 (mean ± std within one class). `form` "deviation" (default): each class
    mean minus the mean over all images, channels sorted by how much the classes differ, one colour scale, each
    panel titled with its share of class means within 0.05 of "all"; "paper": the class means over channel
    index, as the paper draws them."""
    if form not in FIG6_FORMS:
        raise ValueError(f"unknown Fig. 6 form {form!r}; use {' or '.join(FIG6_FORMS)}")
    stats = ref.stats
    frame = class_depth_frame(stats, classes, blocks, channels, n, seed)
    how = {"all": "all channels", "first": f"the first {n} channels",
           "uniform": f"{n} evenly spaced channels"}.get(channels, channels)
    if form == "deviation":
        dev = deviation_frame(frame)
        panel = Panel(
            "fig6_class_means", "How far each class's mean excitation lies from the mean over all images (Fig. 6)",
            f"Over {ref.source}; {how}. Each row is one class, each column one channel, the colour the class's "
            "mean s minus the mean over all images (white: this class gets the same s as every image; red: more; "
            "blue: less), on one scale for every block. Channels are sorted by how much the shown classes differ "
            "(most class-dependent first). Each title gives the block's share of class means within 0.05 of 'all' "
            "(over every class and channel): near 100% the block is class-agnostic, lower it is class-specific. "
            "The paper finds early blocks "
            "class-agnostic and late ones class-specific.",
            fig6_deviation(dev, shares={b: stats.near_all_share(b) for b in dict.fromkeys(dev["block"])}), dev)
    else:
        panel = Panel(
            "fig6_class_means", "Mean excitation per class at each SE block (Fig. 6)",
            f"Over {ref.source}; {how}. Each coloured line is the mean excitation s of one class, the dashed "
            "black line the mean over all images. Where the lines coincide the block is class-agnostic; where "
            "they part it is class-specific. The paper finds early blocks class-agnostic and late ones "
            "class-specific, with some late blocks saturated near 1.", fig6(frame), frame)
    panels = [panel]
    cls7 = fig7_class or (classes[0] if classes else None)
    if cls7 is not None:
        f7 = class_depth_frame(stats, [cls7], blocks, channels, n, seed)
        f7 = f7[f7["class"] == cls7].reset_index(drop=True)
        panels.append(Panel(
            "fig7_within_class", f"Mean ± std of the excitation within one class: {cls7} (Fig. 7)",
            f"Over the {cls7} images of {ref.source}; the band is ± 1 standard deviation across those images: "
            "even within one class, inputs are excited differently.", fig7(f7, cls7), f7))
    return panels


def depth_profile_panels(ref: ReferenceStats, measures: pd.DataFrame | None = None,
                         paper: pd.DataFrame | None = None) -> list[Panel]:
    """The depth profile (the measures against depth, the untrained control dashed when measured) and the
    paper-vs-model table (when given)."""
    panels: list[Panel] = []
    if measures is None:
        measures = depth_measures(ref.stats)
    seeds = int(measures["control_seeds"].iloc[0]) if "control_seeds" in measures and len(measures) else 1
    control_words = ("; the dashed line is the untrained control (same architecture, seeded random weights, "
                     "BatchNorm recalibrated on the same images), what the data and the architecture give "
                     "without any learning" + (f": the mean of {seeds} seeds, the grey band their range"
                                               if seeds > 1 else "")
                     if "control_class_specificity" in measures else "")
    panels.append(Panel(
        "depth_profile", "How the excitations depend on the class, from shallow to deep blocks",
        f"Over {ref.source}. Four measures per SE block, trained model solid{control_words}. Class specificity: "
        "the share of the variance of s between class means (0 = every class gets the same s, 1 = s depends only "
        "on the class). Decorrelation: 1 − the mean Pearson r between class-mean profiles (0 = one pattern for "
        "every class, up to scale). Between-class spread: how far class means lie apart, in units of s. "
        "Saturation: the share of channels whose mean s exceeds 0.9 (the block passes them nearly unchanged). "
        "The paper: class-agnostic early, class-specific late, SE_5_2 saturated.",
        depth_profile(measures), measures))
    if paper is not None and len(paper):
        panels.append(Panel(
            "paper_vs_model", "The paper's findings (Section 7.2) in this model",
            f"Each finding of the paper's Section 7.2, checked on {ref.source}: the numbers are measured here, "
            "the verdict follows the criterion in its row.",
            table_figure(paper[["finding", "paper", "blocks", "this_model", "criterion", "shows"]],
                           "The paper's findings in this model"), paper))
    return panels


def class_depth_takeaway(measures: pd.DataFrame, paper: pd.DataFrame | None = None,
                         blocks: Sequence[str] | None = None, shares: dict[str, float] | None = None) -> str | None:
    """Return what the view shows, computed from `measures` (class_depth_measures), restricted to `blocks` (the
    blocks on screen in Fig. 6; default all): how class specificity runs over them (a curve that is not monotonic
    is called so), how much of it the untrained control already has (its seed mean) and what training added
    (computed from the rounded numbers shown), the blocks' shares of class means within 0.05 of "all" (`shares`,
    block -> ExcitationStats.near_all_share), and how many of the paper's findings this model shows."""
    part = measures if blocks is None else measures[measures["block"].isin(list(blocks))]
    if part.empty:
        return None
    names = list(part["block"])
    text = f"Over the blocks in Fig. 6, class specificity {curve(part['class_specificity'], names)}."
    if "control_class_specificity" in part:
        ends = [part.iloc[0]] if len(part) == 1 else [part.iloc[0], part.iloc[-1]]
        seeds = int(part["control_seeds"].iloc[0]) if "control_seeds" in part else 1
        what = f"the untrained control (mean of {seeds} seeds)" if seeds > 1 else "the untrained control"
        reached, added, missing = [], [], []
        for row in ends:
            trained, control, diff = difference(row["class_specificity"], row["control_class_specificity"])
            if "undefined" in (trained, control):
                missing.append(row["block"])
                continue
            reached.append(f"{control} at {row['block']}")
            added.append(f"{diff} ({trained} − {control})")
        if reached:
            text += (f" {what[0].upper() + what[1:]} already reaches {listing(reached)}, "
                     f"so training added {listing(added)}.")
        if missing:
            text += (f" At {listing(missing)} the learned part is undefined: the trained model's or the control's "
                     "s is the same for every image there.")
    if shares:
        lo, hi = min(shares, key=shares.get), max(shares, key=shares.get)
        text += (f" In Fig. 6, {num(100 * shares[hi], '.0f')}% of the class means at {hi} lie within 0.05 of "
                 f"'all', {num(100 * shares[lo], '.0f')}% at {lo}." if hi != lo else
                 f" In Fig. 6, {num(100 * shares[hi], '.0f')}% of the class means at {hi} lie within 0.05 of 'all'.")
    if paper is not None and len(paper):
        judged = paper[paper["shows"] != "n/a"]
        shown = list(judged.loc[judged["shows"] == "yes", "finding"])
        text += (f" This model shows {len(shown)} of the paper's {len(judged)} judged findings"
                 + (f" ({', '.join(shown)})." if shown else "."))
    return finish(text)


def fig7(frame: pd.DataFrame, cls: str, cols: int | None = None, title: str | None = None) -> go.Figure:
    """One panel per block: mean s of one class with a ±1 std band (the paper's Fig. 7)."""
    part_cls = frame[frame["class"] == cls]
    if part_cls.empty:
        raise ValueError(f"class {cls!r} is not in the frame")
    blocks = list(dict.fromkeys(part_cls["block"]))
    color = class_colors(list(dict.fromkeys(frame["class"])))[cls]
    fig, rows, cols = subplot_grid(blocks, cols)
    rgb = tuple(int(color[k:k + 2], 16) for k in (1, 3, 5))
    for i, block in enumerate(blocks):
        r, c = grid_position(i, cols)
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
            hovertemplate=f"{cls}<br>block {block}<br>channel %{{x}}<br>mean s = %{{y:.3f}} ± "
                          f"%{{customdata:.3f}}<extra></extra>",
        ), row=r, col=c)
    fig.update_yaxes(range=s_axis_range(np.concatenate([(part_cls["mean"] - part_cls["std"]).to_numpy(),
                                                    (part_cls["mean"] + part_cls["std"]).to_numpy()])))
    label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, MEAN_S_AXIS)
    title = title or f"How much s varies within one class: {cls}, mean ± std (the paper's Fig. 7)"
    return apply_layout(fig, title, height=panel_height(rows, 250, 130))
