"""Class x depth view: the paper's Fig. 6 and 7, the depth profile with the untrained control, paper vs this model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..analysis import ExcitationStats, depth_measures
from ..measures import measures_and_paper
from ..plots import CHANNEL_AXIS, MEAN_S_AXIS, Panel, apply_layout, class_colors, grid_position, label_axes, panel_height, s_axis_range, subplot_grid, table_figure
from ..recorder import SEBlock
from ..reference import ReferenceStats
from ..shared_figures import class_depth_frame, depth_profile, fig6


def class_depth_measures(ref: ReferenceStats, control: ExcitationStats | None, blocks: Sequence[SEBlock],
                         knockout_identity: pd.DataFrame | None = None,
                         knockout_mean: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (the depth measures per block, the paper-vs-model table) over a reference set."""
    return measures_and_paper(ref.stats, control, blocks, knockout_identity, knockout_mean)


def class_depth_panels(ref: ReferenceStats, classes: Sequence[str], blocks: Sequence[str], channels: str = "uniform",
                       n: int | None = 50, seed: int = 0, fig7_class: str | None = None,
                       measures: pd.DataFrame | None = None, paper: pd.DataFrame | None = None) -> list[Panel]:
    """The paper's Fig. 6 (per-class means), Fig. 7 (mean ± std in one class), the depth profile (measures from
    class_depth_measures; without them, the trained model's alone) and the paper-vs-model table."""
    return (class_figure_panels(ref, classes, blocks, channels, n, seed, fig7_class)
            + depth_profile_panels(ref, measures, paper))


def class_figure_panels(ref: ReferenceStats, classes: Sequence[str], blocks: Sequence[str], channels: str = "uniform",
                        n: int | None = 50, seed: int = 0, fig7_class: str | None = None) -> list[Panel]:
    """The paper's Fig. 6 (per-class means) and Fig. 7 (mean ± std within one class)."""
    stats = ref.stats
    frame = class_depth_frame(stats, classes, blocks, channels, n, seed)
    how = {"all": "all channels", "first": f"the first {n} channels",
           "uniform": f"{n} channels sampled uniformly (seed {seed})"}.get(channels, channels)
    panels = [Panel(
        "fig6_class_means", "Mean excitation per class at each SE block (Fig. 6)",
        f"Over {ref.source}; {how}. Each coloured line is the mean excitation s of one class, the dashed black "
        "line the mean over all images. Where the lines coincide the block is class-agnostic; where they part "
        "it is class-specific. The paper finds early blocks class-agnostic and late ones class-specific, with "
        "some late blocks saturated near 1.", fig6(frame), frame)]
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
    control_words = ("; the dashed line is the untrained control (same architecture, seeded random weights, "
                     "BatchNorm recalibrated on the same images), what the data and the architecture give "
                     "without any learning" if "control_class_specificity" in measures else "")
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
            table_figure(paper[["finding", "paper", "blocks", "this_model", "shows"]],
                           "The paper's findings in this model"), paper))
    return panels


def class_depth_takeaway(measures: pd.DataFrame, paper: pd.DataFrame | None = None) -> str | None:
    """Return what the depth profile shows, in one or two sentences computed from `measures`
    (class_depth_measures) and the paper table: where s depends on the class most and least, how much of it
    the untrained control already has, and how many of the paper's findings this model shows."""
    part = measures.dropna(subset=["class_specificity"])
    if part.empty:
        return None
    first, last = part.iloc[0], part.iloc[-1]
    text = (f"Class specificity goes from {first['class_specificity']:.2f} at {first['block']} to "
            f"{last['class_specificity']:.2f} at {last['block']}")
    if "learned_specificity" in part:
        text += (f"; the untrained control already reaches {first['control_class_specificity']:.2f} and "
                 f"{last['control_class_specificity']:.2f}, so training added {first['learned_specificity']:+.2f} "
                 f"and {last['learned_specificity']:+.2f}")
    text += "."
    if paper is not None and len(paper):
        judged = paper[paper["shows"] != "n/a"]
        shown = list(judged.loc[judged["shows"] == "yes", "finding"])
        text += (f" This model shows {len(shown)} of the paper's {len(judged)} judged findings"
                 + (f" ({', '.join(shown)})." if shown else "."))
    return text


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
            hovertemplate=f"{cls}<br>block {block}<br>channel %{{x}}<br>mean s = %{{y:.3f}} ± %{{customdata:.3f}}<extra></extra>",
        ), row=r, col=c)
    fig.update_yaxes(range=s_axis_range(np.concatenate([(part_cls["mean"] - part_cls["std"]).to_numpy(),
                                                    (part_cls["mean"] + part_cls["std"]).to_numpy()])))
    label_axes(fig, rows, cols, len(blocks), CHANNEL_AXIS, MEAN_S_AXIS)
    title = title or f"How much s varies within one class: {cls}, mean ± std (the paper's Fig. 7)"
    return apply_layout(fig, title, height=panel_height(rows, 250, 130))
