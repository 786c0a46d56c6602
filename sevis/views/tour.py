"""The Tour: the paper's argument walked through on the current model, one step at a time. Each step is a TourStep:
a title, two sentences computed from this model's numbers, its figures, and what it needs when the model or the
reference set lacks it (labels, trained weights), said plainly. Uses the shared layers only, never another view.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.core.statistics import ExcitationStats
from sevis.analysis.anatomy import BlockAnatomy
from sevis.analysis.images import NamedImage
from sevis.analysis.inference import InferenceResult
from sevis.core.formula import block_formula
from sevis.names import fig6_default_classes
from sevis.figures.overlay import input_pixels, overlay_panel
from sevis.models.params import count_parameters, se_parameters
from sevis.figures.plots import ORDERED, PALETTE, Panel, apply_layout, short_labels, table_figure
from sevis.core.recorder import SEBlock
from sevis.analysis.reference import ReferenceStats, paper_blocks, too_few_images
from sevis.figures.se_diagram import unit_figure, unit_sentences, unit_shapes
from sevis.figures.shared_figures import block_lines, class_depth_frame, depth_profile, excitation_frame, fig6
from sevis.analysis.tour_search import Flip, SelectiveChannel
from sevis.models.zoo import LoadedModel


SLUG = "tour"
TITLE = "Tour"

STEPS = ("where", "block", "image", "class_depth", "knockout", "channel", "paper", "cost")
STEP_TITLES = {
    "where": "Where SE sits", "block": "One block, step by step", "image": "One image: early vs late blocks",
    "class_depth": "Class × depth: Fig. 6 and the depth profile", "knockout": "A knock-out that flips a prediction",
    "channel": "The most class-selective channel", "paper": "What this model does not show of the paper",
    "cost": "What SE costs: its parameters"}
FORMULA = (r"s = \sigma\big(W_2\,\delta(W_1 z)\big),\quad z_c = \frac{1}{HW}\sum_{i,j} u_c(i,j),"
           r"\quad \tilde u_c = s_c\,u_c")
FORMULA_TEXT = "s = σ(W2 · δ(W1 · z)), with z_c the mean of channel c of U over H×W; output channel c = s_c · u_c"
NEEDS_LABELS = ("This step needs a labelled reference set with at least two classes of 5 or more images: name a "
                "folder with one sub-folder per class in the sidebar.")
NEEDS_TRAINING = ("This model has random weights, so this step shows what the architecture alone does; nothing here "
                  "was learned.")


@dataclass
class TourStep:
    key: str
    title: str
    sentences: list[str]
    panels: list[Panel] = field(default_factory=list)
    formula: str | None = None  # LaTeX, for the block step
    needs: str | None = None  # what the step lacks here (labels, trained weights), in words; None when complete


def formula_text(step: TourStep) -> str:
    """Return the step's formula as plain text (for the handout), with this block's widths where known."""
    sizes = re.findall(r"\{(\d+)\\times (\d+)\}", step.formula or "")
    return FORMULA_TEXT + ("; " + ", ".join(f"W{i + 1}: {a}×{b}" for i, (a, b) in enumerate(sizes)) if sizes else "")


# ---------------------------------------------------------------------------------------- words
def num(v: float, fmt: str = ".2f") -> str:
    """Return `v` formatted, or "undefined" for NaN/None (never "nan" in a sentence)."""
    return "undefined" if v is None or not math.isfinite(float(v)) else format(float(v), fmt)


def span(lo: float, hi: float, fmt: str = ".2f") -> str:
    """Return "from a to b", or "all equal to a" when both print the same (never "from X to X")."""
    a, b = num(lo, fmt), num(hi, fmt)
    return f"all equal to {a}" if a == b else f"from {a} to {b}"


def listing(items: Sequence[str]) -> str:
    items = list(items)
    return "" if not items else items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def pct(p: float) -> str:
    """Return a probability as a percentage that never prints a non-zero value as 0%."""
    p = float(p)
    return "under 0.1%" if 0 < p < 0.001 else f"{p:.1%}" if p < 0.1 else f"{p:.0%}"


def energy_words(ratio: float) -> str:
    """Return what scaling did to U's energy (sum of squares): keeps a share, or multiplies it (gates above 1)."""
    if not math.isfinite(ratio):
        return "leaves U's energy undefined"
    return f"keeps {ratio:.0%} of U's energy" if ratio <= 1 else f"multiplies U's energy by {ratio:.1f}"


