"""Labelled image folders (one sub-folder per class, its images inside), shared by the app's views and `sevis stats`.

Importing this module imports no torch: listing a folder is cheap, decoding goes through sevis.preprocess.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DatasetError, ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_FOLDER_IMAGES_PER_CLASS = 200


def folder_files(folder: str | os.PathLike, per_class: int | None = None) -> tuple[list[str], list[Path], list[int]]:
    """List a labelled folder without decoding anything; return (classes, image paths, class index per path).

    Classes are the sub-folders' names in sorted order; per class, image files in sorted order, the first
    `per_class` of them (all when None)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{folder} has no class sub-folders; put each class's images in a folder named after it")
    paths: list[Path] = []
    labels: list[int] = []
    for k, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files = files if per_class is None else files[:per_class]
        paths += files
        labels += [k] * len(files)
    return classes, paths, labels


def folder_images(folder: str | os.PathLike, per_class: int = MAX_FOLDER_IMAGES_PER_CLASS):
    """Read a labelled folder (one sub-folder per class, images inside); return classes, images, labels, errors."""
    from .preprocess import open_image

    classes, paths, file_labels = folder_files(folder, per_class)
    images, labels, errors = [], [], []
    for p, k in zip(paths, file_labels):
        try:
            images.append(open_image(p))
            labels.append(k)
        except ImageError as e:
            errors.append(str(e))
    if not images:
        raise DatasetError(f"{folder} holds no readable images in its class sub-folders")
    return classes, images, labels, errors
