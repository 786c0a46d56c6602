"""Labelled image folders (one sub-folder per class, its images inside), shared by the app's views and `sevis stats`.

The app reads only folders under the roots an operator lists in SEVIS_DATA_DIRS (`confine`): a confined folder
is listed without ever leaving its root (symlinks out are skipped) and every message about a path outside the
roots is the same, whether it exists or not. The CLI is the operator's own tool and reads any folder. Images
are listed cheaply and decoded lazily, a batch at a time (`LazyImages`), so a large folder is never held
decoded in memory. Importing this module imports no torch.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator, Sequence, overload

from PIL import Image

from sevis.errors import DatasetError, ImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_FOLDER_IMAGES_PER_CLASS = 200
MAX_PATH_CHARS = 1024  # a longer typed path is refused before the file system sees it


class ConfinedFolder(str):
    """A path (str) the app checked lies inside `root`, an operator's data root; listing and reading it never
    leave that root."""

    root: str

    def __new__(cls, path: str, root: str) -> "ConfinedFolder":
        obj = super().__new__(cls, path)
        obj.root = root
        return obj

    def __reduce__(self):
        return ConfinedFolder, (str(self), self.root)


def short_name(text: str, limit: int = 60) -> str:
    """Return `text` shortened for a message (start … end) when it is longer than `limit` characters."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-(limit // 2 - 1):]}"


def inside(path: str, root: str) -> bool:
    """Return whether real path `path` is `root` or lies below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _real(path: str) -> str | None:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return None


def confine(text: str, roots: Sequence[str | os.PathLike]) -> ConfinedFolder:
    """Return the folder (or `sevis stats` JSON file) that `text` names, resolved, when it lies inside one of
    `roots`; relative names are looked up in each root in turn. Raise DatasetError otherwise, with a message
    that is the same for every path outside the roots (it tells nothing about what exists there)."""
    real_roots = [r for r in (_real(os.fspath(r)) for r in roots) if r]
    if not real_roots:
        raise DatasetError("reading folders of this server is switched off: its operator has not listed any in "
                           "SEVIS_DATA_DIRS. The bundled reference set and uploaded images still work.")
    shown = short_name(text)
    listing = ", ".join(str(r) for r in roots)
    refused = DatasetError(f"{shown!r} is not inside the folders this server shares ({listing}); name a folder "
                           "inside one of them, or a path relative to one")
    if not text or "\x00" in text or len(text) > MAX_PATH_CHARS:
        raise refused
    candidates = [text] if os.path.isabs(text) else [os.path.join(r, text) for r in real_roots]
    for candidate in candidates:
        real = _real(candidate)
        root = next((r for r in real_roots if real and inside(real, r)), None)
        if root is None:
            continue
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue  # missing (or a name too long): maybe it is there relative to the next root
        if stat.S_ISDIR(mode):
            return ConfinedFolder(real, root)
        if stat.S_ISREG(mode) and real.lower().endswith(".json"):
            return ConfinedFolder(real, root)
        from sevis.files import describe_kind
        kind = "a file" if stat.S_ISREG(mode) else describe_kind(mode)
        raise DatasetError(f"{shown} is {kind}: name a folder with one sub-folder per class, or a JSON file "
                           "`sevis stats` wrote")
    if any(_real(c) and any(inside(_real(c), r) for r in real_roots) for c in candidates):
        raise DatasetError(f"{shown}: no such folder inside the folders this server shares ({listing})")
    raise refused


def _listed(folder: Path, root: str | None) -> list[os.DirEntry]:
    """Return the entries of `folder` that stay inside `root` (all of them when root is None), sorted by name."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    if root is None:
        return entries
    return [e for e in entries if (r := _real(e.path)) is not None and inside(r, root)]


def folder_files(folder: str | os.PathLike, per_class: int | None = None) -> tuple[list[str], list[Path], list[int]]:
    """List a labelled folder without decoding anything; return (classes, image paths, class index per path).

    Classes are the sub-folders' names in sorted order; per class, regular image files (FIFOs, devices and other
    non-regular files are skipped) in sorted order, the first `per_class` of them (all when None). A
    ConfinedFolder is listed without following any link out of its root. OS errors (a name too long, no
    permission) become one DatasetError."""
    root = getattr(folder, "root", None)
    path = Path(folder) if root else Path(folder).expanduser()
    shown = short_name(os.fspath(folder))
    try:
        if not path.is_dir():
            raise DatasetError(f"{shown}: no such folder")
        classes = [e.name for e in _listed(path, root) if not e.name.startswith(".") and e.is_dir()]
        if not classes:
            raise DatasetError(f"{shown} has no class sub-folders; put each class's images in a folder named "
                               "after it")
        paths: list[Path] = []
        labels: list[int] = []
        for k, cls in enumerate(classes):
            files = [Path(e.path) for e in _listed(path / cls, root)
                     if Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file()]
            files = files if per_class is None else files[:per_class]
            paths += files
            labels += [k] * len(files)
    except OSError as e:
        raise DatasetError(f"{shown}: cannot be read ({e.strerror or 'error'})") from None
    return classes, paths, labels


class LazyImages(Sequence[Image.Image]):
    """The images of a folder, decoded (and downscaled, by open_image) only when indexed: a slice decodes just
    that batch, so a folder of any size takes the memory of one batch. A ConfinedFolder's files are checked to
    still lie inside its root when read."""

    def __init__(self, paths: Sequence[Path], root: str | None = None) -> None:
        self.paths, self.root = list(paths), root

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, path: Path) -> Image.Image:
        from sevis.data.preprocess import open_image
        if self.root is not None and not inside(_real(str(path)) or "", self.root):
            raise ImageError(f"{path.name}: no such file")
        return open_image(path)

    @overload
    def __getitem__(self, i: int) -> Image.Image: ...

    @overload
    def __getitem__(self, i: slice) -> list[Image.Image]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._decode(p) for p in self.paths[i]]
        return self._decode(self.paths[i])

    def __iter__(self) -> Iterator[Image.Image]:
        return (self._decode(p) for p in self.paths)


def _header_problem(path: Path) -> str | None:
    """Return why `path` cannot be an image we read (from its header only: cheap), or None."""
    from sevis.data.preprocess import MAX_BYTES, MAX_PIXELS
    try:
        if path.stat().st_size == 0:
            return f"{path.name}: the file is empty (0 bytes)"
        if path.stat().st_size > MAX_BYTES:
            return f"{path.name}: file is larger than {MAX_BYTES // 2**20} MB"
        with Image.open(path) as img:
            w, h = img.size
        if w * h > MAX_PIXELS or w < 1 or h < 1:
            return f"{path.name}: {w}×{h} pixels cannot be used"
    except Exception:  # noqa: BLE001 Pillow raises many types on a bad header
        return f"{path.name}: not an image file Pillow can read"
    return None


def folder_images(folder: str | os.PathLike, per_class: int = MAX_FOLDER_IMAGES_PER_CLASS):
    """Read a labelled folder (one sub-folder per class, images inside); return classes, images (a LazyImages:
    decoded a batch at a time), labels, and one error line per file skipped for its header."""
    classes, paths, file_labels = folder_files(folder, per_class)
    good, labels, errors = [], [], []
    for p, k in zip(paths, file_labels):
        problem = _header_problem(p)
        if problem:
            errors.append(problem)
        else:
            good.append(p)
            labels.append(k)
    if not good:
        raise DatasetError(f"{short_name(os.fspath(folder))} holds no readable images in its class sub-folders")
    return classes, LazyImages(good, getattr(folder, "root", None)), labels, errors
