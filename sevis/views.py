"""What each view of the app (and `sevis export`) computes: model + inputs in, Panels (figure + data +
caption) out. No Streamlit here, so every view is testable and scriptable.

Views: live inference, compare, class × depth (the paper's Fig. 6/7, specificity and saturation against
depth), SE knock-out, architecture.
"""
from __future__ import annotations

import io
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import figures as F
from .analysis import ExcitationStats, depth_measures, similarity_by_depth

from .data import load_reference_set
from .errors import DatasetError, ImageError, SevisError
from .folders import IMAGE_SUFFIXES, MAX_FOLDER_IMAGES_PER_CLASS, folder_images  # noqa: F401 (re-exported)
from .inference import predict_images, run_batch, split_batches
from .knockout import Mode, knockout_overrides, knockout_sweep
from .measures import control_statistics, measures_and_paper
from .names import fig6_default_classes
from .preprocess import open_image
from .recorder import ExcitationRecorder, SEBlock, find_se_blocks
from .zoo import LoadedModel

MAX_UPLOADS = 64


# ---------------------------------------------------------------------------------------- inputs
@dataclass
class NamedImage:
    name: str
    image: Image.Image


def decode_uploads(files: Iterable[tuple[str, bytes]], limit: int = MAX_UPLOADS) -> tuple[list[NamedImage], list[str]]:
    """Decode uploaded files; return the good images and one error line per bad file (the rest still work)."""
    good: list[NamedImage] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, (name, data) in enumerate(files):
        label = os.path.basename(str(name or f"upload {i + 1}")) or f"upload {i + 1}"
        if len(good) >= limit:
            errors.append(f"{label}: skipped, at most {limit} images are analysed at once")
            continue
        try:
            img = open_image(data, name=label)
        except ImageError as e:
            errors.append(str(e))
            continue
        n = seen.get(label, 0)
        seen[label] = n + 1
        good.append(NamedImage(label if n == 0 else f"{label} ({n + 1})", img))
    return good, errors


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def sample_photos() -> "OrderedDict[str, bytes]":
    """Return real photos that ship inside scikit-image and scikit-learn (for ImageNet models), as bytes."""
    out: "OrderedDict[str, bytes]" = OrderedDict()
    try:
        from skimage import data as skdata
        for fn, label in (("chelsea", "chelsea (cat)"), ("coffee", "coffee (cup)"), ("rocket", "rocket"),
                          ("astronaut", "astronaut")):
            try:
                out[label] = _png(Image.fromarray(getattr(skdata, fn)()).convert("RGB"))
            except Exception:  # a stripped-down scikit-image may lack a file; skip that photo
                pass
    except ImportError:
        pass
    try:
        import sklearn.datasets
        folder = Path(sklearn.datasets.__file__).parent / "images"
        for fn, label in (("china.jpg", "china (temple)"), ("flower.jpg", "flower")):
            if (folder / fn).is_file():
                out[label] = (folder / fn).read_bytes()
    except ImportError:
        pass
    return out


def sample_images(loaded: LoadedModel, per_class: int = 1) -> "OrderedDict[str, bytes]":
    """Return sample images fitting the model: reference-set garments for Fashion-MNIST models, real photos
    from scikit-image / scikit-learn for ImageNet models.

    The garments are the centred 28 px originals for every Fashion-MNIST model, as a user would upload a
    product photo: an in-context model's preprocessing puts them in the middle of its canvas, one of the
    scenes it was trained on (a 36 px in-context sample would be shrunk into a black frame instead)."""
    if loaded.dataset != "fashion-mnist":
        return sample_photos()
    try:
        ref = load_reference_set(variant="centred")
    except DatasetError:
        return OrderedDict()
    out: "OrderedDict[str, bytes]" = OrderedDict()
    for k, cls in enumerate(ref.classes):
        for j, idx in enumerate(np.flatnonzero(ref.labels == k)[:per_class]):
            name = f"{cls} (reference #{idx})"
            out[name] = _png(Image.fromarray(ref.images[idx], "L"))
    return out


# ---------------------------------------------------------------------------------------- live inference
@dataclass
class ImageResult:
    name: str
    image: Image.Image
    topk: list[tuple[str, float]]
    excitations: "OrderedDict[str, np.ndarray]"  # block -> C-vector


def analyse_images(loaded: LoadedModel, images: Sequence[NamedImage], k: int = 5, batch_size: int = 16,
                   overrides=None) -> list[ImageResult]:
    """Return the top-k prediction and the excitations at every SE block for each image."""
    out = []
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        res = predict_images(loaded, [n.image for n in chunk], overrides=overrides)
        for j, (item, top) in enumerate(zip(chunk, res.topk(k))):
            out.append(ImageResult(item.name, item.image, top, res.excitations_of(j)))
    return out


