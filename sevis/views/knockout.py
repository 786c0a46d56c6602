"""SE knock-out view: an image's prediction with blocks knocked out, and the reference-set sweep of every block.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from sevis.analysis.flip_search import CHANNEL_CAP, FlipSearch, Knockout, find_flips
from sevis.analysis.images import NamedImage, default_sample_images, image_stem
from sevis.analysis.inference import run_batch
from sevis.analysis.knockout import Mode, knockout_overrides, knockout_sweep
from sevis.analysis.paper import late_se_removable
from sevis.analysis.precomputed import load_precomputed
from sevis.analysis.reference import class_mean_excitations, reference_inputs, reference_statistics, reference_sweep
from sevis.analysis.tour_search import FlipCount, count_flips
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.errors import DatasetError, SevisError
from sevis.figures.plots import PALETTE, Panel, apply_layout, short_labels
from sevis.figures.sentences import change, finish, listing, num, pct, rounded
from sevis.models.zoo import LoadedModel
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "knockout"
TITLE = "SE knock-out"
NO_IMAGE = ("No image was given, so only the reference-set sweep is shown; name image files (in the app: pick "
            "images in the sidebar) to see how a prediction changes.")
RANDOM_NOTE = ("With random weights the model's accuracy is chance whatever is knocked out, so the sweep would measure "
               "nothing. Pick trained weights to run it.")


def prepared_requests(loaded: LoadedModel) -> list[ViewRequest]:
    """Return the requests `sevis prepare` stores: the app's preselected sample images, each mode."""
    images = tuple(default_sample_images(loaded))
    return [ViewRequest(images=images), ViewRequest(images=images, mode="mean")]


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None, *,
            sweep: bool = True) -> ViewResult:
    """Return the Knock-out view: each image's prediction with `request.knockout_blocks` knocked out (None: for
    each image the block whose knock-out alone changes its prediction most); with `request.find_flip` the smallest
    knock-out that flips each image's prediction (sevis.analysis.flip_search); then the reference-set sweep (shown
    with request.mode; its finding read with s := the block's mean, s := 1 beside it, as the paper table reads it)
    and how many predictions single-block knock-outs flip (FlipCount, as the Tour counts them). `sweep` False
    leaves out the reference-set part (the app runs it on request when it is not stored).

    numbers: per image, knocked_out/<image> (the blocks), preselected/<image> (why, when computed), before/<image>
    and after/<image> ([top class, probability]); with find_flip the flip_*/<image> numbers of flip_numbers;
    accuracy, change/<block> (the sweep shown), change_mean/<block> and change_identity/<block> (both sweeps);
    flips, flips/images, flips/blocks and flips/<block>."""
    result = ViewResult(SLUG, TITLE)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    if not blocks:
        result.notes.append("This model has no SE blocks to knock out.")
        return result
    if request.mode not in ("identity", "mean"):
        raise SevisError(f"unknown knock-out mode {request.mode!r}; use identity or mean")
    names = [b.name for b in blocks]
    # () knocks out nothing (the app's picker emptied); `sevis export knockout --blocks` names them too
    chosen = request.knockout_blocks if request.knockout_blocks is not None else request.blocks
    unknown = [b for b in chosen or () if b not in names]
    if unknown:
        raise SevisError(f"no SE block named {', '.join(unknown)} in {loaded.name}; blocks: {', '.join(names)}")
    means, stats = None, None
    if request.mode == "mean":
        stats = reference_statistics(loaded, request.folder).stats
        means = class_mean_excitations(stats, "all")
    texts = []
    for image in request.images:
        if chosen is not None:
            ko = [n for n in names if n in chosen]
        else:
            ko, why = default_knockout(block_effects(loaded, image, names, request.mode, means))
            result.numbers[f"preselected/{image.name}"] = why
        res = knockout_image(loaded, image, ko, request.mode, means)
        result.panels.append(res.panel)
        result.numbers.update({f"knocked_out/{image.name}": ko, f"before/{image.name}": list(res.before[0]),
                               f"after/{image.name}": list(res.after[0])})
        texts.append(knockout_image_takeaway(res, ko, image.name if len(request.images) > 1 else None))
    if request.find_flip and request.images:
        flip_means, stats = search_means(loaded, request.folder, stats, result)
        for found in find_flips(loaded, request.images, flip_means):
            result.panels.append(flip_panel(found))
            result.numbers.update(flip_numbers(found))
            texts.append(flip_sentence(found, found.image if len(request.images) > 1 else None))
    if not request.images:
        result.notes.append(NO_IMAGE)
    if loaded.random_weights:
        result.notes.append(RANDOM_NOTE)
    elif sweep:
        try:
            if stats is None:
                stats = reference_statistics(loaded, request.folder).stats
            sweeps = {}
            for i, mode in enumerate(("identity", "mean")):  # both: the finding reads s := mean, s := 1 beside it
                part = (lambda f, i=i: progress((i + f) / 2)) if progress else None
                sweeps[mode], source = reference_sweep(loaded, request.folder, mode, stats, part)
        except DatasetError as e:  # no labelled images for this model: a hint, not a failure
            result.notes.append(str(e))
        else:
            frame = sweeps[request.mode]
            result.panels.append(sweep_panel(frame, request.mode, source))
            rows = frame[frame["block"] != "none"]
            result.numbers["accuracy"] = float(frame.loc[frame["block"] == "none", "accuracy"].iloc[0])
            result.numbers.update({f"change/{b}": float(c) for b, c in zip(rows["block"], rows["change"])})
            for mode, f in sweeps.items():
                part = f[f["block"] != "none"]
                result.numbers.update({f"change_{mode}/{b}": float(c) for b, c in zip(part["block"], part["change"])})
            flips = flip_count(loaded, request.folder, request.mode, means)
            result.numbers.update(flips.numbers())
            texts += [knockout_takeaway(sweeps["identity"], blocks, sweeps["mean"]), flips.sentence()]
    result.takeaway = " ".join(t for t in texts if t) or None
    return result


