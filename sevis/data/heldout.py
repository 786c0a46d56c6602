"""Held-out garments as uploads: Fashion-MNIST test garments outside the reference set, rendered the ways a
user might send them (in context at several sizes and canvases, centred on black, scanned on white), as PNG bytes.

The upload-path accuracy (docs/upload_accuracy.py) and the domain verdict's tests read these; every image goes
through exactly what an upload goes through: PNG bytes → open_image → the model's preprocess → the model.
"""
from __future__ import annotations

import io
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from sevis.data.context import ContextConfig, compose, sample_params
from sevis.data.fashion_mnist import REFERENCE_PATHS, Split, load_fashion_mnist

HELDOUT_SEED = 19_000  # neither the train (60_000) nor the test (10_000) rendering seed
PHOTO_SIZE = 144
SCAN_SIZE = 112

# condition -> what the row says
CONDITIONS = {
    "context-36": "garment in context on a 36 px canvas (as in training)",
    "context-40": "the same kind of scene on a 40 px canvas",
    "photo-144": f"the scene at photo size ({PHOTO_SIZE} px)",
    "scale-0.7": "garment at 0.7x size in context",
    "scale-1.25": "garment at 1.25x size in context",
    "black-112": f"garment centred on black, {SCAN_SIZE} px",
    "white-112": "garment on white (a scan)",
}


def heldout_split(n: int = 1000, seed: int = HELDOUT_SEED) -> Split:
    """Return n test garments (28 px, balanced over classes) none of which is in the bundled reference sets."""
    test = load_fashion_mnist("test")
    used: set[int] = set()
    for path in REFERENCE_PATHS.values():  # both reference sets hold the same test garments
        with np.load(path) as ref:
            used |= {int(i) for i in ref["test_indices"]}
    rng = np.random.default_rng(seed)
    classes = len(test.classes)
    picks = []
    for c in range(classes):
        pool = np.array([i for i in np.flatnonzero(test.labels == c) if i not in used])
        picks.append(rng.choice(pool, n // classes + (c < n % classes), replace=False))
    idx = np.sort(np.concatenate(picks))
    return Split(test.images[idx], test.labels[idx], test.classes)


def _in_context(images: np.ndarray, canvas: int, scale: float, seed: int) -> np.ndarray:
    cfg = ContextConfig(canvas=canvas, scale=(scale, scale))
    params = sample_params(len(images), torch.Generator().manual_seed(seed), cfg)
    return compose(images, params, cfg).numpy()


def render(condition: str, garments: Split, seed: int = HELDOUT_SEED) -> list[Image.Image]:
    """Return the garments rendered as `condition` (a CONDITIONS key), as grey PIL images."""
    a = garments.images
    if condition == "context-36":
        out = _in_context(a, 36, 1.0, seed)
    elif condition == "context-40":
        out = _in_context(a, 40, 1.0, seed)
    elif condition == "photo-144":
        return [Image.fromarray(x, "L").resize((PHOTO_SIZE, PHOTO_SIZE), Image.BILINEAR)
                for x in _in_context(a, 36, 1.0, seed)]
    elif condition in ("scale-0.7", "scale-1.25"):
        out = _in_context(a, 36, float(condition.split("-")[1]), seed)
    elif condition in ("black-112", "white-112"):
        big = [Image.fromarray(x, "L").resize((SCAN_SIZE, SCAN_SIZE), Image.BILINEAR) for x in a]
        return big if condition == "black-112" else [Image.fromarray(255 - np.asarray(b), "L") for b in big]
    else:
        raise KeyError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    return [Image.fromarray(x, "L") for x in out]


def png_bytes(img: Image.Image) -> bytes:
    """Return `img` encoded as PNG, as an upload would arrive."""
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def upload_batches(loaded, condition: str, garments: Split, batch_size: int = 250
                   ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield (model-input batch, labels): each image as PNG bytes through open_image and loaded.preprocess."""
    from sevis.data.preprocess import open_image
    images = render(condition, garments)
    for i in range(0, len(images), batch_size):
        x = torch.stack([loaded.preprocess(open_image(png_bytes(im))) for im in images[i:i + batch_size]])
        yield x, garments.labels[i:i + batch_size]


@torch.inference_mode()
def upload_accuracy(loaded, condition: str, garments: Split) -> float:
    """Return the share of `garments`, rendered as `condition` and sent through the upload path, classified right."""
    correct = 0
    for x, y in upload_batches(loaded, condition, garments):
        correct += int((loaded.model(x).argmax(1).numpy() == y).sum())
    return correct / max(1, len(garments))
