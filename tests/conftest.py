"""Shared fixtures: sample image files, the shipped model, small random models and checkpoints."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sevis.data.fashion_mnist import FASHION_MNIST_CLASSES
from sevis.models.checkpoint import save_checkpoint


def _garment(size: int = 28, light_background: bool = False) -> np.ndarray:
    """A crude light 'T-shirt' on black (Fashion-MNIST style), or its inverse."""
    a = np.zeros((size, size), np.uint8)
    a[size // 5: size * 4 // 5, size // 3: size * 2 // 3] = 200  # body
    a[size // 5: size * 2 // 5, size // 8: size * 7 // 8] = 180  # sleeves
    return 255 - a if light_background else a


def garment_png_bytes() -> bytes:
    """The garment of `_garment` as PNG bytes, as an upload widget hands them over."""
    buf = io.BytesIO()
    Image.fromarray(_garment(), "L").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def image_files(tmp_path: Path) -> dict[str, Path]:
    """Small sample images in many modes and formats, written with Pillow into tmp_path."""
    rng = np.random.default_rng(0)
    files: dict[str, Path] = {}

    def save(name: str, img: Image.Image, **kw) -> None:
        files[name] = tmp_path / name
        img.save(files[name], **kw)

    save("rgb.png", Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "RGB"))
    save("photo.jpg", Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), "RGB"), quality=90)
    save("gray.png", Image.fromarray(_garment(), "L"))
    save("garment_light.png", Image.fromarray(_garment(56, light_background=True), "L").convert("RGB"))
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:10, :, 3] = 255  # top half opaque red, bottom half fully transparent
    save("rgba.png", Image.fromarray(rgba, "RGBA"))
    files["corrupt.png"] = tmp_path / "corrupt.png"
    files["corrupt.png"].write_bytes(b"this is not an image at all\n" * 4)
    files["empty.png"] = tmp_path / "empty.png"
    files["empty.png"].write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB").save(buf, format="PNG")
    files["truncated.png"] = tmp_path / "truncated.png"
    files["truncated.png"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return files


@pytest.fixture(scope="session")
def embedded():
    """The shipped SE-ResNet (sevis/pretrained/fmnist_se_resnet.safetensors)."""
    from sevis import load_model
    return load_model("embedded")


@pytest.fixture(scope="session")
def embedded_random():
    """The embedded architecture with random weights (fixed seed): quick, and needs no weights file."""
    from sevis import load_model
    torch.manual_seed(0)
    return load_model("embedded", pretrained=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, embedded_random) -> Path:
    """A random-weight embedded-architecture checkpoint (safetensors + sevis model card)."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    card = {"name": "tiny", "architecture": embedded_random.model.cfg.to_dict(),
            "classes": list(FASHION_MNIST_CLASSES),
            "preprocessing": {"resize": 28, "mean": [0.2860], "std": [0.3530]}}
    save_checkpoint(embedded_random.model, out, card)
    return out


@pytest.fixture
def fmnist_batch() -> torch.Tensor:
    """Four different 1×28×28 inputs."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 1, 28, 28, generator=g)


@pytest.fixture
def media(monkeypatch):
    """Record every file a Streamlit app hands to its media storage (download buttons' data): name -> bytes.
    Downloads built on click (a callable as `data`) are kept in `.deferred` (name -> callable); `.click(name)`
    builds one as Streamlit does when the button is clicked and returns its bytes."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    class MediaFiles(dict):
        deferred: dict = {}

        def click(self, name: str) -> bytes:
            data = self.deferred[name]()
            return data.encode() if isinstance(data, str) else bytes(data)

    files = MediaFiles()
    files.deferred = {}
    original = MemoryMediaFileStorage.load_and_get_id
    original_deferred = MediaFileManager.add_deferred

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, (bytes, bytearray)) and filename:
            files[filename] = bytes(path_or_data)
        return file_id

    def record_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        if file_name:
            files.deferred[file_name] = data_callable
        return original_deferred(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return files