def search_means(loaded: LoadedModel, folder: str | None, stats, result: ViewResult):
    """Return (block -> reference-set mean of s for the flip search, the statistics): None and a note where the
    model has no labelled reference set (the search then replaces s by 1 only)."""
    try:
        if stats is None:
            stats = reference_statistics(loaded, folder).stats
        return class_mean_excitations(stats, "all"), stats
    except DatasetError as e:
        result.notes.append(f"Find a flip replaces s by 1 only: {e}")
        return None, None


_FLIPS: dict[tuple, FlipCount] = {}
_FLIPS_LOCK = threading.Lock()


def flip_count(loaded: LoadedModel, folder: str | None, mode: Mode = "identity",
               means: Mapping[str, np.ndarray] | None = None) -> FlipCount:
    """Return how many of the first reference images each block alone flips (tour_search.count_flips), kept per
    model, reference set and mode in this process: it does not depend on the images or blocks picked."""
    key = (id(loaded.model), loaded.spec, loaded.random_weights, folder, mode)
    with _FLIPS_LOCK:
        if key in _FLIPS:
            return _FLIPS[key]
    classes, batches, _, _ = reference_inputs(loaded, folder)
    counts = count_flips(loaded, batches, [b for b, _ in find_se_blocks(loaded.model)], mode, means)
    with _FLIPS_LOCK:
        if len(_FLIPS) > 32:  # a handful of models per server; never grows without bound
            _FLIPS.clear()
        _FLIPS[key] = counts
    return counts


def sweep_is_stored(loaded: LoadedModel, folder: str | None, mode: Mode = "identity") -> bool:
    """Return True when the reference-set sweeps of this model (`mode`, shown, and both modes, which its finding
    reads) are read from its precomputed file (a shipped model over the bundled reference set), so showing them
    costs nothing."""
    if folder or loaded.random_weights:
        return False
    pre, _ = load_precomputed(loaded)
    return pre is not None and all(m in pre.sweeps for m in (mode, "identity", "mean"))


@dataclass
class KnockoutResult:
    before: list[tuple[str, float]]
    after: list[tuple[str, float]]
    panel: Panel

    @property
    def changed(self) -> bool:
        return self.before[0][0] != self.after[0][0]