def quoted(items) -> list[str]:
    return [f"'{i}'" for i in items]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------------------------- 1. where
def where_step(loaded: LoadedModel) -> TourStep:
    """The unit around the first SE block drawn from the model's shapes (and an Inception module where there is one)."""
    u = unit_shapes(loaded)
    if u is None:
        return TourStep("where", STEP_TITLES["where"],
                        [f"{loaded.name} has no SE blocks.", "There is nothing to show."])
    units = [u]
    inc = unit_shapes(loaded, prefer="inception")
    if inc is not None and inc.unit_path != u.unit_path:
        units.append(inc)
    panels = [Panel(f"tour_where_{x.block.name}", f"Where SE sits: {x.block.name}",
                    "Drawn from this model's own layers and shapes (one forward pass): the SE block (orange) squeezes "
                    "its input U to one number per channel, excites them through a bottleneck and scales U.",
                    unit_figure(x), pd.DataFrame([{"layer": l.text, "output": "×".join(map(str, l.out_shape))}
                                                  for b in x.branches for l in b]))
                  for x in units]
    return TourStep("where", STEP_TITLES["where"], unit_sentences(units[-1]), panels)


# ---------------------------------------------------------------------------------------- 2. block
def pick_block(result: InferenceResult) -> str:
    """Return the block whose s varies most across channels for this image (the deepest when all are flat)."""
    spread = {b: float(np.std(s[0].numpy())) for b, s in result.excitations.items()}
    top = max(spread.values(), default=0.0)
    return [b for b, v in spread.items() if v == top][-1] if top > 0 else list(spread)[-1]


def block_step(loaded: LoadedModel, a: BlockAnatomy, image: NamedImage) -> TourStep:
    """One SE block for one image: z, δ(W1·z), s and the scaled energy, then U and U·s over the image."""
    name, c = a.block.name, len(a.s)
    order = np.argsort(-a.s, kind="stable")
    energy_u = (a.u ** 2).mean((1, 2))
    energy_us = (a.scaled ** 2).mean((1, 2))
    rows = [("1. squeeze: z = mean of U over H×W", a.z[order], "channels ordered by s"),
            ("4–5. W2, then σ: s", a.s[order], "channels ordered by s"),
            ("6. scale: energy of U (grey) and of U·s (colour)", energy_us[order], "channels ordered by s")]
    if a.hidden is not None:
        rows.insert(1, ("2–3. W1, then δ (ReLU): δ(W1·z)", a.hidden, "hidden unit"))
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=[r[0] for r in rows], vertical_spacing=0.12)
    for i, (title, values, axis) in enumerate(rows):
        x = np.arange(len(values))
        if title.startswith("6."):
            fig.add_trace(go.Bar(x=x, y=energy_u[order], marker_color="#c8c8c8", showlegend=False, meta=ORDERED,
                                 hovertemplate="U: %{y:.3f}<extra></extra>"), row=i + 1, col=1)
        fig.add_trace(go.Bar(x=x, y=values, marker_color=PALETTE[i % len(PALETTE)], showlegend=False, meta=ORDERED,
                             customdata=order if axis != "hidden unit" else None,
                             hovertemplate=("channel %{customdata}: %{y:.3f}<extra></extra>" if axis != "hidden unit"
                                            else "unit %{x}: %{y:.3f}<extra></extra>")), row=i + 1, col=1)
        fig.update_xaxes(title_text=axis, row=i + 1, col=1)
    apply_layout(fig, f"Inside {name} for {image.name}, step by step", height=140 + 170 * len(rows),
                 barmode="overlay", bargap=0.05)
    chain = pd.DataFrame({"channel": order, "z": a.z[order], "s": a.s[order], "energy_U": energy_u[order],
                          "energy_Us": energy_us[order]})
    panels = [Panel(f"tour_block_{name}", f"{name} step by step", "Each row is one step of the SE computation for "
                    "this image, channels ordered by their s (highest first), so the rows line up.", fig, chain),
              overlay_panel(loaded, a, image)]
    hidden = a.hidden
    gate, act = block_formula(loaded.model, a.block)
    active = int((hidden > 0).sum()) if hidden is not None else None
    energy = float((a.scaled ** 2).sum() / max(float((a.u ** 2).sum()), 1e-12))
    first = (f"At {name}, the squeeze turns U ({a.shapes()['U']}) into {c} averages z, {span(a.z.min(), a.z.max())}"
             + (f"; W1 compresses them to {len(hidden)} hidden units, and δ ({act or 'the activation'}) leaves "
                f"{active} of them above 0."
                if hidden is not None else "; this implementation has no readable hidden layer."))
    if num(a.s.min()) == num(a.s.max()):
        second = (f"W2 and {gate} give every one of the {c} channels the same factor s = {num(a.s[0])}, so this "
                  f"block rescales all channels alike and {energy_words(energy)}.")
    else:
        low = int(order[-1])
        second = (f"W2 and {gate} turn them into {c} factors s {span(a.s.min(), a.s.max())}; scaling "
                  f"{energy_words(energy)} and mutes channel {low} most (s = {num(a.s[low])}).")
    h = len(hidden) if hidden is not None else None
    sizes = rf",\quad W_1\in\mathbb{{R}}^{{{h}\times {c}}},\; W_2\in\mathbb{{R}}^{{{c}\times {h}}}"
    symbol = {"σ": r"\sigma", "tanh": r"\tanh"}.get(gate, rf"\mathrm{{{gate}}}")
    formula = FORMULA.replace(r"s = \sigma", f"s = {symbol}", 1) + (sizes if h else "")
    return TourStep("block", STEP_TITLES["block"], [first, second], panels, formula)


