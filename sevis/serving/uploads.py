"""Uploaded weights files of one server process.

The app must hand the model loaders a path, so uploads are written to disk, safely: into a private folder
made for this process (tempfile.mkdtemp: a fresh unpredictable name, mode 0700), each file created exclusively
without following links (O_CREAT | O_EXCL | O_NOFOLLOW), so nothing another local user plants can redirect or
replace a write; its content hash is checked again before it is read; a file is removed as soon as no session
holds it, and the whole folder at exit. Files keep the student's own name (inside a folder named by the
content hash), so every message about them names the file the student uploaded.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable

from sevis.errors import ModelError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_upload_name(name: str) -> str:
    """Return `name`'s last component with only portable characters, a weights suffix, at most 100 characters."""
    base = _UNSAFE.sub("_", os.path.basename(str(name or "")).strip()).lstrip(".") or "weights"
    stem, suffix = os.path.splitext(base)
    suffix = suffix.lower() if suffix.lower() in WEIGHT_SUFFIXES else ".pt"
    return f"{stem[:100 - len(suffix)] or 'weights'}{suffix}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class UploadStore:
    """The private folder of this process's uploaded weights, with who holds each file."""

    def __init__(self, parent: str | os.PathLike | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sevis-uploads-", dir=parent))
        os.chmod(self.root, 0o700)
        self._lock = threading.Lock()
        self._held: dict[str, Path] = {}  # holder (a session id) -> its file
        self._digests: dict[Path, str] = {}  # file -> sha256 of what was written
        atexit.register(self.close)

    def put(self, data: bytes, name: str, holder: str) -> Path:
        """Write `data` (uploaded as `name`) for `holder` and return its path; the holder's previous file is
        released. Raises ModelError, naming the upload, when it cannot be written safely."""
        digest, shown = _digest(data), safe_upload_name(name)
        folder = self.root / digest[:32]
        path = folder / shown
        with self._lock:
            try:
                folder.mkdir(mode=0o700, exist_ok=True)
                if not folder.is_dir() or folder.is_symlink():
                    raise OSError("not a private folder")
                if path not in self._digests:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    self._digests[path] = digest
            except OSError:
                raise ModelError(f"{shown} could not be stored on the server; upload it again") from None
            previous = self._held.get(holder)
            self._held[holder] = path
            if previous is not None and previous != path:
                self._drop_if_unheld(previous)
        return path

    def check(self, path: str | os.PathLike) -> None:
        """Raise ModelError unless `path` is a file of this store whose content still has the hash it was
        written with (read without following links)."""
        path = Path(path)
        expected = self._digests.get(path)
        try:
            if expected is None:
                raise OSError("not stored here")
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            h = hashlib.sha256()
            with os.fdopen(fd, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != expected:
                raise OSError("changed")
        except OSError:
            raise ModelError(f"{path.name} is no longer what was uploaded; upload it again") from None

    def holds(self, path: str | os.PathLike) -> bool:
        """Return whether `path` is a file of this store."""
        return Path(path) in self._digests

    def release(self, holder: str) -> None:
        """Forget `holder`'s file; remove it when no other holder has it."""
        with self._lock:
            path = self._held.pop(holder, None)
            if path is not None:
                self._drop_if_unheld(path)

    def sweep(self, alive: Iterable[str]) -> None:
        """Release every holder not in `alive` (sessions that have ended)."""
        alive = set(alive)
        for holder in [h for h in list(self._held) if h not in alive]:
            self.release(holder)

    def holders(self) -> list[str]:
        """Return the holders that hold a file now."""
        return list(self._held)

    def files(self) -> list[Path]:
        """Return the files stored now."""
        return sorted(self._digests)

    def _drop_if_unheld(self, path: Path) -> None:
        if path in self._held.values():
            return
        self._digests.pop(path, None)
        for p in (path, path.parent):
            try:
                p.unlink() if p is path else p.rmdir()
            except OSError:
                pass  # the folder still holds another name of the same bytes

    def close(self) -> None:
        """Remove the folder and everything in it."""
        with self._lock:
            self._held.clear()
            self._digests.clear()
            shutil.rmtree(self.root, ignore_errors=True)


_STORE: UploadStore | None = None
_STORE_LOCK = threading.Lock()


def upload_store(factory: Callable[[], UploadStore] = UploadStore) -> UploadStore:
    """Return this process's one UploadStore (made on first use)."""
    global _STORE
    with _STORE_LOCK:
        if _STORE is None or not _STORE.root.is_dir():
            _STORE = factory()
        return _STORE


class SessionImages:
    """The decoded images of each session (session id -> {(name, content hash): decoded}), so a rerun decodes
    nothing; a session's go when it ends (sweep), and their memory goes back to the system (return_memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_session: dict[str, dict] = {}

    def of(self, session: str) -> dict:
        """Return `session`'s cache (made on first use): a dict decode_uploads reads and refills."""
        with self._lock:
            return self._by_session.setdefault(session, {})

    def sessions(self) -> list[str]:
        """Return the sessions that have a cache now."""
        with self._lock:
            return list(self._by_session)

    def sweep(self, alive: Callable[[str], bool]) -> int:
        """Drop the caches of sessions for which `alive` is false; return how many were dropped."""
        with self._lock:
            ended = [s for s in self._by_session if not alive(s)]
            for s in ended:
                del self._by_session[s]
        return len(ended)


_IMAGES = SessionImages()


def session_images() -> SessionImages:
    """Return this process's one SessionImages."""
    return _IMAGES


def return_memory() -> None:
    """Give freed memory back to the system: collect cycles, then ask glibc's malloc to return the free pages
    it keeps (decoded images freed in many pieces otherwise stay in the process, counted as its memory)."""
    import ctypes
    import ctypes.util
    import gc
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator returns memory its own way
        pass
