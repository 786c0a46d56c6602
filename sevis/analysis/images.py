"""Images in: decoded uploads (NamedImage), the sample images that fit a model, and the prediction plus
excitations of each image (analyse_images).
"""
from __future__ import annotations

import io
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from sevis.data.fashion_mnist import load_reference_set
from sevis.errors import DatasetError, ImageError
from sevis.data.folders import IMAGE_SUFFIXES
from sevis.analysis.inference import predict_images
from sevis.data.preprocess import open_image
from sevis.models.zoo import LoadedModel


MAX_UPLOADS = 64


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
