"""The reference set every view shares: its labelled batches (bundled set, a folder, or the sample photos), per-class
excitation statistics (ReferenceStats), the untrained control over it, and which blocks the paper plots.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from sevis.analysis.images import sample_photos
from sevis.analysis.inference import split_batches
from sevis.analysis.measures import control_statistics_seeds
from sevis.analysis.precomputed import load_precomputed
from sevis.analysis.stats import read_stats_file
from sevis.core.recorder import ExcitationRecorder, SEBlock, find_se_blocks
from sevis.core.statistics import ExcitationStats
from sevis.data.folders import folder_images
from sevis.data.preprocess import open_image
from sevis.errors import DatasetError
from sevis.models.zoo import LoadedModel


@dataclass
class ReferenceStats:
    stats: ExcitationStats
    accuracy: float | None  # None when labels cannot be matched to the model's classes
    images: int
    source: str  # what the statistics were computed over, in words
    per_class_accuracy: dict | None = None
    note: str | None = None  # e.g. why a shipped model's precomputed statistics were not used


def _batches_from_pils(loaded: LoadedModel, images: Sequence[Image.Image], labels: Sequence[int],
                       batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    for i in range(0, len(images), batch_size):
        yield (torch.stack([loaded.preprocess(im) for im in images[i:i + batch_size]]),
               np.asarray(labels[i:i + batch_size], np.int64))


KEEP_BATCHES_BYTES = 256 * 2**20  # a folder's preprocessed batches are kept between passes up to this size


class FolderBatches:
    """A folder's labelled batches for views that pass over them several times (the knock-out sweep, the
    control's seeds): after the first full pass they are kept when they fit KEEP_BATCHES_BYTES (a small model's
    inputs), otherwise decoded and preprocessed again on every pass, a batch at a time (224 px inputs of a large
    folder), so the folder is never held in memory whole."""

    def __init__(self, loaded: LoadedModel, images: Sequence[Image.Image], labels: Sequence[int],
                 batch_size: int, keep_bytes: int = KEEP_BATCHES_BYTES) -> None:
        self.loaded, self.images, self.labels, self.batch_size = loaded, images, list(labels), batch_size
        self.keep_bytes = keep_bytes
        self._kept: list | None = None

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        if self._kept is not None:
            yield from self._kept
            return
        kept: list | None = []
        size = 0
        for x, y in _batches_from_pils(self.loaded, self.images, self.labels, self.batch_size):
            size += x.numel() * x.element_size()
            kept = kept if kept is not None and size <= self.keep_bytes else None
            if kept is not None:
                kept.append((x, y))
            yield x, y
        self._kept = kept  # only a pass that ran to the end gets here


def reference_inputs(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200,
                     photos: Mapping[str, bytes] | None = None) -> tuple[list[str], Iterator, int, str]:
    """Return (classes, labelled batches in those classes' indices, number of images, description) of the
    reference set: a folder with one sub-folder per class, else the bundled Fashion-MNIST reference set (as the
    model was trained: split_batches), else the sample photos, each its own "class"."""
    if folder:
        classes, images, labels, _ = folder_images(folder)
        source = f"folder {folder} ({len(images)} images, {len(classes)} classes)"
        return classes, FolderBatches(loaded, images, labels, batch_size), len(images), source
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
                         photos: Mapping[str, bytes] | None = None, use_precomputed: bool = True) -> ReferenceStats:
    """Per-class excitation statistics (and accuracy where labels match) over a reference set.

    Fashion-MNIST models: the bundled reference set (100 test images per class). A `folder` with one
    sub-folder per class works for any model. ImageNet models without a folder: the sample photos, each
    its own "class" (a stand-in; name a folder for real class statistics). A `folder` ending in .json is a
    file `sevis stats` wrote: read, not recomputed. Shipped models read their bundled-set statistics from their
    current precomputed file (sevis.analysis.precomputed); a stale one is recomputed, with a `note` saying so.
    """
    if folder and str(folder).lower().endswith(".json"):
        return reference_from_stats_file(loaded, folder)
    note = None
    if use_precomputed and not folder and photos is None:
        pre, note = load_precomputed(loaded)  # shipped models: computed once, beside the model card
        if pre is not None:
            return ReferenceStats(pre.stats, pre.accuracy, pre.images, pre.source, pre.per_class_accuracy)
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
    return ReferenceStats(stats, acc, int(seen.sum()), source, per_class, note)


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


def reference_control(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200,
                      use_precomputed: bool = True) -> list | None:
    """Return the untrained control's statistics over the same reference set as reference_statistics, one per
    seed of CONTROL_SEEDS (same architecture, seeded random weights, BatchNorm recalibrated on those images);
    None for a `sevis stats` file. A shipped model's current precomputed file gives each seed's per-block summary
    instead (sevis.analysis.precomputed.StoredSummary)."""
    if folder and str(folder).lower().endswith(".json"):
        return None
    if use_precomputed and not folder:
        pre, _ = load_precomputed(loaded)
        if pre is not None:
            return list(pre.control)  # per-seed summaries: all the depth measures read
    classes, batches, _, _ = reference_inputs(loaded, folder, batch_size)
    return control_statistics_seeds(loaded, batches if isinstance(batches, FolderBatches) else list(batches),
                                    classes=classes)


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
        return FolderBatches(loaded, images, labels, batch_size), f"folder {folder}"
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


def reference_from_stats_file(loaded: LoadedModel, path: str | os.PathLike):
    """Return a ReferenceStats read from a `sevis stats` file, checked against `loaded`'s SE blocks."""

    stats, data = read_stats_file(path)
    mine = OrderedDict((b.name, b.channels) for b, _ in find_se_blocks(loaded.model))
    theirs = OrderedDict((name, int(b["channels"])) for name, b in data["statistics"]["blocks"].items())
    if mine != theirs:
        raise DatasetError(f"{Path(path).name} was computed with {data.get('model')}, whose SE blocks differ from "
                           f"{loaded.spec}'s; run `sevis stats` with --model {loaded.spec}")
    source = (f"{Path(path).name} (`sevis stats` over {data.get('folder')}: {data.get('images')} images, "
              f"{len(stats.classes)} classes)")
    return ReferenceStats(stats, data.get("accuracy"), int(data.get("images", 0)), source,
                          data.get("per_class_accuracy"))


def reference_sweep(loaded: LoadedModel, folder: str | None = None, mode: str = "identity",
                    stats: ExcitationStats | None = None,
                    progress: Callable[[float], None] | None = None) -> tuple[pd.DataFrame, str]:
    """Return (the knock-out sweep over the reference set: accuracy with each SE block knocked out alone, its source
    in words). A shipped model's current precomputed file gives it at once; otherwise one pass per SE block. Mode
    "mean" replaces s by the reference-set mean over all images (from `stats` when given)."""
    from sevis.analysis.knockout import knockout_sweep
    if not folder and not loaded.random_weights:
        pre, _ = load_precomputed(loaded)
        if pre is not None and mode in pre.sweeps:
            return pre.sweeps[mode], pre.sweep_source
    means = None
    if mode == "mean":
        means = class_mean_excitations(stats if stats is not None else reference_statistics(loaded, folder).stats,
                                       "all")
    batches, source = reference_batches(loaded, folder)
    total, done = sum(len(y) for _, y in batches), [0]

    def step(n: int) -> None:
        done[0] += n
        if progress and total:
            progress(min(done[0] / total, 1.0))

    return knockout_sweep(loaded, batches, mode=mode, means=means, progress=step), source
