"""Files on disk, safely: read only regular files (a FIFO or a device never blocks a thread), and write every
output atomically (a temporary file in the same folder, then one rename), so a stopped run leaves each file
either as it was or whole. Temporary files are named `.NAME.sevis-PID-RANDOM.part`, so the next write to the same
folder can remove those of a run that was killed (kill -9 runs no cleanup), and are created with the mode the umask
gives (0644 under umask 022), as any other program's output.

Imports nothing heavy: the CLI and the app's sidebar use it before torch is loaded.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import unicodedata
from pathlib import Path
from typing import Callable, Iterator, Sequence

from sevis.errors import SevisError


def describe_kind(mode: int) -> str:
    """Return what a non-regular file is, in words ("a folder", "a FIFO (named pipe)"…)."""
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def regular_file_problem(path: str | os.PathLike) -> str | None:
    """Return why `path` is not a readable regular file ("no such file", "a FIFO (named pipe)"…), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file"
    except PermissionError:
        return "permission denied"
    except OSError as e:
        return e.strerror or "cannot be read"
    return None if stat.S_ISREG(mode) else describe_kind(mode)


def read_regular(path: str | os.PathLike, limit: int, label: str | None = None,
                 error: type[SevisError] = SevisError) -> bytes:
    """Return the bytes of regular file `path` (at most `limit` of them); raise `error` with one clear sentence
    for anything else: missing, a folder, a FIFO or device (opened without blocking, then refused), too large,
    unreadable."""
    label = label or Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except IsADirectoryError:
        raise error(f"{label} is a folder, not a file") from None
    except OSError as e:
        raise error(f"{label}: cannot be read ({e.strerror or 'error'})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = describe_kind(st.st_mode)
            raise error(f"{label} is {kind}, not a file" if kind.startswith("a ") else f"{label}: {kind}")
        if st.st_size > limit:
            raise error(f"{label}: file is larger than {limit // 2**20} MB")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise error(f"{label}: cannot be read ({e.strerror or 'error'})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{label}: file is larger than {limit // 2**20} MB")
    return data


_PART = re.compile(r"^\.(?P<name>.+)\.sevis-(?P<pid>\d+)-[0-9a-f]{8}\.part$")


def _pid_alive(pid: int) -> bool:
    """Return whether process `pid` exists (another user's counts: kill says permission denied)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files that killed sevis runs left in `folder` (only those of `name` when given): the
    `.NAME.sevis-PID-RANDOM.part` files whose process no longer exists. Return the paths removed; a running
    export's temporary files are left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _PART.match(entry.name)
        if not m or (name is not None and m["name"] != name[:80]) or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _new_part(path: Path) -> Path:
    """Create and return an empty temporary file beside `path`, exclusively, without following a link, with the
    mode the umask gives (os.open's 0o666 less the umask: 0644 under 022; mkstemp would force 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name[:80]}.sevis-{os.getpid()}-{secrets.token_hex(4)}.part"
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder to write to; on success it replaces `path` in one rename, on
    any failure it is removed and `path` is left as it was. Leftovers of a killed earlier write of `path` go first."""
    path = Path(path)
    remove_stale_parts(path.parent, path.name)
    tmp = _new_part(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[Path], None],
                 error: type[SevisError] = SevisError) -> Path:
    """Write `data` (bytes, text, or a function that writes the file at the path it is given) to `path`
    atomically; return the path. OS errors become `error` naming the file."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            if callable(data):
                data(tmp)
            elif isinstance(data, str):
                tmp.write_text(data, encoding="utf-8")
            else:
                tmp.write_bytes(data)
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror or e}") from None
    return path


def existing(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Return those of `paths` that exist (as anything, a dangling link included)."""
    return [Path(p) for p in paths if os.path.lexists(p)]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_filename(name: str, ext: str | None = None, default: str = "figure", max_len: int = 80) -> str:
    """Return `name` as a plain file name: ASCII letters, digits, '.', '_' and '-' only, no path parts,
    no leading dot, at most `max_len` characters, with `ext` appended. Never a path."""
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode()
    text = _UNSAFE.sub("_", text.replace("/", "_").replace("\\", "_"))
    text = re.sub(r"\.{2,}", ".", text).strip("._-")
    text = re.sub(r"_{2,}", "_", text)
    stem = text[:max_len].rstrip("._-") or default
    # Windows treats CON, NUL, COM1, ... as devices whatever follows the first dot ("nul.txt" too).
    if stem.upper().split(".")[0] in _WINDOWS_DEVICES:
        stem = f"_{stem}"
    if ext:
        # Windows drops trailing dots, so an extension of dots alone would leave "figure.".
        ext = _UNSAFE.sub("", ext).strip(".").lower()[:10].rstrip(".")
        if ext and not stem.lower().endswith("." + ext):
            stem = f"{stem}.{ext}"
    return stem