def knockout_image(loaded: LoadedModel, image: NamedImage, blocks: Sequence[str], mode: Mode = "identity",
                   means: Mapping[str, np.ndarray] | None = None, k: int = 5) -> KnockoutResult:
    """Return the image's top-k before and after knocking `blocks` out (s := 1 or s := reference mean)."""
    x = torch.stack([loaded.preprocess(image.image)])
    res_b = run_batch(loaded, x)
    res_a = run_batch(loaded, x, overrides=knockout_overrides(blocks, mode, means))
    before, after = res_b.topk(k)[0], res_a.topk(k)[0]
    # Both bars for every class in either top-k, so a class that drops out still shows its new probability.
    shown = list(dict.fromkeys([c for c, _ in before] + [c for c, _ in after]))
    idx = [loaded.classes.index(c) for c in shown]
    pb, pa = res_b.probs[0, idx].tolist(), res_a.probs[0, idx].tolist()
    fb = pd.DataFrame({"image": image.name, "class": shown, "probability": pb, "when": "original"})
    fa = pd.DataFrame({"image": image.name, "class": shown, "probability": pa, "when": "knocked out"})
    what = ", ".join(blocks) if blocks else "no block"
    panel = Panel(image_stem(image.name) + "_knockout", f"Prediction for {image.name} with {what} knocked out",
                    f"Class probabilities before (blue) and after (red) replacing s of {what} by "
                    f"{'1 (identity)' if mode == 'identity' else 'the reference-set mean'}.",
                    prediction_change(fb, fa, f"Prediction before and after knocking out {what}"),
                    pd.concat([fb, fa], ignore_index=True))
    return KnockoutResult(before, after, panel)


def knockout_sweep_panel(loaded: LoadedModel, batches, mode: Mode = "identity",
                         means: Mapping[str, np.ndarray] | None = None, source: str = "the reference set",
                         progress: Callable[[float], None] | None = None, total: int | None = None) -> Panel:
    """Reference-set accuracy with each SE block knocked out alone (the paper: late blocks cost little)."""
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress and total:
            progress(min(done[0] / total, 1.0))

    return sweep_panel(knockout_sweep(loaded, batches, mode=mode, means=means, progress=step), mode, source)


def precomputed_sweep_panel(loaded: LoadedModel, mode: Mode = "identity") -> Panel | None:
    """Return the sweep panel over the bundled reference set from a shipped model's current precomputed file
    (sevis.analysis.precomputed), or None when there is none."""
    pre, _ = load_precomputed(loaded)
    if pre is None or mode not in pre.sweeps:
        return None
    return sweep_panel(pre.sweeps[mode], mode, pre.sweep_source)


def sweep_panel(sweep: pd.DataFrame, mode: Mode = "identity", source: str = "the reference set") -> Panel:
    """Return the panel of a knock-out sweep frame (sevis.analysis.knockout.knockout_sweep)."""
    return Panel("knockout_sweep", "Accuracy with each SE block knocked out",
                   f"Accuracy over {source} when one SE block at a time has its s replaced by "
                   f"{'1 (identity)' if mode == 'identity' else 'its reference-set mean'}; bars show the change "
                   "from the intact model in percentage points. The paper observes that late SE blocks (close to "
                   "identity) can be dropped at little cost.", knockout_bars(sweep, mode), sweep)