# ---------------------------------------------------------------------------------------- 3. image
def image_step(result: InferenceResult, image: NamedImage, blocks: Sequence[SEBlock],
               random_weights: bool = False) -> TourStep:
    """One image's s at the first and the last SE block."""
    exc = result.excitations_of(0)
    early, late = blocks[0].name, blocks[-1].name
    frame = excitation_frame({b: exc[b] for b in (early, late)}, image.name)
    fig = block_lines(frame, [early, late], cols=2, title=f"s for {image.name}: the first and the last SE block")
    top, p = result.topk(1)[0][0]
    se, sl = np.asarray(exc[early], float), np.asarray(exc[late], float)
    predicted = "" if random_weights else f", predicted {top} ({pct(p)})"
    first = (f"For {image.name}{predicted}, the {len(se)} channels of {early} get s "
             f"{span(se.min(), se.max())}, those of {late} ({len(sl)}) {span(sl.min(), sl.max())}.")
    spread_e, spread_l = float(se.std()), float(sl.std())
    if num(spread_e, ".3f") == num(spread_l, ".3f"):
        second = f"Both blocks spread s equally (standard deviation {num(spread_e, '.3f')} across channels)."
    else:
        more = late if spread_l > spread_e else early
        second = (f"{more} spreads its factors more (standard deviation {num(max(spread_e, spread_l), '.3f')} "
                  f"against {num(min(spread_e, spread_l), '.3f')}): {plural(int((sl < 0.5).sum()), 'channel')} of "
                  f"{late} and {plural(int((se < 0.5).sum()), 'channel')} of {early} get s < 0.5.")
    return TourStep("image", STEP_TITLES["image"], [first, second],
                    [Panel("tour_image_early_late", f"s at {early} and {late} for {image.name}",
                           "One line per block: the excitation s of every channel for this image.", fig, frame)])


