"""Image → preprocess → model + recorder → predictions and excitations (one call per batch)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from sevis.core.recorder import ExcitationRecorder, Override, SEBlock, find_se_blocks
from sevis.data.fashion_mnist import Split
from sevis.models.zoo import LoadedModel

if TYPE_CHECKING:  # sevis.core.statistics imports pandas: loaded only where statistics are collected
    from sevis.core.statistics import ExcitationStats


@dataclass
class InferenceResult:
    """Class probabilities and excitations for a batch of N images."""

    probs: torch.Tensor  # N×K
    excitations: "OrderedDict[str, torch.Tensor]"  # block -> N×C
    blocks: list[SEBlock]
    classes: list[str]

    def topk(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """Return, per image, the k most probable (class, probability) pairs."""
        k = min(k, self.probs.shape[1])
        p, i = self.probs.topk(k, dim=1)
        return [[(self.classes[j], float(v)) for v, j in zip(pr, ix)] for pr, ix in zip(p.tolist(), i.tolist())]

    def excitations_of(self, index: int) -> "OrderedDict[str, np.ndarray]":
        """Return image `index`'s excitations: block -> C-vector."""
        return OrderedDict((name, s[index].numpy()) for name, s in self.excitations.items())


@torch.inference_mode()
def run_batch(loaded: LoadedModel, batch: torch.Tensor,
              overrides: Mapping[str, Override] | None = None) -> InferenceResult:
    """Run `batch` (already preprocessed) through the model with a recorder; return probabilities and s."""
    with ExcitationRecorder(loaded.model, overrides=overrides) as rec:
        logits = loaded.model(batch)
    return InferenceResult(logits.float().softmax(1).cpu(), rec.excitations, rec.blocks, loaded.classes)


def predict_images(loaded: LoadedModel, images: Sequence[Image.Image],
                   overrides: Mapping[str, Override] | None = None) -> InferenceResult:
    """Return predictions and excitations for RGB PIL images, preprocessed as the model was trained."""
    batch = torch.stack([loaded.preprocess(img) for img in images])
    return run_batch(loaded, batch, overrides)


def split_batches(loaded: LoadedModel, split: Split,
                  batch_size: int = 250) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield (N×1×H×W batch, labels) over a Fashion-MNIST split, normalised as the model was trained.

    Dataset images are already what the model was trained on, so they skip the upload path (no inversion
    guess, no resizing); 28 px centred images sent to an in-context model land in the middle of its canvas."""
    mean, std = loaded.normalisation
    extra = loaded.input_size - split.images.shape[-1]
    for i in range(0, len(split), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(split.images[i:i + batch_size])).float().div_(255.0)
        if extra > 0:
            x = torch.nn.functional.pad(x, (extra // 2, extra - extra // 2, extra // 2, extra - extra // 2))
        yield x.sub_(mean).div_(std).unsqueeze(1), split.labels[i:i + batch_size]


@torch.inference_mode()
def collect_statistics(loaded: LoadedModel, batches: Iterable[tuple[torch.Tensor, np.ndarray]],
                       progress: Callable[[int], None] | None = None,
                       overrides: Mapping[str, Override] | None = None,
                       classes: Sequence[str] | None = None) -> tuple[ExcitationStats, dict]:
    """Stream batches through the model; return per-class excitation statistics and accuracy figures.

    Labels index `classes` (default: the model's own; then accuracy is meaningful).

    Excitations are folded into running sums batch by batch (rec.pop), so memory does not grow with
    the number of images.
    """
    from sevis.core.statistics import ExcitationStats
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    classes = list(classes if classes is not None else loaded.classes)
    stats = ExcitationStats(classes, OrderedDict((b.name, b.channels) for b in blocks))
    correct = np.zeros(len(classes))
    seen = np.zeros(len(classes))
    with ExcitationRecorder(loaded.model, overrides=overrides) as rec:
        for x, labels in batches:
            labels = np.asarray(labels, np.int64)
            pred = loaded.model(x).argmax(1).cpu().numpy()
            stats.update(rec.pop(), labels)
            np.add.at(seen, labels, 1)
            np.add.at(correct, labels, pred == labels)
            if progress:
                progress(len(labels))
    with np.errstate(invalid="ignore"):
        per_class = correct / seen
    return stats, {"accuracy": float(correct.sum() / max(seen.sum(), 1)), "per_class_accuracy": per_class,
                   "images": int(seen.sum())}