def model_input_image(loaded: LoadedModel, image: Image.Image) -> Image.Image:
    """Return the image exactly as the model receives it (after its preprocessing), back in pixel space."""
    x = loaded.preprocess(image).float()
    pp = loaded.card.get("preprocessing") or {}
    if x.shape[0] == 1:
        mean, std = loaded.normalisation
    else:  # ImageNet models: the usual channel statistics unless the model says otherwise
        mean = torch.tensor(pp.get("mean", (0.485, 0.456, 0.406)), dtype=torch.float32)[:, None, None]
        std = torch.tensor(pp.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32)[:, None, None]
    pixels = (x * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0].numpy(), "L")
    return Image.fromarray(pixels.permute(1, 2, 0).numpy(), "RGB")


def domain_note(loaded: LoadedModel, image: Image.Image) -> str | None:
    """Return one line when `image` lies outside what the model was trained on (a colour photo sent to a grey
    Fashion-MNIST model, a tiny image sent to an ImageNet model), else None."""
    w, h = image.size
    if loaded.dataset == "fashion-mnist":
        arr = np.asarray(image.convert("RGB"), np.float32)
        colour = float(np.abs(arr - arr.mean(2, keepdims=True)).mean())
        if colour > 8:
            return ("This is a colour image; the model was trained on grey Fashion-MNIST garments, so it sees the "
                    "grey version shown as its input. The prediction is shown, but an image this far from its "
                    "training data may be misread.")
        return None
    if min(w, h) < 64:
        return (f"This image is only {w}×{h} pixels; the model was trained on ImageNet photos around 224 px and "
                "scales it up, so the prediction is shown but may mean little.")
    return None


def live_panels(result: ImageResult, blocks: Sequence[str] | None = None) -> list[F.Panel]:
    """Top-5 bars, the blocks × channels heat strip and per-block line plots for one image."""
    frame = F.excitation_frame(result.excitations, result.name)
    top = F.topk_frame(result.topk, result.name)
    key = _stem(result.name)
    panels = [F.Panel(f"{key}_top5", f"Top-5 predictions for {result.name}",
                      "The five most probable classes and their probabilities.",
                      F.topk_bar(top, f"Top-5 predictions for {result.name}"), top)]
    if len(frame):
        panels.append(F.Panel(
            f"{key}_heat_strip", f"Excitations of {result.name} at every SE block",
            "Each row is one SE block (shallow at the top, deep at the bottom), each column a channel; the colour "
            "is the excitation s the block multiplies that channel by (0 = suppressed, 1 = passed on unchanged).",
            F.heat_strip(frame, f"Excitations at every SE block: {result.name}"), frame))
        sel = frame if blocks is None else frame[frame["block"].isin(list(blocks))]
        panels.append(F.Panel(
            f"{key}_block_lines", f"Excitation over channel index per SE block for {result.name}",
            "One panel per SE block: the excitation s of every channel for this image.",
            F.block_lines(sel, blocks, title=f"Excitation s over channel index per SE block: {result.name}"), sel))
    return panels


def input_image_files(loaded: LoadedModel, name: str, image: Image.Image) -> dict[str, bytes]:
    """Return the image as given and as the model saw it (after its preprocessing), as PNG files for a teaching
    pack: {stem}_input.png and {stem}_model_input.png."""
    files = {}
    for suffix, img in (("input", image), ("model_input", model_input_image(loaded, image))):
        buf = io.BytesIO()
        img.save(buf, "PNG")
        files[f"{_stem(name)}_{suffix}.png"] = buf.getvalue()
    return files


def with_input_images(loaded: LoadedModel, result: ImageResult, panels: list[F.Panel]) -> list[F.Panel]:
    """Attach the image's input files (input_image_files) to the first of its Live panels; return the panels."""
    if panels:
        panels[0].files.update(input_image_files(loaded, result.name, result.image))
    return panels


def _stem(name: str) -> str:
    from .export import safe_filename
    base, dot, ext = name.rpartition(".")
    return safe_filename(base if dot and "." + ext.lower() in IMAGE_SUFFIXES else name, default="image")[:40]


# ---------------------------------------------------------------------------------------- compare
def compare_panels(items: Mapping[str, Mapping[str, np.ndarray]], blocks: Sequence[str] | None = None) -> list[F.Panel]:
    """Overlay, difference (first two) and similarity-by-depth panels for two or more excitation sets.

    items: label -> (block -> C-vector); a label may be an image or a class mean ("mean of class Bag").
    """
    labels = list(items)
    if len(labels) < 2:
        raise ValueError("compare needs at least two images or class means")
    frame = pd.concat([F.excitation_frame(items[l], l) for l in labels], ignore_index=True)
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
        F.Panel("compare_overlay", "Excitations overlaid per SE block",
                "One panel per SE block; one line per image (or class mean). Where the lines agree, the block "
                "treats the inputs alike.", F.block_lines(sel, blocks, title="Excitations overlaid per SE block"), sel),
        F.Panel("compare_difference", f"Difference s({a}) − s({b})",
                "Per channel, how much more (blue) or less (red) the first input is excited than the second.",
                F.difference_plot(diff, a, b, blocks), diff),
        F.Panel("compare_similarity", "Similarity of the excitations against depth",
                "Pearson correlation r of the excitation vectors at each block (for a single pair also the cosine "
                "similarity, which stays high for any two positive s vectors, so r is the one to read). Early "
                "blocks tend to respond alike to any input; deep blocks differ by class.",
                F.similarity_plot(sim, "Similarity of the excitation patterns at each depth"), sim),
    ]