def knockout_takeaway(sweep: pd.DataFrame, blocks: Sequence[SEBlock],
                      mean_sweep: pd.DataFrame | None = None) -> str | None:
    """Return the costliest block to knock out and the paper's "late SE removable" finding in the paper table's
    words (sevis.analysis.paper.late_se_removable), from the sweep with s := 1 (`sweep`) and, where given, the one
    with s := the block's mean (`mean_sweep`): the finding reads s := its mean, s := 1 beside it (frames from
    knockout_sweep)."""
    main = mean_sweep if mean_sweep is not None and len(mean_sweep) else sweep
    how = " (s := its mean)" if main is not sweep else ""
    rows = main[main["block"] != "none"]
    if rows.empty:
        return None
    cost = (-100.0 * rows.set_index("block")["change"]).dropna()
    if cost.empty:
        return finish("The knock-out sweep measured no accuracy here (no labelled images of the model's classes).")
    worst = cost.idxmax()
    if rounded(cost[worst], ".1f") > 0:
        text = (f"Knocking out {worst}{how} costs {num(cost[worst], '.1f')} points of accuracy, the most of any single "
                "block")
        if how:
            ones = (-100.0 * sweep[sweep["block"] != "none"].set_index("block")["change"]).dropna()
            if not ones.empty:
                w1 = ones.idxmax()
                text += f" (with s := 1: {w1}, {num(ones[w1], '.1f')} points)"
    else:
        best = cost.idxmin()
        text = (f"No single block costs accuracy when knocked out{how}"
                + (f" (the largest gain is {num(-cost[best], '+.1f')} points, at {best})"
                   if rounded(-cost[best], ".1f") > 0 else " (no change reaches 0.1 points)"))
    stage = blocks[-1].stage if blocks else None
    last = [b.name for b in blocks if b.stage == stage and b.name in cost.index] if stage is not None else []
    if last and len(last) < len(cost):
        words, criterion, ok = late_se_removable(last, sweep, mean_sweep)
        verdict = {True: "as the paper finds, late SE can be removed at little cost",
                   False: "unlike the paper's finding that late SE can be removed at little cost",
                   None: "so the paper's finding that late SE can be removed at little cost is not checked here"}[ok]
        text += f". In the last stage, {words}: by the paper's criterion ({criterion}), {verdict}"
    return finish(text)


def knockout_image_takeaway(result: KnockoutResult, blocks: Sequence[str], name: str | None = None) -> str:
    """Return what knocking `blocks` out did to this image's top class (or that it did nothing); `name`: the image's,
    to begin the sentence with when several images are shown."""
    (c, p), (c2, p2) = result.before[0], result.after[0]
    after_same = next((q for k, q in result.after if k == c), None)
    what = listing(list(blocks)) if blocks else "no block"
    if not blocks:
        text = f"No block is knocked out, so the prediction stays {c} ({pct(p)})."
    elif result.changed:
        text = f"Knocking out {what} turns {c} ({pct(p)}) into {c2} ({pct(p2)})."
    else:
        q = after_same if after_same is not None else p2
        text = f"With {what} knocked out the image is still {c}; its probability {change(p, q, formatter=pct)}."
    return finish(f"{name}: {text[0].lower()}{text[1:]}", capitalise=False) if name else finish(text)


