"""Fashion-MNIST from Debian's gzipped IDX files, and the bundled reference set."""
from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from sevis import DatasetError
from sevis.data.fashion_mnist import (
    DEBIAN_DIR,
    FASHION_MNIST_CLASSES,
    dataset_dir,
    load_fashion_mnist,
    load_reference_set,
    read_idx,
)


@pytest.fixture(scope="module")
def test_split():
    return load_fashion_mnist("test")


def test_idx_reader_on_the_real_debian_files():
    images = read_idx(DEBIAN_DIR / "train-images-idx3-ubyte.gz")
    labels = read_idx(DEBIAN_DIR / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and set(np.unique(labels)) == set(range(10))
    assert np.all(np.bincount(labels) == 6000)


def test_splits(test_split):
    assert len(test_split) == 10000 and test_split.images.shape == (10000, 28, 28)
    assert test_split.labels.dtype == np.int64 and np.all(np.bincount(test_split.labels) == 1000)
    assert test_split.classes == FASHION_MNIST_CLASSES and len(FASHION_MNIST_CLASSES) == 10
    # garments are light on a black background
    border = np.concatenate([test_split.images[:, 0], test_split.images[:, -1]], 1)
    assert border.mean() < 0.5 * test_split.images[:, 10:18, 10:18].mean()
    assert test_split.images.flags.writeable  # torch.from_numpy needs no copy warning
    with pytest.raises(DatasetError, match="unknown split"):
        load_fashion_mnist("validation")


def test_dataset_licence_is_shipped():
    from sevis.models.zoo import PRETRAINED_DIR
    text = (PRETRAINED_DIR / "FASHION-MNIST-LICENSE").read_text()
    assert "MIT" in text or "Permission is hereby granted" in text


def _write_idx(path, arr, gz=True, magic_type=0x08):
    header = bytes([0, 0, magic_type, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(">u1" if magic_type == 0x08 else arr.dtype).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_idx_round_trip_and_dtypes(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)
    _write_idx(tmp_path / "b", arr, gz=False)
    assert np.array_equal(read_idx(tmp_path / "b"), arr)
    ints = np.array([1, -2, 300000], dtype=">i4")
    (tmp_path / "c").write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + ints.tobytes())
    assert read_idx(tmp_path / "c").tolist() == [1, -2, 300000]


def test_truncated_file_is_a_dataset_error(tmp_path):
    raw = gzip.open(DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").read()
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(tmp_path / "short.gz")
    # a cut gzip stream (download interrupted) is one DatasetError too
    packed = (DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError):
        read_idx(tmp_path / "cut.gz")


def test_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_missing_directory_gives_the_install_hint(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist("test", root=tmp_path / "nowhere")
    assert "SEVIS_FASHION_MNIST_DIR" in str(info.value)
    monkeypatch.setenv("SEVIS_FASHION_MNIST_DIR", str(tmp_path))
    assert dataset_dir() == tmp_path
    with pytest.raises(DatasetError, match="not found"):
        load_fashion_mnist("train")


def test_images_and_labels_must_match(tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz",):
        shutil.copy(DEBIAN_DIR / name, tmp_path / name)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="do not match"):
        load_fashion_mnist("test", root=tmp_path)


def test_reference_set(test_split):
    ref = load_reference_set()
    assert ref.images.shape[1:] == (28, 28) and ref.images.dtype == np.uint8
    counts = np.bincount(ref.labels, minlength=10)
    assert np.all(counts >= 80) and np.all(counts <= 120)
    assert ref.classes == FASHION_MNIST_CLASSES
    from sevis.data.fashion_mnist import REFERENCE_PATHS
    with np.load(REFERENCE_PATHS["centred"]) as raw:
        idx = raw["test_indices"]
    assert len(set(idx.tolist())) == len(idx)
    assert np.array_equal(test_split.images[idx], ref.images)  # drawn from the test split
    assert np.array_equal(test_split.labels[idx], ref.labels)


def test_broken_reference_set(tmp_path):
    (tmp_path / "ref.npz").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="reference set"):
        load_reference_set(tmp_path / "ref.npz")
