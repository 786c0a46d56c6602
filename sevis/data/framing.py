"""Uploads for in-context models: a scene stays a scene, an isolated garment is fitted like a training garment.

A model trained on Fashion-MNIST in context (sevis.data.context) saw 36 px canvases: a garment of about 28 px at a
random place over a smooth dark background. An upload reaches it the same way:

- a scene (anything whose border is not a flat black or white) is resized whole onto the canvas, its aspect
  kept, the rest of the canvas padded with the image's own border level;
- an isolated garment (at least half of its border flat black, or flat white, e.g. a scan) is cropped to the
  garment, fitted to 28 px and centred on the canvas, as the training garments were.

Light backgrounds are inverted first: training images are light garments on dark backgrounds.
`frame(img)` returns what will be done (a Framing, which also describes itself in one sentence), and
`SceneTransform` does it and normalises.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from sevis.data.preprocess import GrayscaleTransform

GARMENT = 28  # Fashion-MNIST garments are fitted to 28 px on their longest side
FLAT_SPREAD = 16  # border pixels within this many grey levels of the border's median count as flat
FLAT_SHARE = 0.5  # …and an isolated garment has at least this share of its border flat…
DARK_LEVEL = 32  # …at a level this dark (after inverting a light background): black or white, not a grey scene
INK = 24  # a pixel this much lighter than the background belongs to the garment
FILLS = 0.9  # a garment spanning this share of its image's width or height is taken as framed already
ANALYSIS_SIDE = 512  # larger uploads are first reduced to this (box filter): the canvas is 36 px anyway


@dataclass(frozen=True)
class Framing:
    """How one upload is put on the model's canvas."""

    kind: str  # "garment" (cropped to the garment and fitted) or "scene" (the whole image resized)
    inverted: bool  # the image had a light background and was inverted
    source_size: tuple[int, int]  # (w, h) of the upload
    crop: tuple[int, int, int, int]  # (left, top, right, bottom) of the upload that is used, in upload pixels
    content_size: tuple[int, int]  # (w, h) that part is resized to
    canvas: int
    background: int  # grey level (0-255, after inversion) the rest of the canvas is filled with

    def describe(self) -> str:
        """Return one sentence saying what was done to the upload."""
        w, h = self.source_size
        cw, ch = self.content_size
        flipped = " inverted (light background; training images are light on dark)," if self.inverted else ""
        if self.kind == "garment":
            left, top, right, bottom = self.crop
            ground = "white" if self.inverted else "black"
            what = "the whole image (the garment fills it)" if (right - left, bottom - top) == (w, h) else \
                f"cropped to the garment ({right - left}×{bottom - top} of {w}×{h} px),"
            return (f"Read as a garment on {ground}:{flipped} {what} fitted to {max(cw, ch)} px and centred on the "
                    f"{self.canvas}×{self.canvas} canvas, as the training garments were.")
        pad = "" if (cw, ch) == (self.canvas, self.canvas) else \
            f", padded to {self.canvas}×{self.canvas} with its own border level"
        return (f"Read as a scene:{flipped} the whole {w}×{h} image resized to {cw}×{ch} px (aspect kept){pad}, "
                "as the training scenes were.")


def _border(arr: np.ndarray) -> np.ndarray:
    return np.concatenate([arr[0], arr[-1], arr[1:-1, 0], arr[1:-1, -1]])


def _reduced(img: Image.Image) -> tuple[Image.Image, float]:
    """Return the grey image, reduced to at most ANALYSIS_SIDE px on its longest side, and the factor applied."""
    grey = img.convert("L")
    side = max(grey.size)
    if side <= ANALYSIS_SIDE:
        return grey, 1.0
    factor = ANALYSIS_SIDE / side
    size = (max(1, round(grey.size[0] * factor)), max(1, round(grey.size[1] * factor)))
    return grey.resize(size, Image.BOX), factor


def _plan(arr: np.ndarray, canvas: int, garment: int) -> tuple[str, bool, tuple[int, int, int, int], int]:
    """Return (kind, inverted, crop box, background level) for a grey uint8 array."""
    border = _border(arr).astype(np.int16)
    inverted = float(border.mean()) > 128
    if inverted:
        arr, border = 255 - arr, 255 - border
    level = int(np.median(border))
    flat = float(np.mean(np.abs(border - level) <= FLAT_SPREAD))
    h, w = arr.shape
    if level <= DARK_LEVEL and flat >= FLAT_SHARE:
        ink = arr.astype(np.int16) > level + INK
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        if rows.size:
            box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            if box[2] - box[0] >= FILLS * w or box[3] - box[1] >= FILLS * h:
                box = (0, 0, w, h)  # already framed like a Fashion-MNIST image (or a tight scan): keep its frame
            return "garment", inverted, box, level
    return "scene", inverted, (0, 0, w, h), level


def _fit(w: int, h: int, side: int) -> tuple[int, int]:
    """Return (w, h) scaled so that the longest side is `side`, aspect kept, each at least 1 px."""
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def frame(img: Image.Image, canvas: int = 36, garment: int = GARMENT) -> tuple[Framing, Image.Image]:
    """Return how `img` is put on a canvas×canvas model input, and that grey input image."""
    source_size = img.size
    grey, factor = _reduced(img)
    arr = np.asarray(grey, np.uint8)
    kind, inverted, crop, level = _plan(arr, canvas, garment)
    if inverted:
        grey = ImageOps.invert(grey)
    part = grey.crop(crop) if kind == "garment" else grey
    content = _fit(*part.size, garment if kind == "garment" else canvas)
    if content != part.size:
        part = part.resize(content, Image.BILINEAR)
    out = Image.new("L", (canvas, canvas), level)
    out.paste(part, ((canvas - content[0]) // 2, (canvas - content[1]) // 2))
    in_source = tuple(int(round(c / factor)) for c in crop) if factor != 1.0 else crop
    framing = Framing(kind, inverted, source_size, in_source, content, canvas, level)  # type: ignore[arg-type]
    return framing, out


class SceneTransform:
    """The in-context models' preprocessing as a picklable callable: PIL image → 1×canvas×canvas tensor,
    normalised."""

    def __init__(self, canvas: int, mean: Sequence[float], std: Sequence[float], garment: int = GARMENT) -> None:
        self.canvas, self.garment = int(canvas), int(garment)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def __call__(self, img: Image.Image) -> torch.Tensor:
        _, out = frame(img, self.canvas, self.garment)
        x = torch.from_numpy(np.array(out, np.uint8, copy=True))[None].to(torch.get_default_dtype()).div(255)
        return x.sub_(self.mean[0]).div_(self.std[0])

    def describe(self, img: Image.Image) -> str:
        """Return one sentence saying what this preprocessing does to `img`."""
        return frame(img, self.canvas, self.garment)[0].describe()

    def __repr__(self) -> str:
        return f"SceneTransform(canvas={self.canvas}, garment={self.garment}, mean={self.mean}, std={self.std})"


def describe_preprocessing(preprocess: Callable, img: Image.Image) -> str:
    """Return one sentence saying what a model's preprocessing does to `img` (any model sevis loads)."""
    # Known by type, never by a `describe` attribute: torchvision's preset transforms (ImageClassification) have a
    # describe() of their own, which takes no image and returns a docstring-like text.
    if isinstance(preprocess, (SceneTransform, GrayscaleTransform)):
        return preprocess.describe(img)
    shape = tuple(preprocess(img).shape)
    w, h = img.size
    return (f"The {w}×{h} image resized and centre-cropped to {shape[-1]}×{shape[-2]} px, as the model's training "
            "images were.")
