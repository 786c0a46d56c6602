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

from sevis.analysis.images import NamedImage, default_sample_images, image_stem
from sevis.analysis.inference import run_batch
from sevis.analysis.knockout import Mode, knockout_overrides, knockout_sweep
from sevis.analysis.paper import LITTLE_COST_POINTS
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
    each image the block whose knock-out alone changes its prediction most), then the reference-set sweep and how
    many predictions single-block knock-outs flip (FlipCount, as the Tour counts them). `sweep` False leaves out
    the reference-set part (the app runs it on request when it is not stored).

    numbers: per image, knocked_out/<image> (the blocks), preselected/<image> (why, when computed), before/<image>
    and after/<image> ([top class, probability]); accuracy and change/<block> (the sweep); flips, flips/images,
    flips/blocks and flips/<block>."""
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
    if not request.images:
        result.notes.append(NO_IMAGE)
    if loaded.random_weights:
        result.notes.append(RANDOM_NOTE)
    elif sweep:
        try:
            frame, source = reference_sweep(loaded, request.folder, request.mode, stats, progress)
        except DatasetError as e:  # no labelled images for this model: a hint, not a failure
            result.notes.append(str(e))
        else:
            result.panels.append(sweep_panel(frame, request.mode, source))
            rows = frame[frame["block"] != "none"]
            result.numbers["accuracy"] = float(frame.loc[frame["block"] == "none", "accuracy"].iloc[0])
            result.numbers.update({f"change/{b}": float(c) for b, c in zip(rows["block"], rows["change"])})
            flips = flip_count(loaded, request.folder, request.mode, means)
            result.numbers.update(flips.numbers())
            texts += [knockout_takeaway(frame, blocks), flips.sentence()]
    result.takeaway = " ".join(t for t in texts if t) or None
    return result


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
    """Return True when the reference-set sweep of this model and mode is read from its precomputed file (a shipped
    model over the bundled reference set), so showing it costs nothing."""
    if folder or loaded.random_weights:
        return False
    pre, _ = load_precomputed(loaded)
    return pre is not None and mode in pre.sweeps


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


def knockout_takeaway(sweep: pd.DataFrame, blocks: Sequence[SEBlock]) -> str | None:
    """Return the costliest block to knock out and, checked against the paper's "late SE removable" (each
    last-stage block under LITTLE_COST_POINTS), what the last stage costs (sweep frame from knockout_sweep)."""
    rows = sweep[sweep["block"] != "none"]
    if rows.empty:
        return None
    cost = (-100.0 * rows.set_index("block")["change"]).dropna()
    if cost.empty:
        return finish("The knock-out sweep measured no accuracy here (no labelled images of the model's classes).")
    worst = cost.idxmax()
    if rounded(cost[worst], ".1f") > 0:
        text = f"Knocking out {worst} costs {num(cost[worst], '.1f')} points of accuracy, the most of any single block"
    else:
        best = cost.idxmin()
        text = ("No single block costs accuracy when knocked out"
                + (f" (the largest gain is {num(-cost[best], '+.1f')} points, at {best})"
                   if rounded(-cost[best], ".1f") > 0 else " (no change reaches 0.1 points)"))
    stage = blocks[-1].stage if blocks else None
    last = [b.name for b in blocks if b.stage == stage and b.name in cost.index] if stage is not None else []
    if last and len(last) < len(cost):
        top = cost[last].idxmax()
        bound = float(cost[top])
        verdict = ("as the paper finds, late SE can be removed at little cost" if bound < LITTLE_COST_POINTS else
                   "unlike the paper's finding that late SE can be removed at little cost")
        text += (f". In the last stage, knocking out {top} costs the most, {num(max(bound, 0.0), '.1f')} points "
                 f"(the paper's criterion: under {LITTLE_COST_POINTS:g} point per block): {verdict}")
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
    return finish(f"{name}: {text[0].lower()}{text[1:]}" if name else text)


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