def block_effects(loaded: LoadedModel, image: NamedImage, blocks: Sequence[str], mode: Mode = "identity",
                  means: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Return, for each block knocked out alone, how much the image's prediction changes: block, top class after,
    its probability, whether the top class changes, and the total variation distance between the class
    probabilities before and after (0: nothing changes, 1: disjoint), largest first."""
    x = torch.stack([loaded.preprocess(image.image)])
    base = run_batch(loaded, x).probs[0].double().numpy()
    top = int(base.argmax())
    rows = []
    for block in blocks:
        probs = run_batch(loaded, x, overrides=knockout_overrides([block], mode, means)).probs[0].double().numpy()
        rows.append({"block": block, "class_after": loaded.classes[int(probs.argmax())],
                     "top_changes": int(probs.argmax()) != top, "top_probability_after": float(probs[top]),
                     "distance": float(0.5 * np.abs(probs - base).sum())})
    frame = pd.DataFrame(rows, columns=["block", "class_after", "top_changes", "top_probability_after", "distance"])
    return frame.sort_values(["top_changes", "distance"], ascending=False, kind="stable").reset_index(drop=True)


def default_knockout(effects: pd.DataFrame) -> tuple[list[str], str]:
    """Return (the blocks to preselect: the one whose knock-out changes the prediction most, a sentence saying
    so, or that no single block changes anything) from block_effects."""
    if effects.empty:
        return [], "This model has no SE blocks to knock out."
    best = effects.iloc[0]
    if best["distance"] < NOTHING_CHANGES:
        return [str(best["block"])], finish(
            f"Knocking out any single SE block leaves this image's prediction as it is (the largest change, at "
            f"{best['block']}, moves the class probabilities by {num(100 * best['distance'], '.2f')} points); "
            "preselected: that block.")
    what = (f"turns the prediction into {best['class_after']}" if best["top_changes"] else
            f"moves the class probabilities most ({num(100 * best['distance'], '.1f')} points)")
    return [str(best["block"])], finish(f"Preselected: {best['block']}, whose knock-out alone {what}.")


NOTHING_CHANGES = 0.0005  # total variation below this (0.05 points): no visible change at the shown precision


def knockout_bars(sweep: pd.DataFrame, mode: str = "identity", title: str | None = None) -> go.Figure:
    """Change of reference-set accuracy (percentage points) when each SE block is knocked out alone."""
    none = sweep["block"] == "none"
    base = float(sweep.loc[none, "accuracy"].iloc[0]) if none.any() else float("nan")
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
    return apply_layout(fig, title, height=380, showlegend=False)


def prediction_change(before: pd.DataFrame, after: pd.DataFrame,
                      title: str = "Prediction before and after the knock-out") -> go.Figure:
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
    return apply_layout(fig, title, height=110 + 40 * len(classes), barmode="group",
                        margin=dict(l=140, r=20, t=70, b=45))


# ---------------------------------------------------------------------------------------- find a flip
def _replaced(mode: str, whole_block: bool) -> str:
    """Return what a knock-out replaces s by, in words."""
    if mode == "identity":
        return "s := 1"
    return "s := its mean" if whole_block else "s := their reference-set mean"


def knockout_words(ko: Knockout) -> str:
    """Return a knock-out in words: "SE_4_1 alone (s := its mean)", "3 channels of SE_2_2 (channels 4, 9 and 17;
    s := 1)", "12 channels, 7 of SE_2_1 and 5 of SE_2_2 (s := 1)" or, in more blocks, where most of them are."""
    if ko.block is not None:
        return f"{ko.block} alone ({_replaced(ko.mode, True)})"
    n = ko.size
    what = f"{n} channel{'s' if n != 1 else ''}"
    per = {b: ko.channels_of(b) for b in ko.blocks}
    if len(per) == 1:
        (b, chans), = per.items()
        shown = listing([str(c) for c in chans]) if len(chans) <= 6 else f"{', '.join(map(str, chans[:5]))}, …"
        return f"{what} of {b} (channel{'s' if n != 1 else ''} {shown}; {_replaced(ko.mode, False)})"
    if len(per) <= 3:
        return f"{what}, {listing([f'{len(c)} of {b}' for b, c in per.items()])} ({_replaced(ko.mode, False)})"
    most = max(per, key=lambda b: len(per[b]))
    return f"{what} in {len(per)} blocks ({_replaced(ko.mode, False)}; the most, {len(per[most])}, in {most})"


def _count(n: int, noun: str) -> str:
    """Return "1 channel", "2 channels"."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _modes_words(found: FlipSearch) -> str:
    return "s := its mean and s := 1" if len(found.modes) > 1 else "s := 1"


def flip_sentence(found: FlipSearch, name: str | None = None) -> str:
    """Return what the flip search found for one image, or that it found none in what it searched (how many blocks,
    channels and knock-outs); `name`: the image's, to begin the sentence with when several images are shown."""
    c, p = found.before
    head = f"{name}: find a flip" if name else "Find a flip"
    singles = f"{found.blocks} block{'s' if found.blocks != 1 else ''} alone, each with {_modes_words(found)}"
    if found.flip is not None:
        c2, p2 = found.after
        turns = (f"turns {c} ({pct(p)}) into {c2} ({pct(p2)}; {c} now {pct(found.original_after)})")
        if found.phase == 1:
            total = found.blocks * len(found.modes)
            others = (f"{found.block_flips} of the {total} single-block knock-outs ({singles}) flip it, and this one "
                      "knocks out the fewest channels, then moves s least" if found.block_flips > 1 else
                      f"it is the only one of the {total} single-block knock-outs ({singles}) that flips it")
            return finish(f"{head}: knocking out {knockout_words(found.flip)} {turns}; {others}.", capitalise=False)
        where = (f"among the channels of {listing(list(found.channel_blocks))}, the blocks whose knock-out alone "
                 f"lowers {c} most" if found.phase == 2 else
                 f"among the channels of every block, after those of {listing(list(found.channel_blocks))} gave none")
        return finish(f"{head}: none of the {found.blocks * len(found.modes)} single-block knock-outs ({singles}) "
                      f"changes {c} ({pct(p)}), but knocking out {knockout_words(found.flip)} turns it into {c2} "
                      f"({pct(p2)}; {c} now {pct(found.original_after)}), found {where} ({found.knockouts} "
                      "knock-outs tried in all).", capitalise=False)
    if found.after_probs is None:
        return finish(f"{head}: this model has no SE blocks to knock out.", capitalise=False)
    if found.channels_tried:
        scope = (f"then up to {_count(found.cap, 'channel')} at a time among those of "
                 f"{listing(list(found.channel_blocks))}" + (" and then of every block" if found.phases > 2 else "")
                 + f" ({_count(found.channels_tried, 'channel')} tried)")
    else:
        scope = "then no channel, since none is estimated to lower it"
    return finish(f"{head}: no knock-out searched changes the top class {c} ({pct(p)}): {singles}, {scope}; "
                  f"{found.knockouts} knock-outs in all. The closest, {knockout_words(found.nearest)}, leaves {c} at "
                  f"{pct(found.original_after)}.", capitalise=False)