# ---------------------------------------------------------------------------------------- reference statistics
@dataclass
class ReferenceStats:
    stats: ExcitationStats
    accuracy: float | None  # None when labels cannot be matched to the model's classes
    images: int
    source: str  # what the statistics were computed over, in words
    per_class_accuracy: dict | None = None


def _batches_from_pils(loaded: LoadedModel, images: Sequence[Image.Image], labels: Sequence[int],
                       batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    for i in range(0, len(images), batch_size):
        yield (torch.stack([loaded.preprocess(im) for im in images[i:i + batch_size]]),
               np.asarray(labels[i:i + batch_size], np.int64))


def reference_inputs(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200,
                     photos: Mapping[str, bytes] | None = None) -> tuple[list[str], Iterator, int, str]:
    """Return (classes, labelled batches in those classes' indices, number of images, description) of the
    reference set: a folder with one sub-folder per class, else the bundled Fashion-MNIST reference set (as the
    model was trained: split_batches), else the sample photos, each its own "class"."""
    if folder:
        classes, images, labels, _ = folder_images(folder)
        source = f"folder {folder} ({len(images)} images, {len(classes)} classes)"
    elif loaded.dataset == "fashion-mnist":
        ref = loaded.reference_set()
        return (list(ref.classes), split_batches(loaded, ref, batch_size), len(ref),
                f"the bundled Fashion-MNIST reference set ({len(ref)} test images, {len(ref.classes)} classes)")
    else:
        photos = photos if photos is not None else sample_photos()
        classes = list(photos)
        images = [open_image(b, name=n) for n, b in photos.items()]
        labels = list(range(len(images)))
        source = f"the {len(images)} sample photos (one per 'class'; name a folder for real class statistics)"
    return classes, _batches_from_pils(loaded, images, labels, batch_size), len(images), source


def reference_statistics(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200,
                         progress: Callable[[float], None] | None = None,
                         photos: Mapping[str, bytes] | None = None) -> ReferenceStats:
    """Per-class excitation statistics (and accuracy where labels match) over a reference set.

    Fashion-MNIST models: the bundled reference set (100 test images per class). A `folder` with one
    sub-folder per class works for any model. ImageNet models without a folder: the sample photos, each
    its own "class" (a stand-in; name a folder for real class statistics). A `folder` ending in .json is a
    file `sevis stats` wrote: read, not recomputed.
    """
    if folder and str(folder).lower().endswith(".json"):
        from .stats import reference_from_stats_file
        return reference_from_stats_file(loaded, folder)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    classes, batches, total, source = reference_inputs(loaded, folder, batch_size, photos)
    stats = ExcitationStats(classes, OrderedDict((b.name, b.channels) for b in blocks))
    # Accuracy is only meaningful when the reference labels are the model's classes.
    class_map = [loaded.classes.index(c) if c in loaded.classes else -1 for c in classes]
    matched = all(i >= 0 for i in class_map)
    correct = np.zeros(len(classes))
    seen = np.zeros(len(classes))
    done = 0
    with torch.inference_mode(), ExcitationRecorder(loaded.model) as rec:
        for x, y in batches:
            pred = loaded.model(x).argmax(1).cpu().numpy()
            stats.update(rec.pop(), y)
            np.add.at(seen, y, 1)
            if matched:
                np.add.at(correct, y, pred == np.asarray(class_map)[y])
            done += len(y)
            if progress:
                progress(min(done / max(total, 1), 1.0))
    acc = float(correct.sum() / max(seen.sum(), 1)) if matched else None
    per_class = {c: float(correct[k] / seen[k]) for k, c in enumerate(classes) if seen[k]} if matched else None
    return ReferenceStats(stats, acc, int(seen.sum()), source, per_class)


MIN_IMAGES_PER_CLASS = 5  # below this, per-class means and every index built on them mean nothing


def too_few_images(stats: ExcitationStats, minimum: int = MIN_IMAGES_PER_CLASS) -> str | None:
    """Return why per-class statistics cannot be shown (a class with fewer than `minimum` images), or None."""
    counts = stats.count
    if len(counts) >= 2 and counts.min() >= minimum:
        return None
    few = [f"{c} ({int(n)})" for c, n in zip(stats.classes, counts) if n < minimum]
    what = ("only one class" if len(counts) < 2 else
            f"{len(few)} of {len(counts)} classes have fewer than {minimum} images: {', '.join(few[:4])}"
            + ("…" if len(few) > 4 else ""))
    return (f"Per-class statistics need at least two classes with {minimum} or more images each; here {what}. "
            "Name a folder with one sub-folder per class in the sidebar (for ImageNet models, e.g. validation "
            "images arranged by synset: sub-folders named n01443537 … are read as their class names).")


def reference_control(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200) -> ExcitationStats | None:
    """Return the untrained control's statistics over the same reference set as reference_statistics (same
    architecture, seeded random weights, BatchNorm recalibrated on those images); None for a `sevis stats` file."""
    if folder and str(folder).lower().endswith(".json"):
        return None
    classes, batches, _, _ = reference_inputs(loaded, folder, batch_size)
    return control_statistics(loaded, list(batches), classes=classes)


def class_depth_measures(ref: ReferenceStats, control: ExcitationStats | None, blocks: Sequence[SEBlock],
                         knockout_identity: pd.DataFrame | None = None,
                         knockout_mean: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (the depth measures per block, the paper-vs-model table) over a reference set."""
    return measures_and_paper(ref.stats, control, blocks, knockout_identity, knockout_mean)


def reference_batches(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200):
    """Return (a re-iterable list of labelled batches in the model's class indices, description) for the sweep.

    Raises DatasetError when no labelled set matching the model's classes is available.
    """
    if folder:
        classes, images, labels, _ = folder_images(folder)
        missing = [c for c in classes if c not in loaded.classes]
        if missing:
            raise DatasetError(f"folder classes {', '.join(missing[:5])} are not classes of this model, so accuracy "
                               "cannot be measured; name the sub-folders after the model's classes")
        labels = [loaded.classes.index(classes[k]) for k in labels]
        return list(_batches_from_pils(loaded, images, labels, batch_size)), f"folder {folder}"
    if loaded.dataset == "fashion-mnist":
        ref = loaded.reference_set()
        return list(split_batches(loaded, ref, batch_size)), f"the bundled reference set ({len(ref)} images)"
    raise DatasetError("reference-set accuracy needs labelled images: this model has no bundled reference set; "
                       "name a folder with one sub-folder per class (named after the model's classes)")


def class_mean_excitations(stats: ExcitationStats, cls: str) -> "OrderedDict[str, np.ndarray]":
    """Return the mean excitation of class `cls` ("all" for every image) at every block."""
    if cls == "all":
        return OrderedDict((b, stats.overall_mean(b)) for b in stats.blocks)
    k = stats.classes.index(cls)
    return OrderedDict((b, stats.mean(b)[k]) for b in stats.blocks)


def paper_blocks(blocks: Sequence[SEBlock], max_blocks: int = 8) -> list[str]:
    """Return the blocks the paper plots: the last block of each stage but the last, and all of the last
    stage (SE_2_3, SE_3_4, SE_4_6, SE_5_1..3 for SE-ResNet-50); ~evenly spaced blocks for other models."""
    if not blocks:
        return []
    stages = [b.stage for b in blocks]
    if all(s is not None for s in stages) and blocks[0].name.startswith("SE_"):
        last_stage = max(stages)
        picked = [b.name for i, b in enumerate(blocks)
                  if (b.stage == last_stage) or (i + 1 < len(blocks) and blocks[i + 1].stage != b.stage)]
        if len(picked) <= max_blocks:
            return picked
    idx = np.unique(np.linspace(0, len(blocks) - 1, min(max_blocks, len(blocks))).round().astype(int))
    return [blocks[i].name for i in idx]


def class_depth_panels(ref: ReferenceStats, classes: Sequence[str], blocks: Sequence[str], channels: str = "uniform",
                       n: int | None = 50, seed: int = 0, fig7_class: str | None = None,
                       measures: pd.DataFrame | None = None, paper: pd.DataFrame | None = None) -> list[F.Panel]:
    """The paper's Fig. 6 (per-class means), Fig. 7 (mean ± std in one class), the depth profile (measures from
    class_depth_measures; without them, the trained model's alone) and the paper-vs-model table."""
    return (class_figure_panels(ref, classes, blocks, channels, n, seed, fig7_class)
            + depth_profile_panels(ref, measures, paper))


def class_figure_panels(ref: ReferenceStats, classes: Sequence[str], blocks: Sequence[str], channels: str = "uniform",
                        n: int | None = 50, seed: int = 0, fig7_class: str | None = None) -> list[F.Panel]:
    """The paper's Fig. 6 (per-class means) and Fig. 7 (mean ± std within one class)."""
    stats = ref.stats
    frame = F.class_depth_frame(stats, classes, blocks, channels, n, seed)
    how = {"all": "all channels", "first": f"the first {n} channels",
           "uniform": f"{n} channels sampled uniformly (seed {seed})"}.get(channels, channels)
    panels = [F.Panel(
        "fig6_class_means", "Mean excitation per class at each SE block (Fig. 6)",
        f"Over {ref.source}; {how}. Each coloured line is the mean excitation s of one class, the dashed black "
        "line the mean over all images. Where the lines coincide the block is class-agnostic; where they part "
        "it is class-specific. The paper finds early blocks class-agnostic and late ones class-specific, with "
        "some late blocks saturated near 1.", F.fig6(frame), frame)]
    cls7 = fig7_class or (classes[0] if classes else None)
    if cls7 is not None:
        f7 = F.class_depth_frame(stats, [cls7], blocks, channels, n, seed)
        f7 = f7[f7["class"] == cls7].reset_index(drop=True)
        panels.append(F.Panel(
            "fig7_within_class", f"Mean ± std of the excitation within one class: {cls7} (Fig. 7)",
            f"Over the {cls7} images of {ref.source}; the band is ± 1 standard deviation across those images: "
            "even within one class, inputs are excited differently.", F.fig7(f7, cls7), f7))
    return panels


def depth_profile_panels(ref: ReferenceStats, measures: pd.DataFrame | None = None,
                         paper: pd.DataFrame | None = None) -> list[F.Panel]:
    """The depth profile (the measures against depth, the untrained control dashed when measured) and the
    paper-vs-model table (when given)."""
    panels: list[F.Panel] = []
    if measures is None:
        measures = depth_measures(ref.stats)
    control_words = ("; the dashed line is the untrained control (same architecture, seeded random weights, "
                     "BatchNorm recalibrated on the same images), what the data and the architecture give "
                     "without any learning" if "control_class_specificity" in measures else "")
    panels.append(F.Panel(
        "depth_profile", "How the excitations depend on the class, from shallow to deep blocks",
        f"Over {ref.source}. Four measures per SE block, trained model solid{control_words}. Class specificity: "
        "the share of the variance of s between class means (0 = every class gets the same s, 1 = s depends only "
        "on the class). Decorrelation: 1 − the mean Pearson r between class-mean profiles (0 = one pattern for "
        "every class, up to scale). Between-class spread: how far class means lie apart, in units of s. "
        "Saturation: the share of channels whose mean s exceeds 0.9 (the block passes them nearly unchanged). "
        "The paper: class-agnostic early, class-specific late, SE_5_2 saturated.",
        F.depth_profile(measures), measures))
    if paper is not None and len(paper):
        panels.append(F.Panel(
            "paper_vs_model", "The paper's findings (Section 7.2) in this model",
            f"Each finding of the paper's Section 7.2, checked on {ref.source}: the numbers are measured here, "
            "the verdict follows the criterion in its row.",
            F.table_figure(paper[["finding", "paper", "blocks", "this_model", "shows"]],
                           "The paper's findings in this model"), paper))
    return panels


# ---------------------------------------------------------------------------------------- knock-out
@dataclass
class KnockoutResult:
    before: list[tuple[str, float]]
    after: list[tuple[str, float]]
    panel: F.Panel

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
    panel = F.Panel(_stem(image.name) + "_knockout", f"Prediction for {image.name} with {what} knocked out",
                    f"Class probabilities before (blue) and after (red) replacing s of {what} by "
                    f"{'1 (identity)' if mode == 'identity' else 'the reference-set mean'}.",
                    F.prediction_change(fb, fa, f"Prediction before and after knocking out {what}"),
                    pd.concat([fb, fa], ignore_index=True))
    return KnockoutResult(before, after, panel)


def knockout_sweep_panel(loaded: LoadedModel, batches, mode: Mode = "identity",
                         means: Mapping[str, np.ndarray] | None = None, source: str = "the reference set",
                         progress: Callable[[float], None] | None = None, total: int | None = None) -> F.Panel:
    """Reference-set accuracy with each SE block knocked out alone (the paper: late blocks cost little)."""
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress and total:
            progress(min(done[0] / total, 1.0))

    sweep = knockout_sweep(loaded, batches, mode=mode, means=means, progress=step)
    return F.Panel("knockout_sweep", "Accuracy with each SE block knocked out",
                   f"Accuracy over {source} when one SE block at a time has its s replaced by "
                   f"{'1 (identity)' if mode == 'identity' else 'its reference-set mean'}; bars show the change "
                   "from the intact model in percentage points. The paper observes that late SE blocks (close to "
                   "identity) can be dropped at little cost.", F.knockout_bars(sweep, mode), sweep)


# ---------------------------------------------------------------------------------------- architecture
def _resnet_config(loaded: LoadedModel):
    from .resnet import ResNetConfig
    arch = (loaded.card or {}).get("architecture")
    return ResNetConfig.from_dict(arch) if arch else None


def architecture_panels(loaded: LoadedModel, ratios: Sequence[int] = (2, 4, 8, 16, 32, 64)) -> list[F.Panel]:
    """SE block table, SE's extra parameters per stage (real and the paper's estimate), and against r."""
    from . import params as P
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    table = F.blocks_frame(blocks)
    cfg = _resnet_config(loaded)
    caption = ("Every SE block in depth order: its stage, the channels C it rescales, its squeeze width "
               "C/r (hidden units) and its parameters.")
    if cfg is not None and blocks:
        table, caption = _rounded_squeeze_table(table, cfg)
    panels = [F.Panel("se_blocks", f"SE blocks of {loaded.name}", caption,
                      F.table_figure(table, f"SE blocks of {loaded.name}"), table)]
    if not blocks:
        return panels
    real = P.se_parameters(loaded.model)
    if cfg is not None:
        estimate = P.paper_estimate(cfg)
    else:  # other models: (2/r)·C² per block with the block's own r = C / squeeze width, i.e. 2·C·(C/r)
        est = pd.DataFrame([{"stage": b.stage, "estimate": 2.0 * b.channels * (b.squeeze_channels or 0)} for b in blocks])
        estimate = est.groupby("stage", sort=False, dropna=False)["estimate"].sum().reset_index()
        estimate = pd.concat([estimate, pd.DataFrame([{"stage": P.TOTAL, "estimate": estimate["estimate"].sum()}])],
                             ignore_index=True)
    per_stage = real.merge(estimate[["stage", "estimate"]], on="stage", how="left") if len(real) else real
    per_stage["stage"] = per_stage["stage"].astype(str)  # "2".."5" and "total": one type for tables/Arrow
    panels.append(F.Panel(
        "se_params_per_stage", "SE's extra parameters per stage",
        "Parameters inside the SE blocks of each stage (real count, with biases) beside the paper's estimate "
        "(2/r)·N_s·C_s² (biases ignored); the total row sums them, and its C is the widest stage's. Most of SE's "
        "cost sits in the last, widest stage.",
        F.se_params_by_stage(real, estimate), per_stage))
    if cfg is not None:
        sweep = P.reduction_sweep(cfg, ratios)
        panels.append(F.Panel(
            "se_params_vs_r", "SE's extra parameters against the reduction ratio r",
            f"How SE's parameter cost changes with the reduction ratio r for this architecture (this model uses "
            f"r = {cfg.reduction}): the exact count and the paper's estimate (2/r)·Σ N_s·C_s². "
            + _floor_words(cfg, sweep), F.params_vs_r(sweep), sweep))
    return panels


def _rounding_words(cfg) -> str:
    """Return how the model rounds C/r to its hidden width, in words ("a multiple of 8" / "a whole channel")."""
    return f"a multiple of {cfg.se_divisor}" if cfg.se_divisor > 1 else "a whole channel"


def _rounded_squeeze_table(table: pd.DataFrame, cfg) -> tuple[pd.DataFrame, str]:
    """Return the block table with C/r exact beside the rounded squeeze width, and a caption saying how the model
    rounds (from its config: the hidden width is C/r rounded to a multiple of se_divisor, never below it)."""
    from . import params as P
    table = table.copy()
    rounded = f"squeeze width (rounded to {_rounding_words(cfg)})"
    table.insert(table.columns.get_loc("squeeze width"), "C/r exact", table["channels"] / cfg.reduction)
    table = table.rename(columns={"squeeze width": rounded})
    floor = P.squeeze_floor(cfg)
    caption = (f"Every SE block in depth order: its stage, the channels C it rescales, C/r exact (r = {cfg.reduction}), "
               f"the squeeze width the model uses (hidden units: C/r rounded to {_rounding_words(cfg)}, never below "
               f"{floor}) and its parameters.")
    changed = table[table["C/r exact"] != table[rounded]]
    if len(changed):
        row = changed.iloc[0]
        caption += (f" So C = {row['channels']} gives C/r = {row['C/r exact']:g}, rounded to {row[rounded]}; "
                    f"{len(changed)} of {len(table)} blocks are rounded.")
    else:
        caption += " Here every C/r is already such a width, so nothing is rounded."
    return table, caption


def _floor_words(cfg, sweep: pd.DataFrame) -> str:
    """Return why the real count stops following the estimate at large r, computed from the config: the hidden
    width cannot fall below its minimum (se_divisor, at least one channel)."""
    from dataclasses import replace

    from . import params as P
    floor, start = P.squeeze_floor(cfg), P.floor_ratio(cfg, sweep["r"])
    unit = "channel" if floor == 1 else "channels"
    why = (f"the hidden width is C/r rounded to {_rounding_words(cfg)}, and never below {floor} {unit}")
    if start is not None:
        flat = int(sweep.loc[sweep["r"] == start, "se_parameters"].iloc[0])
        return (f"From r = {start} on, every SE block's hidden width is at its minimum ({why}), so the real count "
                f"stays at {flat:,} while the estimate keeps halving.")
    widest = int(sweep["r"].max())
    at_floor = P.squeeze_widths(replace(cfg, reduction=widest))["at_floor"]
    if at_floor.any():
        return (f"At r = {widest}, {int(at_floor.sum())} of {len(at_floor)} SE blocks are at their minimum hidden "
                f"width ({why}), so the real count falls more slowly than the estimate there.")
    return "Halving r roughly doubles the cost."


def model_summary(loaded: LoadedModel) -> dict:
    """Return headline facts about a model for the sidebar."""
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    return {"name": loaded.name, "source": loaded.source, "classes": len(loaded.classes),
            "parameters": loaded.num_parameters, "se_blocks": len(blocks),
            "se_parameters": sum(b.parameters for b in blocks), "dataset": loaded.dataset,
            "test_accuracy": (loaded.card or {}).get("test_accuracy")}


# ---------------------------------------------------------------------------------------- headless (sevis export)
EXPORT_VIEWS = ("class-depth", "fig6", "fig7", "depth", "live", "compare", "knockout", "architecture", "block",
                "channel", "ablations")  # ablations: sevis.ablation_lab.lab_panels (it compares models, not one)


def export_view_panels(loaded: LoadedModel, view: str, images: Sequence[NamedImage] = (),
                       classes: Sequence[str] | None = None, blocks: Sequence[str] | None = None,
                       channels: str = "uniform", n: int | None = 50, seed: int = 0, fig7_class: str | None = None,
                       folder: str | None = None, knockout_blocks: Sequence[str] | None = None, mode: Mode = "identity",
                       progress: Callable[[float], None] | None = None, channel: int | None = None) -> list[F.Panel]:
    """Return the panels of one view, computed without the app (for `sevis export`).

    class-depth: Fig. 6, Fig. 7 and the depth profile (fig6 / fig7 / depth: just that one); live: per image;
    compare: the images against each other; knockout: the images' predictions with `knockout_blocks` knocked
    out and the reference-set sweep; architecture: block table and parameter views; block: Inside a block
    for one image and one block (`blocks`); channel: the Channel view of `channel` in one block, with an
    optional image.
    """
    if view not in EXPORT_VIEWS:
        raise SevisError(f"unknown view {view!r}; choose one of {', '.join(EXPORT_VIEWS)}")
    if view == "ablations":
        from .ablation_lab import lab_panels
        from .names import DEFAULT_ABLATION_PAIR
        return lab_panels(*DEFAULT_ABLATION_PAIR, list(classes) if classes else None)[0]
    se_blocks = [b for b, _ in find_se_blocks(loaded.model)]
    names = [b.name for b in se_blocks]
    if view in ("block", "channel") and (not blocks or len(blocks) != 1):
        raise SevisError(f"the {view} view needs exactly one block, --block NAME (put image files before "
                         "--block, or after --channel)")
    if blocks:
        unknown = [b for b in blocks if b not in names]
        if unknown:
            raise SevisError(f"no SE block named {', '.join(unknown)} in {loaded.name}; blocks: {', '.join(names)}")
    if view == "architecture":
        return architecture_panels(loaded)
    if not se_blocks:
        raise SevisError(f"{loaded.name} has no SE blocks, so there are no excitations to plot")
    if view in ("live", "compare") and not images:
        raise SevisError(f"the {view} view needs image files")
    if view in ("block", "channel"):
        return _block_or_channel_panels(loaded, view, images, blocks, channel, folder, progress)
    if view == "live":
        return [p for r in analyse_images(loaded, images)
                for p in with_input_images(loaded, r, live_panels(r, blocks))]
    if view == "compare":
        results = analyse_images(loaded, images)
        if len(results) < 2:
            raise SevisError("compare needs at least two images")
        return compare_panels(OrderedDict((r.name, r.excitations) for r in results), blocks)
    if view == "knockout":
        ko = list(knockout_blocks or blocks or [b.name for b in se_blocks if b.stage == se_blocks[-1].stage])
        means = None
        if mode == "mean":
            means = class_mean_excitations(reference_statistics(loaded, folder).stats, "all")
        panels = [knockout_image(loaded, im, ko, mode, means).panel for im in images]
        batches, source = reference_batches(loaded, folder)
        panels.append(knockout_sweep_panel(loaded, batches, mode, means, source, progress,
                                           total=sum(len(y) for _, y in batches)))
        return panels
    ref = reference_statistics(loaded, folder, progress=progress)
    classes = list(classes) if classes else fig6_default_classes(ref.stats.classes)
    unknown = [c for c in classes if c not in ref.stats.classes]
    if unknown:
        raise SevisError(f"unknown class(es) {', '.join(unknown)}; classes: {', '.join(ref.stats.classes)}")
    if fig7_class and fig7_class not in ref.stats.classes:
        raise SevisError(f"unknown class {fig7_class!r} for Fig. 7; classes: {', '.join(ref.stats.classes)}")
    panels = class_depth_panels(ref, classes, list(blocks) if blocks else paper_blocks(se_blocks), channels, n,
                                seed, fig7_class)
    keep = {"fig6": "fig6_class_means", "fig7": "fig7_within_class", "depth": "depth_profile"}.get(view)
    return [p for p in panels if keep is None or p.key == keep]


def _block_or_channel_panels(loaded: LoadedModel, view: str, images: Sequence[NamedImage],
                             blocks: Sequence[str] | None, channel: int | None, folder: str | None,
                             progress: Callable[[float], None] | None) -> list[F.Panel]:
    """Return the Inside a block (view "block") or Channel (view "channel") panels for `sevis export`."""
    from .channel import channel_panels, reference_excitations
    from .inside import anatomy_panels, block_anatomy
    if view == "block":
        if len(images) != 1:
            raise SevisError("the block view needs exactly one image file")
        if channel is not None:
            raise SevisError("--channel belongs to the channel view (sevis export channel --block B --channel C)")
        return anatomy_panels(block_anatomy(loaded, images[0], blocks[0]))
    if channel is None:
        raise SevisError("the channel view needs --channel N")
    if len(images) > 1:
        raise SevisError("the channel view takes at most one image file")
    ref = reference_excitations(loaded, folder, progress=progress)
    return channel_panels(loaded, ref, blocks[0], channel, images[0] if images else None).panels


# ---------------------------------------------------------------------------------------- takeaways
# One sentence per view, computed from what the view shows (never hard-coded numbers), for its end.
def live_takeaway(result: ImageResult) -> str | None:
    """Return which block spreads s the most and which the least for this image, and the prediction."""
    if not result.excitations:
        return None
    spread = {b: float(np.std(s)) for b, s in result.excitations.items()}
    hi, lo = max(spread, key=spread.get), min(spread, key=spread.get)
    muted = {b: int((np.asarray(s) < 0.1).sum()) for b, s in result.excitations.items()}
    return (f"{result.name} is predicted {result.topk[0][0]} ({result.topk[0][1]:.1%}). Its excitations vary most "
            f"across channels at {hi} (std {spread[hi]:.2f}) and least at {lo} (std {spread[lo]:.2f}); "
            f"{muted[hi]} of {len(result.excitations[hi])} channels at {hi} are nearly switched off (s < 0.1).")


def compare_takeaway(similarity: pd.DataFrame, measure: str = "pearson") -> str | None:
    """Return where the first pair is most and least alike (frame from similarity_by_depth / compare_panels)."""
    part = similarity[similarity["pair"] == similarity["pair"].iloc[0]] if "pair" in similarity else similarity
    part = part.dropna(subset=[measure])
    if part.empty:
        return None
    hi, lo = part.loc[part[measure].idxmax()], part.loc[part[measure].idxmin()]
    name = {"pearson": "r", "cosine": "cosine"}.get(measure, measure)
    pair = f"{part['pair'].iloc[0]}: " if "pair" in part else ""
    return (f"{pair}the excitation patterns are most alike at {hi['block']} ({name} = {hi[measure]:.2f}) and least "
            f"alike at {lo['block']} ({name} = {lo[measure]:.2f}).")


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


def knockout_takeaway(sweep: pd.DataFrame, blocks: Sequence[SEBlock]) -> str | None:
    """Return the costliest block to knock out and the largest cost within the last stage (sweep frame
    from knockout_sweep), e.g. "Knocking out SE_2_1 costs 11.7 points; each block of the last stage costs
    under 1"."""
    rows = sweep[sweep["block"] != "none"]
    if rows.empty:
        return None
    cost = -100.0 * rows.set_index("block")["change"]
    worst = cost.idxmax()
    text = (f"Knocking out {worst} costs {cost[worst]:.1f} points of accuracy" if cost[worst] > 0 else
            f"No single block costs accuracy when knocked out (the largest change is {-cost.min():+.1f} points)")
    stage = blocks[-1].stage if blocks else None
    last = [b.name for b in blocks if b.stage == stage and b.name in cost.index] if stage is not None else []
    if last and worst not in last and len(last) < len(cost):
        bound = max(float(cost[last].max()), 0.0)
        text += (f"; each block of the last stage costs at most {bound:.1f}" if len(last) > 1
                 else f"; the last stage's {last[0]} costs {bound:.1f}")
    return text + "."


def knockout_image_takeaway(result: KnockoutResult, blocks: Sequence[str]) -> str:
    """Return what knocking `blocks` out did to this image's top class."""
    (c, p), (c2, p2) = result.before[0], result.after[0]
    after_same = next((q for k, q in result.after if k == c), None)
    what = ", ".join(blocks) if blocks else "no block"
    if result.changed:
        return f"Knocking out {what} turns {c} ({p:.1%}) into {c2} ({p2:.1%})."
    return (f"With {what} knocked out the image is still {c}; its probability goes from {p:.1%} to "
            f"{(after_same if after_same is not None else p2):.1%}.")


def architecture_takeaway(loaded: LoadedModel) -> str | None:
    """Return SE's parameter cost and where most of it sits."""
    from . import params as P
    facts = model_summary(loaded)
    if not facts["se_blocks"]:
        return None
    per_stage = P.se_parameters(loaded.model)
    rows = per_stage[per_stage["stage"].astype(str) != "total"]
    top = rows.loc[rows["parameters"].idxmax()]
    base = facts["parameters"] - facts["se_parameters"]
    return (f"SE adds {facts['se_parameters']:,} parameters ({facts['se_parameters'] / max(base, 1):.1%} of the plain "
            f"model) in {facts['se_blocks']} blocks; stage {top['stage']} holds {top['share']:.0%} of them.")
