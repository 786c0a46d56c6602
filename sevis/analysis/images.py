"""Images in: decoded uploads (NamedImage), the sample images that fit a model, and the prediction plus
excitations of each image (analyse_images).
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, MutableMapping, Sequence

import numpy as np
from PIL import Image

from sevis.analysis.inference import predict_images
from sevis.data.fashion_mnist import load_reference_set
from sevis.data.folders import IMAGE_SUFFIXES
from sevis.data.preprocess import open_image
from sevis.errors import DatasetError, ImageError
from sevis.models.zoo import LoadedModel

MAX_UPLOADS = 64


@dataclass
class NamedImage:
    name: str
    image: Image.Image


@dataclass
class Decoded:
    """One upload as decode_uploads left it: the image or the sentence saying why not, and the pixels its header
    declares (0 when it has no header Pillow reads)."""
    image: Image.Image | None
    error: str | None
    pixels: int


def header_pixels(data: bytes) -> int:
    """Return width × height as the image header in `data` declares it, decoding nothing; 0 when Pillow reads no
    header (open_image then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # open_image refuses bombs itself, with its own sentence
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Exception:  # noqa: BLE001 any unreadable header: counted as nothing, refused by open_image
        return 0
    return max(int(w), 0) * max(int(h), 0)


def decode_uploads(files: Iterable[tuple[str, bytes]], limit: int = MAX_UPLOADS,
                   cache: MutableMapping[tuple[str, str], Decoded] | None = None,
                   max_pixels: int | None = None) -> tuple[list[NamedImage], list[str]]:
    """Decode uploaded files; return the good images and the error lines (one per bad file, one for all the
    files skipped by each limit; the rest still work).

    At most `limit` files are taken, counting those that fail to decode (each costs its decoding). With
    `max_pixels`, files are taken while the pixels their headers declare add up to at most that, checked before
    each is decoded. With `cache` (one session's, by name and content hash), a file decoded before is not decoded
    again, and afterwards the cache holds only this batch, so it never grows past one batch."""
    good: list[NamedImage] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    kept: dict[tuple[str, str], Decoded] = {}
    over_count: list[str] = []
    over_pixels: list[str] = []
    taken = pixels = 0
    for i, (name, data) in enumerate(files):
        label = os.path.basename(str(name or f"upload {i + 1}")) or f"upload {i + 1}"
        if taken >= limit:
            over_count.append(label)
            continue
        key = (label, hashlib.sha256(data).hexdigest())
        hit = kept.get(key) or (cache.get(key) if cache is not None else None)
        size = hit.pixels if hit is not None else header_pixels(data)
        if max_pixels is not None and pixels + size > max_pixels:
            over_pixels.append(label)  # refused from its header: never decoded
            continue
        if hit is None:
            try:
                hit = Decoded(open_image(data, name=label), None, size)
            except ImageError as e:
                hit = Decoded(None, str(e), size)
        kept[key] = hit
        taken, pixels = taken + 1, pixels + size
        if hit.image is None:
            errors.append(hit.error or f"{label}: not an image")
            continue
        n = seen.get(label, 0)
        seen[label] = n + 1
        good.append(NamedImage(label if n == 0 else f"{label} ({n + 1})", hit.image))
    if over_count:
        errors.append(f"{_few(over_count)} skipped: at most {limit} images are analysed at once (files that cannot "
                      "be read count too)")
    if over_pixels:
        errors.append(f"{_few(over_pixels)} skipped: the images analysed at once may hold {max_pixels / 1e6:,.0f} "
                      f"megapixels together, and these would pass that")
    if cache is not None:
        cache.clear()
        cache.update(kept)
    return good, errors


def _few(names: Sequence[str], shown: int = 3) -> str:
    """Return "a.png, b.png and 4 more files" (one file: its name)."""
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head} and {len(names) - shown} more files"


def png_bytes(img: Image.Image) -> bytes:
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
                out[label] = png_bytes(Image.fromarray(getattr(skdata, fn)()).convert("RGB"))
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
            out[name] = png_bytes(Image.fromarray(ref.images[idx], "L"))
    return out


def default_sample_names(loaded: LoadedModel, samples: Iterable[str] | None = None) -> list[str]:
    """Return the names of the sample images the app preselects in its sidebar, and that the views' default
    (prepared) requests use: the first Trouser and the first Bag for Fashion-MNIST models (a garment the model
    knows well and one it confuses more often), else the first two samples. `samples`: the names of
    sample_images(loaded), when the caller already has them."""
    names = list(sample_images(loaded) if samples is None else samples)
    if loaded.dataset == "fashion-mnist":
        return [n for n in names if n.startswith(("Trouser", "Bag"))][:2]
    return names[:2]


def default_sample_images(loaded: LoadedModel) -> list[NamedImage]:
    """Return the preselected sample images (default_sample_names) decoded exactly as the app's sidebar decodes
    them (same names, same pixels), so a view's default request equals the app's first request."""
    samples = sample_images(loaded)
    images, _ = decode_uploads([(n, samples[n]) for n in default_sample_names(loaded, samples)])
    return images


def image_stem(name: str) -> str:
    from sevis.files import safe_filename
    base, dot, ext = name.rpartition(".")
    return safe_filename(base if dot and "." + ext.lower() in IMAGE_SUFFIXES else name, default="image")[:40]


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