# ---------------------------------------------------------------------------------------- 4. class x depth
def class_depth_step(ref: ReferenceStats, measures: pd.DataFrame | None, blocks: Sequence[SEBlock],
                     random_weights: bool) -> TourStep:
    """Fig. 6 at the paper's blocks and the depth profile with the untrained control."""
    problem = too_few_images(ref.stats)
    if problem or measures is None:
        return TourStep("class_depth", STEP_TITLES["class_depth"],
                        [f"The reference set here is {ref.source}.", "It has too few labelled images per class for "
                         "per-class means, so Fig. 6 and the depth profile are not shown."], needs=NEEDS_LABELS)
    classes = fig6_default_classes(ref.stats.classes)
    frame = class_depth_frame(ref.stats, classes, paper_blocks(blocks), "uniform", 50, 0)
    panels = [Panel("tour_fig6", "Mean excitation per class (Fig. 6)", f"Over {ref.source}: one line per class, "
                    "the dashed black line the mean over all images.", fig6(frame), frame),
              Panel("tour_depth_profile", "The depth profile", "Four measures per SE block; the dashed line is the "
                    "untrained control where it was measured.", depth_profile(measures), measures)]
    part = measures.dropna(subset=["class_specificity"])
    if part.empty:
        sentences = ["s is the same for every image at every block here, so class specificity is undefined.",
                     "Fig. 6 shows one flat pattern shared by all classes."]
    else:
        i_max = part["class_specificity"].idxmax()
        first = (f"Class specificity (the share of s's variance between class means) is "
                 f"{num(part['class_specificity'].iloc[0])} at {part['block'].iloc[0]} and "
                 f"{num(part['class_specificity'].iloc[-1])} at {part['block'].iloc[-1]}, highest at "
                 f"{part.loc[i_max, 'block']} ({num(part.loc[i_max, 'class_specificity'])}).")
        if "control_class_specificity" in part:
            learned = part["learned_specificity"]
            j = learned.idxmax()
            second = (f"The untrained control reaches {num(part['control_class_specificity'].iloc[0])} at "
                      f"{part['block'].iloc[0]}; training added most at {part.loc[j, 'block']} "
                      f"({num(learned[j], '+.2f')}).")
        else:
            second = ("These weights are random, so this profile is itself the untrained control: what data and "
                      "architecture give without learning." if random_weights else
                      "No untrained control was measured for this reference set.")
        sentences = [first, second]
    return TourStep("class_depth", STEP_TITLES["class_depth"], sentences, panels,
                    needs=NEEDS_TRAINING if random_weights else None)