def flip_numbers(found: FlipSearch) -> dict:
    """Return the numbers the flip sentence states for one image, by name: flip/<image> (whether one was found),
    flip_phase, flip_mode, flip_blocks, flip_channels ([block, channel] pairs; [] for a whole block), flip_size
    (channels knocked out), flip_before and flip_after ([top class, probability]), flip_original_after, and what was
    searched: flip_knockouts, flip_channels_tried, flip_block_flips. Without a flip, mode, blocks, channels, size and
    after describe the closest miss."""
    name = found.image
    ko = found.flip or found.nearest
    out = {f"flip/{name}": found.flip is not None, f"flip_phase/{name}": found.phase,
           f"flip_before/{name}": list(found.before), f"flip_knockouts/{name}": found.knockouts,
           f"flip_channels_tried/{name}": found.channels_tried, f"flip_block_flips/{name}": found.block_flips}
    if ko is not None:
        out.update({f"flip_mode/{name}": ko.mode, f"flip_blocks/{name}": ko.blocks,
                    f"flip_channels/{name}": [list(p) for p in ko.channels], f"flip_size/{name}": ko.size,
                    f"flip_after/{name}": list(found.after), f"flip_original_after/{name}": found.original_after})
    return out


def flip_panel(found: FlipSearch) -> Panel:
    """Return the panel of one image's flip search: its class probabilities intact and with the flip (or the closest
    miss) knocked out; its caption is the search's sentence (flip_sentence), then how the search works."""
    ko = found.flip or found.nearest
    before = found.before_probs
    after = found.after_probs if found.after_probs is not None else before
    top = [int(i) for i in np.argsort(-before, kind="stable")[:5]]
    shown = list(dict.fromkeys(top + [int(i) for i in np.argsort(-after, kind="stable")[:5]]))
    classes = [found.classes[i] for i in shown]
    what = knockout_words(ko) if ko is not None else "nothing"
    fb = pd.DataFrame({"image": found.image, "class": classes, "probability": before[shown], "when": "original"})
    fa = pd.DataFrame({"image": found.image, "class": classes, "probability": after[shown], "when": "knocked out"})
    title = (f"A flip for {found.image}: {what}" if found.flip is not None else
             f"No flip found for {found.image}; the closest: {what}")
    channels = ("; ".join(f"{b}: {', '.join(map(str, ko.channels_of(b)))}" for b in ko.blocks)
                if ko is not None and ko.block is None else "")
    data = pd.concat([fb, fa], ignore_index=True).assign(knocked_out=what, channels=channels)
    return Panel(image_stem(found.image) + "_flip", title,
                 f"{flip_sentence(found)} {f'Channels knocked out: {channels}. ' if channels else ''}"
                 "How it searches: each SE block knocked out alone (s := its reference-set "
                 "mean, then s := 1); if none flips the prediction, channels of the most influential blocks, then of "
                 "every block, ranked by how much knocking each out is estimated to lower the predicted class, at most "
                 f"{CHANNEL_CAP} at a time; the smallest knock-out that changes the top class (fewest channels) is "
                 "shown, re-run through the model. Blue: intact; red: knocked out.",
                 prediction_change(fb, fa, title if len(title) <= 90 else title[:88] + "…"), data)
