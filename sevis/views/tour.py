"""The Tour: the paper's argument walked through on the current model, one step at a time. Each step is a TourStep:
a title, two sentences computed from this model's numbers, its figures, and what it needs when the model or the
reference set lacks it (labels, trained weights), said plainly. Uses the shared layers only, never another view.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from sevis.analysis.anatomy import BlockAnatomy, block_anatomy
from sevis.analysis.images import NamedImage, default_sample_images
from sevis.analysis.inference import InferenceResult, predict_images
from sevis.analysis.measures import measures_and_paper
from sevis.analysis.reference import (
    ReferenceStats,
    paper_blocks,
    reference_control,
    reference_inputs,
    reference_statistics,
    reference_sweep,
    too_few_images,
)
from sevis.analysis.selectivity import SelectiveChannel, most_selective_channel, most_selective_channel_for
from sevis.analysis.snapshot_measures import snapshot_specificity
from sevis.analysis.tour_search import Flip, FlipCount, find_flip, top_images
from sevis.core.formula import block_formula
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.errors import ModelError, SevisError
from sevis.figures.handout import HandoutSection
from sevis.figures.overlay import input_pixels, overlay_panel
from sevis.figures.plots import Panel, short_labels
from sevis.figures.shared_figures import (
    NEAR_ALL_TOLERANCE,
    block_lines,
    class_depth_frame,
    depth_profile,
    deviation_frame,
    excitation_frame,
    fig6_deviation,
)
from sevis.figures.tour_figures import (
    block_steps_figure,
    class_means_figure,
    flip_figure,
    gallery_figure,
)
from sevis.figures.tour_steps import (
    INCEPTION_RUN,
    NEEDS_LABELS,
    NEEDS_TRAINING,
    STEP_TITLES,
    TourStep,
    cost_numbers,
    cost_step,
    inception_measures,
    inception_step,
    paper_step,
    training_step,
    where_step,
)
from sevis.figures.tour_words import energy_words, listing, num, pct, plural, span
from sevis.models.zoo import LoadedModel, load_model
from sevis.names import DEFAULT_SPEC, EMBEDDED, fig6_default_classes, snapshot_epochs
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "tour"
TITLE = "Tour"

# Appended steps keep the earlier ones' numbers (deep links ?view=tour&step=<n>, handouts, lecture notes).
STEPS = ("where", "block", "image", "class_depth", "knockout", "channel", "paper", "cost", "training", "inception")
FORMULA = (r"s = \sigma\big(W_2\,\delta(W_1 z)\big),\quad z_c = \frac{1}{HW}\sum_{i,j} u_c(i,j),"
           r"\quad \tilde u_c = s_c\,u_c")
FORMULA_TEXT = "s = σ(W2 · δ(W1 · z)), with z_c the mean of channel c of U over H×W; output channel c = s_c · u_c"


def formula_text(step: TourStep) -> str:
    """Return the step's formula as plain text (for the handout), with this block's widths where known."""
    sizes = re.findall(r"\{(\d+)\\times (\d+)\}", step.formula or "")
    return FORMULA_TEXT + ("; " + ", ".join(f"W{i + 1}: {a}×{b}" for i, (a, b) in enumerate(sizes)) if sizes else "")


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
    fig = block_steps_figure(rows, order, energy_u[order], f"Inside {name} for {image.name}, step by step")
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
def fig6_classes(stats_classes: Sequence[str], chosen: str | None) -> list[str]:
    """Return the classes Fig. 6 shows: the default four, with the chosen class first (in place of the last)."""
    default = fig6_default_classes(stats_classes)
    return default if chosen is None else [chosen] + [c for c in default if c != chosen][:len(default) - 1]


def class_words(stats, cls: str, blocks: Sequence[str]) -> str:
    """Return how far class `cls`'s mean s lies from the mean over all images at the first and the last shown
    block: the share of channels more than NEAR_ALL_TOLERANCE away (Fig. 6's criterion)."""
    k = stats.classes.index(cls)
    far = {b: float((np.abs(stats.mean(b)[k] - stats.overall_mean(b)) > NEAR_ALL_TOLERANCE).mean()) for b in blocks}
    first, last = blocks[0], blocks[-1]
    if num(far[first], ".0%") == num(far[last], ".0%"):
        return (f"In Fig. 6, {cls}'s mean s lies more than {NEAR_ALL_TOLERANCE} from the mean over all images at "
                f"{far[first]:.0%} of the channels of both {first} and {last}.")
    return (f"In Fig. 6, {cls}'s mean s lies more than {NEAR_ALL_TOLERANCE} from the mean over all images at "
            f"{far[first]:.0%} of {first}'s channels and {far[last]:.0%} of {last}'s.")


def class_depth_step(ref: ReferenceStats, measures: pd.DataFrame | None, blocks: Sequence[SEBlock],
                     random_weights: bool, chosen: str | None = None) -> TourStep:
    """Fig. 6 at the paper's blocks as a heat map (each class mean minus the mean over all images; the chosen class
    in the top row) and the depth profile with the untrained control. With a chosen class, the second sentence is
    about that class."""
    problem = too_few_images(ref.stats)
    if problem or measures is None:
        return TourStep("class_depth", STEP_TITLES["class_depth"],
                        [f"The reference set here is {ref.source}.", "It has too few labelled images per class for "
                         "per-class means, so Fig. 6 and the depth profile are not shown."], needs=NEEDS_LABELS)
    shown = paper_blocks(blocks)
    dev = deviation_frame(class_depth_frame(ref.stats, fig6_classes(ref.stats.classes, chosen), shown, "uniform",
                                            50, 0))
    heat = fig6_deviation(dev, shares={b: ref.stats.near_all_share(b) for b in shown})
    panels = [Panel("tour_fig6", "How far each class's mean excitation lies from the mean over all images (Fig. 6)",
                    f"Over {ref.source}: one row per class, one column per channel (the most class-dependent "
                    "left), the colour the class's mean s minus the mean over all images (white: the same s as "
                    "every image). Each title gives the block's share of class means within 0.05 of 'all'.",
                    heat, dev),
              Panel("tour_depth_profile", "The depth profile", "Four measures per SE block; the dashed line is the "
                    "untrained control where it was measured.", depth_profile(measures), measures)]
    part = measures.dropna(subset=["class_specificity"])
    if part.empty:
        sentences = ["Every image gets the same s at every block here, so class specificity is undefined.",
                     "Fig. 6 shows one flat pattern shared by all classes."]
    else:
        i_max = part["class_specificity"].idxmax()
        first = (f"Class specificity (the share of s's variance between class means) is "
                 f"{num(part['class_specificity'].iloc[0])} at {part['block'].iloc[0]} and "
                 f"{num(part['class_specificity'].iloc[-1])} at {part['block'].iloc[-1]}, highest at "
                 f"{part.loc[i_max, 'block']} ({num(part.loc[i_max, 'class_specificity'])}).")
        if chosen is not None:
            second = class_words(ref.stats, chosen, shown)
        elif "control_class_specificity" in part:
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
def knockout_step(loaded: LoadedModel, flip: Flip | None, counts: FlipCount, random_weights: bool) -> TourStep:
    """A knock-out (s := 1) that flips a reference image's prediction, found by search, and how many predictions
    single-block knock-outs flip (`counts`, worded as the Knock-out view words it)."""
    needs = NEEDS_TRAINING if random_weights else None
    if flip is None:
        return TourStep("knockout", STEP_TITLES["knockout"], [
            f"Knocking out SE (s := 1) in each of the {len(counts.per_block)} blocks alone, in each stage and in all "
            f"of them at once changed the top class of none of the {counts.images} reference images searched.",
            "In this model the prediction does not hinge on any SE block's rescaling for these images."], needs=needs)
    what = listing(flip.blocks) if len(flip.blocks) < 4 else f"all {len(flip.blocks)} blocks"
    classes = list(dict.fromkeys([flip.before[0], flip.after[0]] + [loaded.classes[i] for i in
                                                                     np.argsort(-flip.before_probs)[:3]]))
    idx = [loaded.classes.index(c) for c in classes]
    fig = flip_figure(input_pixels(loaded, flip.pixels), short_labels(classes), flip.before_probs[idx],
                      flip.after_probs[idx], what, f"Knocking out {what} flips the prediction")
    data = pd.DataFrame({"class": classes, "intact": flip.before_probs[idx], "knocked_out": flip.after_probs[idx]})
    label = f", a {flip.label} in the reference set," if flip.label else ""
    first = (f"Knocking out {what} (s := 1) turns reference image {flip.image + 1}{label} from {flip.before[0]} "
             f"({pct(flip.before[1])}) into {flip.after[0]} ({pct(flip.after[1])}).")
    if counts.pairs:
        second = counts.sentence()
    else:
        second = (f"No single block flips any of the {flip.searched_images} images searched: it takes "
                  f"{what} at once.")
    return TourStep("knockout", STEP_TITLES["knockout"], [first, second],
                    [Panel("tour_knockout_flip", f"Knocking out {what}", "The searched image, and its class "
                           "probabilities intact (blue) and with the knock-out (red).", fig, data)], needs=needs)


# ---------------------------------------------------------------------------------------- 6. channel
def channel_step(loaded: LoadedModel, ref: ReferenceStats, sel: SelectiveChannel | None, images, s_values,
                 labels: Sequence[str], random_weights: bool, chosen: str | None = None) -> TourStep:
    """The channel whose mean s depends most on the class (among those that prefer the `chosen` class, when one
    does), its class means and its most exciting images."""
    if too_few_images(ref.stats) or sel is None:
        return TourStep("channel", STEP_TITLES["channel"], [
            f"The reference set here is {ref.source}.", "Class selectivity needs several labelled images per class, "
            "so no channel is singled out."], needs=NEEDS_LABELS)
    order = np.argsort(-sel.class_means, kind="stable")
    names = [sel.classes[i] for i in order]
    bars = class_means_figure(names, sel.class_means[order], sel.top_class,
                              f"Channel {sel.channel} of {sel.block}: mean s per class")
    n = len(images)
    gallery = gallery_figure([input_pixels(loaded, im) for im in images], labels, s_values,
                             f"The {n} reference images that excite channel {sel.channel} of {sel.block} most")
    same = sum(1 for l in labels if l == sel.top_class)
    low = names[-1]
    lead = f"Of the channels whose mean s is highest for {chosen}, channel" if chosen == sel.top_class else "Channel"
    first = (f"{lead} {sel.channel} of {sel.block} depends most on the class: the class explains {sel.share:.0%} "
             + (f"of the variance of its s, whose class means run from {num(sel.class_means[order[-1]])} ({low}) to "
                f"{num(sel.top_mean)} ({sel.top_class})." if num(sel.class_means[order[-1]]) != num(sel.top_mean) else
                f"of the variance of its s, and every class mean is {num(sel.top_mean)}."))
    none = ("" if chosen in (None, sel.top_class) else
            f"No channel prefers {chosen}, so this is the most selective overall; ")
    second = (f"{none}{same} of the {n} reference images that excite it most are {sel.top_class}"
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


# ---------------------------------------------------------------------------------------- the view
IMAGE_STEPS = ("block", "image")  # the steps that show one image; the others ignore request.images
CLASS_STEPS = ("class_depth", "channel")  # the steps that show a chosen class (request.classes[0]); others ignore it


def step_request(step: int, images: Sequence[NamedImage] = (), folder: str | None = None,
                 cls: str | None = None) -> ViewRequest:
    """Return the request of one Tour step (0-based): the first image only for the steps that show one, the chosen
    class `cls` only for the steps that show one, so the other steps' requests (and their prepared results) do not
    change with the sidebar's images or the chosen class; without a choice, the default (prepared) request."""
    key = STEPS[step]
    return ViewRequest(step=step, images=tuple(images[:1]) if key in IMAGE_STEPS else (), folder=folder,
                       classes=(cls,) if cls and key in CLASS_STEPS else None)


def prepared_requests(loaded: LoadedModel) -> list[ViewRequest]:
    """Return one request per step, as the app asks for it with its preselected sample images, then every step at
    once (the Export view's teaching pack and `sevis export tour` ask for that)."""
    return [step_request(i, default_sample_images(loaded)) for i in range(len(STEPS))] + [ViewRequest()]


_SHARED: dict[tuple, dict] = {}  # per model and reference set: what several steps (several requests) read


class _Inputs:
    """What the steps share, computed only when a step needs it: the image once per compute() call, the reference
    statistics and measures once per model and reference set in this process (each step is its own request, and a
    model without stored results would otherwise recompute them for every step)."""

    def __init__(self, loaded: LoadedModel, request: ViewRequest, progress: Progress | None) -> None:
        self.loaded, self.request, self.progress = loaded, request, progress
        self.blocks = [b for b, _ in find_se_blocks(loaded.model)]
        key = (id(loaded.model), loaded.spec, loaded.name, loaded.random_weights, request.folder)
        if key not in _SHARED and len(_SHARED) >= 8:  # a few models per server; never grows without bound
            _SHARED.clear()
        self._shared = _SHARED.setdefault(key, {})
        self._image: tuple | None = None

    @property
    def ref(self) -> ReferenceStats:
        if "ref" not in self._shared:
            self._shared["ref"] = reference_statistics(self.loaded, self.request.folder, progress=self.progress)
        return self._shared["ref"]

    def image(self) -> tuple[NamedImage, InferenceResult]:
        """Return the image the Tour shows (the request's first, else the first preselected sample) and its result."""
        if self._image is None:
            images = list(self.request.images[:1]) or default_sample_images(self.loaded)[:1]
            if not images:
                raise SevisError("the Tour's image steps need an image: upload one in the sidebar or name an image "
                                 "file")
            self._image = (images[0], predict_images(self.loaded, [images[0].image]))
        return self._image

    def measures(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """Return (depth measures, the paper table) over the reference set; (None, None) with too few images. Steps
        4 and 7 both read them (the control and the sweep are a pass per seed / block without stored results)."""
        if "measures" not in self._shared:
            ref, folder = self.ref, self.request.folder
            control = ko = None
            if too_few_images(ref.stats):
                self._shared["measures"] = (None, None)
                return self._shared["measures"]
            if not self.loaded.random_weights:
                control = reference_control(self.loaded, folder)
                if ref.accuracy is not None:
                    ko = reference_sweep(self.loaded, folder, "identity", ref.stats)[0]
            self._shared["measures"] = measures_and_paper(ref.stats, control, self.blocks, ko, None)
        return self._shared["measures"]


def training_numbers(loaded: LoadedModel, folder: str | None,
                     progress: Progress | None = None) -> tuple[TourStep, dict]:
    """Return the training step over the snapshots of the model shown (when it is an embedded model with snapshots,
    or one of them) else of the default model, and its numbers: the mean class specificity over the SE blocks at
    each snapshot (`training/mean_specificity/epoch_<e>`)."""
    name = str(loaded.spec).partition("@")[0]
    base = name if name in EMBEDDED and snapshot_epochs(name) else DEFAULT_SPEC
    if folder and str(folder).lower().endswith(".json"):  # a `sevis stats` file describes one model, not snapshots
        folder = None
    try:
        snap = snapshot_specificity(base, folder, progress)  # once per process: every model's Tour shares it
    except ModelError as e:
        return training_step(loaded, None, str(e)), {}
    means = snap.mean_by_epoch()
    return training_step(loaded, snap), {f"training/mean_specificity/epoch_{e}": float(v) for e, v in means.items()}


def inception_numbers(loaded: LoadedModel) -> tuple[TourStep, dict]:
    """Return the SE-Inception step (the trained family model) and its numbers: class specificity per SE block
    (`inception/class_specificity/<block>`)."""
    try:
        family = load_model(f"family:{INCEPTION_RUN}")
    except ModelError as e:
        return inception_step(loaded, None, str(e)), {}
    measures = inception_measures(family)
    return inception_step(loaded, family), {f"inception/class_specificity/{b}": float(v) for b, v in
                                            zip(measures["block"], measures["class_specificity"])}


def compute_step(inputs: _Inputs, key: str) -> tuple[TourStep, dict]:
    """Return Tour step `key` and the numbers it states."""
    loaded, random, blocks = inputs.loaded, inputs.loaded.random_weights, inputs.blocks
    if key == "where":
        return where_step(loaded), {}
    if key == "cost":
        return cost_step(loaded), cost_numbers(loaded)
    if key == "training":
        return training_numbers(loaded, inputs.request.folder, inputs.progress)
    if key == "inception":
        return inception_numbers(loaded)
    if key in IMAGE_STEPS:
        image, result = inputs.image()
        if key == "image":
            return image_step(result, image, blocks, random), {}
        block = pick_block(result)
        return block_step(loaded, block_anatomy(loaded, image, block), image), {"block": block}
    if key == "knockout":
        classes, batches, _, _ = reference_inputs(loaded, inputs.request.folder)
        flip, counts = find_flip(loaded, batches, blocks, classes)  # decodes only the images it searches
        extra = {} if flip is None else {"flip/blocks": list(flip.blocks), "flip/image": flip.image + 1}
        return knockout_step(loaded, flip, counts, random), {**counts.numbers(), **extra}
    ref = inputs.ref
    chosen = inputs.request.classes[0] if inputs.request.classes else None
    if chosen is not None and chosen not in ref.stats.classes and not too_few_images(ref.stats):  # else: needs labels
        raise SevisError(f"unknown class {chosen}; classes: {', '.join(ref.stats.classes)}")
    if key == "channel":
        sel = None if too_few_images(ref.stats) else (
            chosen and most_selective_channel_for(ref.stats, chosen)) or most_selective_channel(ref.stats)
        images, s, labels = [], [], []
        if sel is not None:
            classes, batches, _, _ = reference_inputs(loaded, inputs.request.folder)
            x, s, y = top_images(loaded, batches, sel.block, sel.channel)
            images, s, labels = list(x), list(s), [classes[int(k)] for k in y]
        name = "channel" if chosen is None else "channel_for_class"  # the Channel view's channel, or the class's
        numbers = {} if sel is None else {f"{name}/block": sel.block, f"{name}/channel": sel.channel,
                                          f"{name}/selectivity": sel.share}
        return channel_step(loaded, ref, sel, images, s, labels, random, chosen), numbers
    measures, paper = inputs.measures()
    if key == "class_depth":
        return class_depth_step(ref, measures, blocks, random, chosen), {} if chosen is None else {"class": chosen}
    shown = {} if paper is None or random else {"paper/shows": int((paper["shows"] == "yes").sum()),
                                                  "paper/findings": len(paper)}
    return paper_step(paper, ref.source, random), shown


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return Tour step `request.step` (0-based; None: every step, in order): each step's panels, its numbers and,
    per step key, what the app and the handout show as text (<key>/title, <key>/sentences, <key>/formula,
    <key>/needs, <key>/panels; read back by steps_of). The numbers: the flip count as the Knock-out view states it
    (flips, flips/images, flips/<block>), the most class-selective channel as the Channel view opens on it
    (channel/block, channel/channel, channel/selectivity), SE's parameters, the paper's findings shown, the chosen
    class (class), the mean class specificity at each training snapshot (training/mean_specificity/epoch_<e>) and
    SE-Inception's class specificity per block (inception/class_specificity/<block>). `request.images[0]`: the image
    of the image steps; `request.classes[0]`: the class of the class steps (CLASS_STEPS)."""
    result = ViewResult(SLUG, TITLE)
    if request.step is not None and not 0 <= request.step < len(STEPS):
        raise SevisError(f"the Tour has steps 1 to {len(STEPS)}; there is no step {request.step + 1}")
    inputs = _Inputs(loaded, request, progress)
    if not inputs.blocks:
        result.notes.append(f"{loaded.name} has no SE blocks, so there is no tour to give.")
        return result
    for key in STEPS if request.step is None else (STEPS[request.step],):
        step, numbers = compute_step(inputs, key)
        result.panels += step.panels
        result.numbers.update(numbers)
        result.numbers.update({f"{key}/title": step.title, f"{key}/sentences": list(step.sentences),
                               f"{key}/panels": [p.key for p in step.panels]})
        result.numbers.update({f"{key}/{name}": value for name, value in (("formula", step.formula),
                                                                           ("needs", step.needs)) if value})
    return result


def steps_of(result: ViewResult) -> list[TourStep]:
    """Return the Tour steps a ViewResult holds (one, or every step), in order, as compute() made them."""
    n = result.numbers
    return [TourStep(key, n[f"{key}/title"], list(n[f"{key}/sentences"]),
                     [p for k in n[f"{key}/panels"] if (p := result.panel(k)) is not None],
                     n.get(f"{key}/formula"), n.get(f"{key}/needs"))
            for key in STEPS if f"{key}/title" in n]


def handout_section(step: TourStep) -> HandoutSection:
    """Return a step as a section of the Tour's handout (sevis.figures.handout)."""
    return HandoutSection(step.title, step.sentences, [(p.figure, p.caption) for p in step.panels], step.needs,
                          formula_text(step) if step.formula else None)