# ---------------------------------------------------------------------------------------- 5. knock-out
def knockout_step(loaded: LoadedModel, flip: Flip | None, searched: int, n_blocks: int,
                  random_weights: bool) -> TourStep:
    """A knock-out (s := 1) that flips a reference image's prediction, found by search."""
    needs = NEEDS_TRAINING if random_weights else None
    if flip is None:
        return TourStep("knockout", STEP_TITLES["knockout"], [
            f"Knocking out SE (s := 1) in each of the {n_blocks} blocks alone, in each stage and in all of them at "
            f"once changed the top class of none of the {searched} reference images searched.",
            "In this model the prediction does not hinge on any SE block's rescaling for these images."], needs=needs)
    what = listing(flip.blocks) if len(flip.blocks) < 4 else f"all {len(flip.blocks)} blocks"
    classes = list(dict.fromkeys([flip.before[0], flip.after[0]] + [loaded.classes[i] for i in
                                                                     np.argsort(-flip.before_probs)[:3]]))
    idx = [loaded.classes.index(c) for c in classes]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], horizontal_spacing=0.12,
                        subplot_titles=["the image as the model sees it", "class probabilities"])
    fig.add_trace(go.Image(z=input_pixels(loaded, flip.pixels), hoverinfo="skip"), row=1, col=1)
    labels = short_labels(classes)
    for name, probs, color in (("intact", flip.before_probs, PALETTE[0]),
                               (f"{what} knocked out", flip.after_probs, PALETTE[3])):
        fig.add_trace(go.Bar(y=labels, x=probs[idx], orientation="h", name=name, marker_color=color,
                             hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=2)
    fig.update_xaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    apply_layout(fig, f"Knocking out {what} flips the prediction", height=380, barmode="group")
    data = pd.DataFrame({"class": classes, "intact": flip.before_probs[idx], "knocked_out": flip.after_probs[idx]})
    label = f", a {flip.label} in the reference set," if flip.label else ""
    first = (f"Knocking out {what} (s := 1) turns reference image {flip.image + 1}{label} from {flip.before[0]} "
             f"({pct(flip.before[1])}) into {flip.after[0]} ({pct(flip.after[1])}).")
    flipping = {b: n for b, n in flip.flips_per_block.items() if n}
    if flipping:
        b = max(flipping, key=flipping.get)
        second = (f"Of the {flip.searched_images} images searched, single-block knock-outs flip "
                  f"{plural(sum(flipping.values()), 'prediction')} in all; {b} flips the most ({flipping[b]}).")
    else:
        second = (f"No single block flips any of the {flip.searched_images} images searched: it takes "
                  f"{what} at once.")
    return TourStep("knockout", STEP_TITLES["knockout"], [first, second],
                    [Panel("tour_knockout_flip", f"Knocking out {what}", "The searched image, and its class "
                           "probabilities intact (blue) and with the knock-out (red).", fig, data)], needs=needs)


# ---------------------------------------------------------------------------------------- 6. channel
def channel_step(loaded: LoadedModel, ref: ReferenceStats, sel: SelectiveChannel | None, images, s_values,
                 labels: Sequence[str], random_weights: bool) -> TourStep:
    """The channel whose mean s depends most on the class, its class means and its most exciting images."""
    if too_few_images(ref.stats) or sel is None:
        return TourStep("channel", STEP_TITLES["channel"], [
            f"The reference set here is {ref.source}.", "Class selectivity needs several labelled images per class, "
            "so no channel is singled out."], needs=NEEDS_LABELS)
    order = np.argsort(-sel.class_means, kind="stable")
    names = [sel.classes[i] for i in order]
    bars = go.Figure(go.Bar(x=short_labels(names), y=sel.class_means[order], marker_color=[
        PALETTE[3] if n == sel.top_class else PALETTE[0] for n in names],
        hovertemplate="%{x}: mean s %{y:.3f}<extra></extra>"))
    bars.update_yaxes(title_text="mean s over the class's images")
    apply_layout(bars, f"Channel {sel.channel} of {sel.block}: mean s per class", height=380, showlegend=False)
    n = len(images)
    gallery = make_subplots(rows=1, cols=max(n, 1), horizontal_spacing=0.01,
                            subplot_titles=[f"{short_labels([l], 12)[0]}<br>s = {v:.2f}"
                                            for l, v in zip(labels, s_values)])
    for i in range(n):
        gallery.add_trace(go.Image(z=input_pixels(loaded, images[i]), hoverinfo="skip"), row=1, col=i + 1)
    gallery.update_xaxes(showticklabels=False)
    gallery.update_yaxes(showticklabels=False)
    apply_layout(gallery, f"The {n} reference images that excite channel {sel.channel} of {sel.block} most",
                 height=300, margin=dict(l=10, r=10, t=110, b=10))
    same = sum(1 for l in labels if l == sel.top_class)
    low = names[-1]
    first = (f"Channel {sel.channel} of {sel.block} depends most on the class: the class explains {sel.share:.0%} "
             + (f"of the variance of its s, whose class means run from {num(sel.class_means[order[-1]])} ({low}) to "
                f"{num(sel.top_mean)} ({sel.top_class})." if num(sel.class_means[order[-1]]) != num(sel.top_mean) else
                f"of the variance of its s, and every class mean is {num(sel.top_mean)}."))
    second = (f"{same} of the {n} reference images that excite it most are {sel.top_class}"
              + (f"; the others are {listing(sorted(set(l for l in labels if l != sel.top_class)))}."
                 if same < n else "."))
    data = pd.DataFrame({"class": names, "mean_s": sel.class_means[order]})
    return TourStep("channel", STEP_TITLES["channel"], [first, second], [
        Panel("tour_channel_classes", f"Channel {sel.channel} of {sel.block} per class",
              "Mean s of this channel over each class's reference images; red: the class it prefers.", bars, data),
        Panel("tour_channel_images", f"Images exciting channel {sel.channel} most",
              "The reference images with the highest s at this channel, with their class.", gallery,
              pd.DataFrame({"label": list(labels), "s": list(s_values)}))],
        needs=NEEDS_TRAINING if random_weights else None)


# ---------------------------------------------------------------------------------------- 7. paper
def paper_step(paper: pd.DataFrame | None, source: str, random_weights: bool) -> TourStep:
    """The paper's Section 7.2 findings this model does not show, said plainly."""
    if random_weights:
        return TourStep("paper", STEP_TITLES["paper"], [
            "The paper's findings are about trained networks, and these weights are random.",
            "So none of them can be checked on this model: pick a trained model to see which hold."],
            needs=NEEDS_TRAINING)
    if paper is None or not len(paper):
        return TourStep("paper", STEP_TITLES["paper"], [
            f"The paper's findings are checked per class, and {source} has too few labelled images per class.",
            "So this model's agreement with the paper cannot be judged here."], needs=NEEDS_LABELS)
    no = paper[paper["shows"] == "no"]
    na = paper[paper["shows"] == "n/a"]
    yes = paper[paper["shows"] == "yes"]
    first = (f"Of the paper's {len(paper)} findings, this model shows {len(yes)}"
             + (f" ({listing(quoted(yes['finding']))})" if len(yes) else "")
             + (f" and does not show {listing(quoted(no['finding']))}." if len(no) else "; it contradicts none."))
    if len(no):
        row = no.iloc[0]
        second = (f"{row['finding'].capitalize()}: the paper sees '{row['paper']}', while here {row['this_model']} "
                  f"(the criterion: {row['criterion']}).")
    elif len(na):
        second = (f"{listing(quoted(na['finding']))} cannot be judged here: "
                  f"{na.iloc[0]['this_model']}.")
    else:
        second = "Every finding the paper states for Fig. 6 holds in this model by the criteria in the table."
    frame = paper[["finding", "paper", "blocks", "this_model", "criterion", "shows"]]
    return TourStep("paper", STEP_TITLES["paper"], [first, second], [
        Panel("tour_paper_vs_model", "The paper's findings in this model", f"Checked on {source}; the verdict "
              "follows the criterion in its row.", table_figure(frame, "The paper's findings in this model"), frame)])


# ---------------------------------------------------------------------------------------- 8. cost
def cost_step(loaded: LoadedModel) -> TourStep:
    """SE's extra parameters, per stage and against the network without them."""
    table = se_parameters(loaded.model)
    rows = table[table["stage"] != "total"]
    total = int(table.loc[table["stage"] == "total", "parameters"].iloc[0]) if (table["stage"] == "total").any() else 0
    whole = count_parameters(loaded.model)
    base = whole - total
    labels = [f"stage {s}" for s in rows["stage"]]
    fig = go.Figure(go.Bar(x=labels, y=rows["parameters"], marker_color=PALETTE[1],
                           text=[f"{v:.0%}" for v in rows["share"]], textposition="outside",
                           hovertemplate="%{x}: %{y:,} parameters<extra></extra>"))
    fig.update_yaxes(title_text="SE parameters")
    apply_layout(fig, "SE's extra parameters per stage (share of all SE parameters on the bars)", height=380,
                 showlegend=False)
    first = (f"SE adds {total:,} parameters to the {base:,} of the same network without it "
             f"(+{total / max(base, 1):.1%}); the paper's SE-ResNet-50 adds about 10% (2.5M to 25M).")
    if len(rows):
        k = int(np.argmax(rows["parameters"].to_numpy()))
        r = rows.iloc[k]
        second = (f"Stage {r['stage']} holds {r['share']:.0%} of them: an SE block costs about 2C²/r parameters, and "
                  f"that stage's blocks have C = {int(r['channels'])} channels.")
    else:
        second = "No SE parameters were found."
    return TourStep("cost", STEP_TITLES["cost"], [first, second],
                    [Panel("tour_se_cost", "SE's extra parameters per stage", "Parameters inside the SE blocks of each "
                           "stage; the share of all SE parameters is written on each bar.", fig, rows)])
