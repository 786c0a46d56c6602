"""Image → tensor. Decodes untrusted image files safely and builds each model's preprocessing.

`open_image` is the one entry point for user images (uploads, CLI paths, sample photos): it turns
every way an image can be odd (modes, EXIF rotation, transparency, animation, bombs, truncation)
into either a plain RGB PIL image or one ImageError with a sentence the user can act on.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from sevis.errors import ImageError

# Pillow's own bomb guard (≈179 MP warns, twice that raises) is far above what any SE model needs;
# refuse anything over this many pixels before decoding it.
MAX_PIXELS = 40_000_000
MAX_BYTES = 50 * 1024 * 1024
MAX_ASPECT = 100  # a 1×10000 strip cannot be centre-cropped into anything meaningful
# What the views need: every model's input is at most a few hundred pixels (ImageNet models resize the short side
# to 256 or so, Fashion-MNIST ones to 28), so images are kept at most this large once decoded: a 40-megapixel
# upload then holds about 1 MB instead of 120 MB.
DECODE_SHORT_SIDE = 512
DECODE_MAX_PIXELS = 2_000_000


def decode_size(w: int, h: int) -> tuple[int, int]:
    """Return the size a w×h image is kept at: its short side at most DECODE_SHORT_SIDE and at most
    DECODE_MAX_PIXELS pixels, aspect ratio kept (never enlarged)."""
    scale = min(1.0, DECODE_SHORT_SIDE / min(w, h), (DECODE_MAX_PIXELS / (w * h)) ** 0.5)
    return (max(1, round(w * scale)), max(1, round(h * scale))) if scale < 1 else (w, h)


def open_image(source: bytes | str | os.PathLike | io.IOBase, name: str | None = None) -> Image.Image:
    """Return `source` decoded as an RGB image; raise ImageError with a clear reason otherwise."""
    label = name or (Path(source).name if isinstance(source, (str, os.PathLike)) else "the upload")
    if isinstance(source, (str, os.PathLike)):
        from sevis.files import read_regular
        data = read_regular(source, MAX_BYTES, label, error=ImageError)  # a FIFO or a folder: refused, never read
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read()
    if len(data) == 0:
        raise ImageError(f"{label}: the file is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{label}: file is larger than {MAX_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{label}: {w}×{h} pixels is too large (limit {MAX_PIXELS // 1_000_000} megapixels)")
            if w < 1 or h < 1:
                raise ImageError(f"{label}: the image has no pixels")
            if max(w, h) > MAX_ASPECT * min(w, h):
                raise ImageError(f"{label}: {w}×{h} is too elongated to classify (aspect ratio over {MAX_ASPECT}:1)")
            img.seek(0)  # animated images: the first frame
            target = decode_size(w, h)
            if target != (w, h) and img.format == "JPEG":
                img.draft(None, target)  # decode at 1/2, 1/4 or 1/8 scale when that is still at least `target`
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label}: refused as a decompression bomb (too many pixels)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image file Pillow can read (PNG, JPEG, GIF, WebP, TIFF, BMP…)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError, IndexError, TypeError) as e:
        raise ImageError(f"{label}: the image is truncated or corrupt ({type(e).__name__}: {e})") from None
    rgb = to_rgb(img, label)
    target = decode_size(*rgb.size)
    return rgb if target == rgb.size else rgb.resize(target, Image.BICUBIC, reducing_gap=2.0)


def to_rgb(img: Image.Image, label: str = "image") -> Image.Image:
    """Return `img` upright (EXIF orientation applied) in RGB; transparency is composited on white."""
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # a broken EXIF block must not lose an otherwise good image
        pass
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit/32-bit grayscale: rescale the real range to 8 bits instead of clipping at 255.
        # Float images may hold NaN/±inf: take the range of the finite values and clip the rest into it.
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        arr = np.clip(np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo), lo, hi)
        arr = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGB" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    try:
        return img.convert("RGB")
    except (OSError, ValueError) as e:
        raise ImageError(f"{label}: cannot convert image mode {img.mode} to RGB ({e})") from None


def _border_mean(img: Image.Image) -> float:
    arr = np.asarray(img.convert("L"), dtype=np.float32)
    return float(np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).mean())


class InvertIfLightBackground:
    """Invert a grayscale image whose border is light: Fashion-MNIST garments are light on black."""

    def __init__(self, threshold: float = 128.0) -> None:
        self.threshold = threshold

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.invert(img.convert("L")) if _border_mean(img) > self.threshold else img

    def __repr__(self) -> str:
        return f"InvertIfLightBackground(threshold={self.threshold})"


class GrayscaleTransform:
    """The embedded models' preprocessing as a picklable callable: PIL image → 1×H×W normalised tensor.

    Step for step what torchvision's Compose([Grayscale(1), (InvertIfLightBackground), Resize(size),
    CenterCrop(size), (Pad), ToTensor(), Normalize(mean, std)]) computes, bit for bit (tests/test_startup.py
    compares them), written with Pillow and torch alone: torchvision's import costs as much as torch's.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], auto_invert: bool = True,
                 canvas: int | None = None) -> None:
        self.size, self.mean, self.std = int(size), [float(m) for m in mean], [float(s) for s in std]
        self.invert = InvertIfLightBackground() if auto_invert else None
        self.canvas = int(canvas) if canvas and canvas > size else None

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = img.convert("L")
        if self.invert is not None:
            img = self.invert(img)
        size, (w, h) = self.size, img.size
        short, long = min(w, h), max(w, h)
        new_short, new_long = size, int(size * long / short)  # torchvision's rule for Resize(int)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        if (new_w, new_h) != (w, h):
            img = img.resize((new_w, new_h), Image.BILINEAR)
        w, h = img.size
        if size > w or size > h:  # CenterCrop pads a too-small image with black first
            left, top = (size - w) // 2 if size > w else 0, (size - h) // 2 if size > h else 0
            img = ImageOps.expand(img, (left, top, (size - w + 1) // 2 if size > w else 0,
                                        (size - h + 1) // 2 if size > h else 0), fill=0)
            w, h = img.size
        if (w, h) != (size, size):
            top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
            img = img.crop((left, top, left + size, top + size))
        if self.canvas:
            extra = self.canvas - size
            img = ImageOps.expand(img, (extra // 2, extra // 2, extra - extra // 2, extra - extra // 2), fill=0)
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(img.size[1], img.size[0], 1)
        x = x.permute(2, 0, 1).contiguous().to(torch.get_default_dtype()).div(255)
        mean = torch.as_tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
        return x.sub_(mean).div_(std)

    def describe(self, img: Image.Image) -> str:
        """Return one sentence saying what this preprocessing does to `img`."""
        w, h = img.size
        inverted = self.invert is not None and _border_mean(img) > self.invert.threshold
        flipped = " inverted (light background; training garments are light on black)," if inverted else ""
        canvas = f" and centred on a black {self.canvas}×{self.canvas} canvas" if self.canvas else ""
        return (f"The {w}×{h} image made grey,{flipped} resized so its short side is {self.size} px and "
                f"centre-cropped to {self.size}×{self.size}{canvas}, as the training garments were.")

    def __repr__(self) -> str:
        return (f"GrayscaleTransform(size={self.size}, mean={self.mean}, std={self.std}, "
                f"auto_invert={self.invert is not None}, canvas={self.canvas})")


def grayscale_transform(size: int, mean: Sequence[float], std: Sequence[float], auto_invert: bool = True,
                        canvas: int | None = None) -> Callable:
    """Return the embedded models' preprocessing: grayscale, resize + centre crop, normalise.

    With `canvas`, the size×size garment is placed in the middle of a black canvas×canvas image, where a
    model trained on Fashion-MNIST in context expects it (black is one of its training backgrounds)."""
    return GrayscaleTransform(size, mean, std, auto_invert, canvas)


def images_to_batch(images: Sequence[Image.Image], preprocess: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    """Return the N×C×H×W batch of preprocessed images."""
    return torch.stack([preprocess(img) for img in images])
