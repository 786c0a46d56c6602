"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (gzipped IDX files) and the bundled reference set."""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sevis.errors import DatasetError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# Mean and std of the training images scaled to [0, 1]; the embedded model normalises with these.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
# The same for the in-context train split (sevis.data.context with its seed): measured, see data_normalisation.
CONTEXT_MEAN = 0.3571
CONTEXT_STD = 0.2322
from sevis.names import PRETRAINED_DIR as PRETRAINED  # noqa: E402

# Data variants a model is trained on: garments centred on black (the original images), or put in context
# (sevis.data.context: a random position on a 36×36 canvas over a random smooth background).
VARIANTS = ("centred", "context")
REFERENCE_PATHS = {"centred": PRETRAINED / "fmnist_reference.npz",
                   "context": PRETRAINED / "fmnist_context_reference.npz"}
REFERENCE_PATH = REFERENCE_PATHS["centred"]
# The in-context splits are rendered with fixed seeds: the same 10k test images on every machine.
CONTEXT_SEEDS = {"train": 60_000, "test": 10_000}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Return the array stored in a (optionally gzipped) IDX file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"{path} is truncated: {len(raw) - header} data bytes, expected {expected}")
    # bytearray: a writable buffer, so torch.from_numpy can share it without a copy or a warning.
    return np.frombuffer(bytearray(raw), dtype, offset=header).reshape(shape)


def dataset_dir() -> Path:
    """Return where the Fashion-MNIST IDX files are ($SEVIS_FASHION_MNIST_DIR, else Debian's path)."""
    return Path(os.environ.get("SEVIS_FASHION_MNIST_DIR", DEBIAN_DIR))


@dataclass
class Split:
    images: np.ndarray  # N×28×28 uint8
    labels: np.ndarray  # N int64
    classes: tuple[str, ...] = FASHION_MNIST_CLASSES

    def __len__(self) -> int:
        return len(self.labels)


def load_fashion_mnist(split: str = "test", root: str | os.PathLike | None = None) -> Split:
    """Return the train or test split as uint8 images and int64 labels."""
    if split not in ("train", "test"):
        raise DatasetError(f"unknown split {split!r}; choose train or test")
    root = Path(root) if root is not None else dataset_dir()
    prefix = "train" if split == "train" else "t10k"
    img_path = root / f"{prefix}-images-idx3-ubyte.gz"
    lbl_path = root / f"{prefix}-labels-idx1-ubyte.gz"
    if not img_path.exists() or not lbl_path.exists():
        raise DatasetError(
            f"Fashion-MNIST not found in {root}. Install it with `sudo apt-get install dataset-fashion-mnist` "
            "or set SEVIS_FASHION_MNIST_DIR to a folder holding the gzipped IDX files."
        )
    images, labels = read_idx(img_path), read_idx(lbl_path).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise DatasetError(f"{img_path} and {lbl_path} do not match: {images.shape} images, {labels.shape} labels")
    return Split(images, labels)


def data_normalisation(variant: str) -> tuple[float, float]:
    """Return the (mean, std) of pixel values in [0, 1] a model trained on `variant` normalises with."""
    return (FASHION_MNIST_MEAN, FASHION_MNIST_STD) if variant == "centred" else (CONTEXT_MEAN, CONTEXT_STD)


def fmnist_preprocessing(variant: str = "context") -> dict:
    """Return the model card's preprocessing block for a Fashion-MNIST model trained on data `variant`."""
    from sevis.data.context import ContextConfig
    mean, std = data_normalisation(variant)
    pp = {"grayscale": True, "resize": 28, "center_crop": 28, "mean": [mean], "std": [std], "auto_invert": True,
          "note": "white-on-black garments as in Fashion-MNIST; photos on light backgrounds are inverted"}
    if variant == "context":
        # sevis.data.framing: a scene is resized whole onto the canvas; a garment on flat black or white is fitted
        # to 28 px
        pp["canvas"] = ContextConfig().canvas
        pp["note"] = ("uploads keep their scene: the whole image resized onto the canvas (aspect kept, padded with its "
                      "border level); a garment on flat black or white is cropped, fitted to 28 px and centred; light "
                      "backgrounds are inverted")
    return pp


def load_split(split: str = "test", variant: str = "centred") -> Split:
    """Return a Fashion-MNIST split as a model of data `variant` sees it: centred, or put in context (seeded)."""
    base = load_fashion_mnist(split)
    if variant == "centred":
        return base
    if variant != "context":
        raise DatasetError(f"unknown data variant {variant!r}; choose {' or '.join(VARIANTS)}")
    from sevis.data.context import render_split
    return Split(render_split(base.images, CONTEXT_SEEDS[split]), base.labels, base.classes)


def load_reference_set(path: str | os.PathLike | None = None, variant: str = "centred") -> Split:
    """Return the bundled reference set (100 test images per class) of a data variant; needs no dataset package."""
    path = REFERENCE_PATHS.get(variant, REFERENCE_PATH) if path is None else path
    try:
        with np.load(path) as data:
            return Split(data["images"], data["labels"].astype(np.int64), tuple(str(c) for c in data["classes"]))
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"cannot read the reference set {path}: {e}") from None


def make_reference_set(out: str | os.PathLike | None = None, per_class: int = 100, seed: int = 0,
                       variant: str = "centred") -> Path:
    """Draw `per_class` test images of each class (fixed seed) and save them compressed; return the path.

    Both variants draw the same test indices, so the two reference sets hold the same garments."""
    out = REFERENCE_PATHS[variant] if out is None else out
    test = load_split("test", variant)
    rng = np.random.default_rng(seed)
    idx = np.concatenate([
        np.sort(rng.choice(np.flatnonzero(test.labels == c), per_class, replace=False))
        for c in range(len(test.classes))
    ])
    np.savez_compressed(out, images=test.images[idx], labels=test.labels[idx].astype(np.uint8),
                        classes=np.array(test.classes), test_indices=idx.astype(np.int32))
    return Path(out)
