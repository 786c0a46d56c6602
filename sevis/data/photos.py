"""Photos for backgrounds: grayscale crops of the sample images scikit-image and scikit-learn ship (no download).

The rich in-context recipe (sevis.data.context, backgrounds="rich") draws crops of TRAINING_PHOTOS only; the
held-out backgrounds of a rich-recipe model (sevis.data.unseen_backgrounds) crop HELDOUT_PHOTOS, which no training
image ever shows. Each photo is read once, turned grey and resized so its shorter side is WORKING_SIDE pixels;
a crop is a square of CROP_SIDE pixels of that, resampled onto the canvas and stretched to [0, 1].
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# (package, file): skimage's files lie in skimage/data, scikit-learn's in sklearn/datasets/images
TRAINING_PHOTOS = (("skimage", "astronaut.png"), ("skimage", "brick.png"), ("skimage", "camera.png"),
                   ("skimage", "chelsea.png"), ("skimage", "grass.png"), ("skimage", "gravel.png"),
                   ("skimage", "moon.png"), ("skimage", "rocket.jpg"), ("sklearn", "china.jpg"))
HELDOUT_PHOTOS = (("skimage", "coffee.png"), ("skimage", "motorcycle_left.png"), ("skimage", "ihc.png"),
                  ("sklearn", "flower.jpg"))
WORKING_SIDE = 96  # a crop of 20-72 of these pixels onto a 36 px canvas is resampled at most 2:1 (little aliasing)
CROP_SIDE = (20.0, 72.0)

_FOLDERS = {"skimage": ("data",), "sklearn": ("datasets", "images")}


def photo_path(package: str, name: str) -> Path:
    """Return where an installed package keeps a sample photo (found without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{package} is not installed; its sample photo {name} is a background source")
    return Path(spec.origin).parent.joinpath(*_FOLDERS[package], name)


@lru_cache(maxsize=None)
def load_photo(package: str, name: str) -> torch.Tensor:
    """Return a photo as an H×W float tensor in [0, 1], grey, its shorter side WORKING_SIDE pixels."""
    with Image.open(photo_path(package, name)) as im:
        grey = im.convert("L")
        w, h = grey.size
        k = WORKING_SIDE / min(w, h)
        grey = grey.resize((max(WORKING_SIDE, round(w * k)), max(WORKING_SIDE, round(h * k))), Image.LANCZOS)
        return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)


def photo_crops(photos: tuple[tuple[str, str], ...], which: torch.Tensor, corner: torch.Tensor, side: torch.Tensor,
                canvas: int) -> torch.Tensor:
    """Return n×canvas×canvas crops in [0, 1] (each stretched from its darkest to its brightest pixel): image i
    crops photos[which[i]], a square of side[i] working pixels whose top-left corner sits at corner[i] (y, x in
    [0, 1) of the room the photo leaves)."""
    n = len(which)
    out = torch.zeros(n, canvas, canvas)
    u = torch.arange(canvas, dtype=torch.float32) + 0.5
    for p in which.unique().tolist():
        idx = torch.nonzero(which == p)[:, 0]
        photo = load_photo(*photos[p])
        h, w = photo.shape
        s = side[idx][:, None]
        y0, x0 = corner[idx, :1] * (h - s), corner[idx, 1:] * (w - s)
        # pixel centres of the canvas in photo pixels, then in grid_sample's align_corners=False units
        gy = (2 * (y0 + u[None] * s / canvas) / h - 1)[:, :, None].expand(-1, canvas, canvas)
        gx = (2 * (x0 + u[None] * s / canvas) / w - 1)[:, None, :].expand(-1, canvas, canvas)
        crops = F.grid_sample(photo.expand(len(idx), 1, h, w), torch.stack([gx, gy], dim=-1), mode="bilinear",
                              padding_mode="border", align_corners=False)[:, 0]
        lo, hi = crops.amin((1, 2), keepdim=True), crops.amax((1, 2), keepdim=True)
        out[idx] = (crops - lo) / (hi - lo).clamp(min=1e-3)
    return out.clamp(0, 1)
