"""Live inference view: the top-5 prediction, the heat strip of s at every block, per-block lines, the model's input.
"""
from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from sevis.analysis.domain import DomainVerdict, domain_verdict
from sevis.analysis.images import ImageResult, analyse_images, default_sample_images, image_stem
from sevis.analysis.reference import paper_blocks
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.data.framing import describe_preprocessing
from sevis.errors import SevisError
from sevis.figures.overlay import model_input_image
from sevis.figures.plots import CHANNEL_AXIS, Panel, apply_layout, s_axis_range
from sevis.figures.sentences import finish, num, pct, same
from sevis.figures.shared_figures import block_lines, excitation_frame, topk_bar, topk_frame
from sevis.models.zoo import LoadedModel
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "live"
TITLE = "Live inference"


NO_BLOCKS = "This model has no SE blocks, so there are no excitations to show."


def line_blocks(blocks: Sequence[SEBlock]) -> list[str]:
    """Return the blocks the per-block line plots show by default: every block up to 8, else the paper's choice."""
    names = [b.name for b in blocks]
    return names if len(names) <= 8 else paper_blocks(blocks)


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Live view of every image in request.images: per image its top-5, the heat strip of s at every
    block and the line plots of request.blocks (None: line_blocks), its input files attached to the first panel.

    notes: per image, "<name>: " and what its preprocessing did, the domain verdict (where the model has one) and
    a note on an image unlike the training images. numbers: per image `prediction/<name>`, `probability/<name>`
    and the takeaway's `most_varied/<name>`, `most_varied_std/<name>`, `least_varied/<name>`,
    `least_varied_std/<name>`, `switched_off/<name>` (channels with s < 0.1 at the most varied block) and, where
    the model has a domain verdict, `in_domain/<name>` (False: the prediction is said to be unreliable)."""
    result = ViewResult(SLUG, TITLE)
    if not request.images:
        raise SevisError(f"the {TITLE} view needs one or more images: name image files (sevis export live "
                         "IMAGE …) or upload them in the app's sidebar")
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    names = [b.name for b in blocks]
    unknown = [b for b in request.blocks or () if b not in names]
    if unknown:
        raise SevisError(f"no SE block named {', '.join(unknown)} in {loaded.name}; blocks: {', '.join(names)}")
    sel = list(request.blocks) if request.blocks else line_blocks(blocks)
    results = analyse_images(loaded, list(request.images))
    sentences = []
    for r in results:
        result.panels += with_input_images(loaded, r, live_panels(r, None if sel == names else sel))
        result.numbers.update(live_numbers(r))
        verdict = domain_verdict(loaded, r.image)  # None: no reference set to measure it against
        if verdict is not None:
            result.numbers[f"in_domain/{r.name}"] = bool(verdict.in_domain)
        for note in image_notes(loaded, r.name, r.image, verdict):
            result.notes.append(f"{r.name}: {note}")
        sentences.append(live_takeaway(r, None if verdict is None else verdict.in_domain))
    if not blocks:
        result.notes.append(NO_BLOCKS)
    result.takeaway = " ".join(t for t in sentences if t) or None
    return result


def image_notes(loaded: LoadedModel, name: str, image: Image.Image, verdict: DomainVerdict | None = None) -> list[str]:
    """Return what the Live view says about one image: what the model's preprocessing did to it, the domain verdict
    (`verdict`, else computed; none where the model has none) and domain_note's line when the image lies outside
    what the model was trained on."""
    notes = [describe_preprocessing(loaded.preprocess, image)]
    if verdict is None:
        verdict = domain_verdict(loaded, image)  # None: no reference set to measure it against
    if verdict is not None:
        notes.append(verdict.note())
    note = domain_note(loaded, image)
    if note:
        notes.append(note)
    return notes


def live_numbers(result: ImageResult) -> dict[str, float | int | str]:
    """Return the numbers the Live view states for one image (its prediction and live_takeaway's), by name."""
    out: dict[str, float | int | str] = {f"prediction/{result.name}": result.topk[0][0],
                                         f"probability/{result.name}": float(result.topk[0][1])}
    if result.excitations:
        spread = {b: float(np.std(s)) for b, s in result.excitations.items()}
        hi, lo = max(spread, key=spread.get), min(spread, key=spread.get)
        out.update({f"most_varied/{result.name}": hi, f"most_varied_std/{result.name}": spread[hi],
                    f"least_varied/{result.name}": lo, f"least_varied_std/{result.name}": spread[lo],
                    f"switched_off/{result.name}": int((np.asarray(result.excitations[hi]) < 0.1).sum())})
    return out


def prepared_requests(loaded: LoadedModel) -> list[ViewRequest]:
    """Return the request `sevis prepare` stores: the app's first open, the sample images the sidebar
    preselects."""
    return [ViewRequest(images=tuple(default_sample_images(loaded)))]


def value_words(s) -> str:
    """Return how to read the values `s` of a heat strip: 0 and 1, and what values above 1 or below 0 mean."""
    s = np.asarray(s, np.float64)
    s = s[np.isfinite(s)]
    words = "0 = suppressed, 1 = passed on unchanged"
    if s.size and s.max() > 1:
        words += f", above 1 = amplified (here up to {s.max():.2f})"
    if s.size and s.min() < 0:
        words += f", below 0 = sign flipped (here down to {s.min():.2f})"
    return words


MIN_MODEL_INPUT_PX = 256  # a teaching pack's model-input image is enlarged (nearest) to at least this, for slides


def domain_note(loaded: LoadedModel, image: Image.Image) -> str | None:
    """Return one line when `image` lies outside what the model was trained on (a colour photo sent to a grey
    Fashion-MNIST model, a tiny image sent to an ImageNet model), else None."""
    w, h = image.size
    if loaded.dataset == "fashion-mnist":
        arr = np.asarray(image.convert("RGB"), np.float32)
        colour = float(np.abs(arr - arr.mean(2, keepdims=True)).mean())
        if colour > 8:  # what the colour means; whether the image is garment-like is sevis.analysis.domain's verdict
            return "A colour image: the model, trained on grey garments, sees the grey version shown as its input."
        return None
    if min(w, h) < 64:
        return (f"This image is only {w}×{h} pixels; the model was trained on ImageNet photos around 224 px and "
                "scales it up, so the prediction is shown but may mean little.")
    return None


def live_panels(result: ImageResult, blocks: Sequence[str] | None = None) -> list[Panel]:
    """Top-5 bars, the blocks × channels heat strip and per-block line plots for one image."""
    frame = excitation_frame(result.excitations, result.name)
    top = topk_frame(result.topk, result.name)
    key = image_stem(result.name)
    panels = [Panel(f"{key}_top5", f"Top-5 predictions for {result.name}",
                      "The five most probable classes and their probabilities.",
                      topk_bar(top, f"Top-5 predictions for {result.name}"), top)]
    if len(frame):
        panels.append(Panel(
            f"{key}_heat_strip", f"Excitations of {result.name} at every SE block",
            "Each row is one SE block (shallow at the top, deep at the bottom), each column a channel; the colour "
            f"is the excitation s the block multiplies that channel by ({value_words(frame['s'])}).",
            heat_strip(frame, f"Excitations at every SE block: {result.name}"), frame))
        sel = frame if blocks is None else frame[frame["block"].isin(list(blocks))]
        panels.append(Panel(
            f"{key}_block_lines", f"Excitation over channel index per SE block for {result.name}",
            "One panel per SE block: the excitation s of every channel for this image.",
            block_lines(sel, blocks, title=f"Excitation s over channel index per SE block: {result.name}"), sel))
    return panels


def input_image_files(loaded: LoadedModel, name: str, image: Image.Image) -> dict[str, bytes]:
    """Return the image as given and as the model saw it (after its preprocessing), as PNG files for a teaching
    pack: {stem}_input.png and {stem}_model_input.png."""
    files = {}
    seen = model_input_image(loaded, image)
    factor = -(-MIN_MODEL_INPUT_PX // max(min(seen.size), 1))  # hard pixels, so students see what the model saw
    if factor > 1:
        seen = seen.resize((seen.width * factor, seen.height * factor), Image.NEAREST)
    for suffix, img in (("input", image), ("model_input", seen)):
        buf = io.BytesIO()
        img.save(buf, "PNG")
        files[f"{image_stem(name)}_{suffix}.png"] = buf.getvalue()
    return files


def with_input_images(loaded: LoadedModel, result: ImageResult, panels: list[Panel]) -> list[Panel]:
    """Attach the image's input files (input_image_files) to the first of its Live panels; return the panels."""
    if panels:
        panels[0].files.update(input_image_files(loaded, result.name, result.image))
    return panels


UNRELIABLE = "unreliable: the image is out of the model's domain"  # what the prediction says of itself then


def prediction_text(numbers: Mapping[str, Any], name: str, bold: bool = False) -> str:
    """Return the Live view's prediction line for image `name` from its numbers: "Prediction: Trouser (99.8%)",
    with ", unreliable: the image is out of the model's domain" when the domain verdict says so (markdown with
    `bold`)."""
    c, p = numbers[f"prediction/{name}"], numbers[f"probability/{name}"]
    text = f"**Prediction: {c}** ({pct(p)})" if bold else f"Prediction: {c} ({pct(p)})"
    if numbers.get(f"in_domain/{name}") is False:
        text += f", **{UNRELIABLE}**" if bold else f", {UNRELIABLE}"
    return text


# One sentence per view, computed from what the view shows (never hard-coded numbers), for its end.
def live_takeaway(result: ImageResult, in_domain: bool | None = None) -> str | None:
    """Return which block spreads s the most and which the least for this image, and the prediction (or that s
    hardly varies across channels anywhere); `in_domain` False (the domain verdict) says the prediction is
    unreliable."""
    if not result.excitations:
        return None
    spread = {b: float(np.std(s)) for b, s in result.excitations.items()}
    hi, lo = max(spread, key=spread.get), min(spread, key=spread.get)
    muted = {b: int((np.asarray(s) < 0.1).sum()) for b, s in result.excitations.items()}
    head = f"{result.name} is predicted {result.topk[0][0]} ({pct(result.topk[0][1])})."
    if in_domain is False:
        head = head[:-1] + ", but the image is out of the model's domain, so this prediction is unreliable."
    if same(spread[hi], spread[lo]) or len(spread) == 1:
        return finish(capitalise=False,
                      text=f"{head} Its excitations vary about as much across channels at every block (std "
                      f"at most {num(spread[hi])}, at {hi})" + (": s is nearly the same for every channel, "
                      "so the SE blocks pick no channel out." if num(spread[hi]) == num(0) else "."))
    return finish(capitalise=False,
                  text=f"{head} Its excitations vary most across channels at {hi} (std {num(spread[hi])}) and least at "
                  f"{lo} (std {num(spread[lo])}); {muted[hi]} of {len(result.excitations[hi])} channels at {hi} are "
                  "nearly switched off (s < 0.1).")


def heat_strip(frame: pd.DataFrame, title: str = "Excitations at every SE block") -> go.Figure:
    """Blocks × channels heat map of s for one image (rows in depth order, top = first block).

    Blocks have different channel counts; cells past a block's last channel are left empty.
    """
    blocks = list(dict.fromkeys(frame["block"]))
    width = int(frame["channel"].max()) + 1 if len(frame) else 1
    z = np.full((len(blocks), width), np.nan)
    for i, b in enumerate(blocks):
        part = frame[frame["block"] == b]
        z[i, part["channel"].to_numpy()] = part["s"].to_numpy()
    lo, hi = s_axis_range(frame["s"]) if len(frame) else (0.0, 1.0)
    fig = go.Figure(go.Heatmap(
        z=z, x=np.arange(width), y=blocks, zmin=max(lo, 0.0) if lo >= -0.05 else lo,
        zmax=min(hi, 1.0) if hi <= 1.05 else hi,
        colorscale="Viridis", colorbar=dict(title=dict(text="s", side="right"), thickness=12),
        hovertemplate="block %{y}<br>channel %{x}<br>s = %{z:.3f}<extra></extra>", hoverongaps=False,
    ))
    fig.update_yaxes(autorange="reversed", title_text="SE block (shallow → deep)", type="category")
    fig.update_xaxes(title_text=CHANNEL_AXIS)
    return apply_layout(fig, title, height=max(260, 110 + 24 * len(blocks)))
