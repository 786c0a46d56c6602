"""What the two run grids share (the ablation variants of sevis.train.ablations, the architectures of
sevis.train.family_grid): a RunGrid names its runs, where each one's weights live, whether it is finished, its
status, and the lock file that lets several processes share the grid; `load_trained_run` loads a finished run for a
view, with its card and its statistics over the bundled reference set.

One loader for both grids, with one process-wide cache: measuring a run over the reference set takes tens of seconds,
and every request of the Ablations and Architectures views (other classes, another pair) needs the same runs again.
The cache is keyed on the weights file and its modification time, so a retrained run is measured afresh.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from sevis.analysis.reference import ReferenceStats, reference_statistics
from sevis.errors import ModelError
from sevis.models.checkpoint import card_path, read_card
from sevis.models.zoo import LoadedModel, load_checkpoint

CACHED_RUNS = 8  # runs kept measured per process (each a small model and its per-class statistics)


@dataclass(frozen=True)
class RunGrid:
    """A grid of runs trained on one schedule: `runs` (name -> its record in sevis.names), `folder` (where they live
    by default, read when called: an environment variable may move it), `record` (the card entry a finished run's
    trainer writes last), `what` (a run in words) and `command` (what trains a run, its name appended)."""

    runs: Mapping[str, dict]
    folder: Callable[[], Path]
    record: str
    what: str
    command: str

    def lookup(self, name: str) -> dict:
        """Return run `name`'s record; a ModelError names the known runs."""
        try:
            return self.runs[name]
        except KeyError:
            raise ModelError(f"unknown {self.what} {name!r}; known: {', '.join(self.runs)}") from None

    def weights_file(self, name: str, out_dir: str | Path | None = None) -> Path:
        """Return where run `name`'s weights live."""
        self.lookup(name)
        return Path(out_dir or self.folder()) / f"{name}.safetensors"

    def lock_file(self, name: str, out_dir: str | Path | None = None) -> Path:
        """Return the file a process training run `name` holds (its pid)."""
        return self.weights_file(name, out_dir).with_suffix(".lock")

    def has_record(self, name: str, out_dir: str | Path | None = None) -> bool:
        """Return whether run `name` has weights and a card with the grid's record (its trainer finished it)."""
        path = self.weights_file(name, out_dir)
        if not path.exists() or not card_path(path).exists():
            return False
        try:
            return self.record in read_card(path)
        except ModelError:
            return False

    def status(self, name: str, out_dir: str | Path | None = None, finished: bool | None = None) -> str:
        """Return "trained" (`finished`, default has_record), "training (process N)", "interrupted" (a checkpoint
        to resume from) or "missing"."""
        from sevis.train.trainer import resume_path
        if self.has_record(name, out_dir) if finished is None else finished:
            return "trained"
        owner = lock_owner(self.lock_file(name, out_dir))
        if owner is not None:
            return f"training (process {owner})"
        return "interrupted" if resume_path(self.weights_file(name, out_dir)).exists() else "missing"

    def missing(self, name: str) -> str:
        """Return what to say when run `name` is not trained."""
        return f"the {self.what} {name} is not trained yet: run `{self.command} {name}`"

    def load(self, name: str, prefix: str, out_dir: str | Path | None = None,
             progress: Callable[[float], None] | None = None) -> "TrainedRun":
        """Return finished run `name` loaded as model spec "<prefix>:<name>", measured (load_trained_run)."""
        return load_trained_run(name, self.weights_file(name, out_dir), f"{prefix}:{name}", self.missing(name),
                                progress)


def lock_owner(lock: Path) -> int | None:
    """Return the pid of the live process holding `lock`, else None."""
    import os
    try:
        pid = int(lock.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def claim_lock(lock: Path) -> int | None:
    """Take `lock` (a file holding a pid) for this process; return the pid of a live process that holds it already,
    else None.

    Several training processes then share one grid without training a model twice; a lock left by a process that
    died (a stopped session) is taken over, and its run resumes from its checkpoint."""
    import os
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
                if pid != os.getpid():
                    return pid
            except (ValueError, ProcessLookupError, FileNotFoundError):
                pass
            except PermissionError:  # alive, owned by someone else
                return pid
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return None
    return None


@dataclass
class TrainedRun:
    """One trained run of a grid, ready for a view (read it; it is shared by every caller)."""

    name: str
    loaded: LoadedModel
    ref: ReferenceStats
    card: dict


_LOCK = threading.Lock()
_RUNS: OrderedDict[tuple[str, int], TrainedRun] = OrderedDict()


def load_trained_run(name: str, path: Path, spec: str, missing: str,
                     progress: Callable[[float], None] | None = None) -> TrainedRun:
    """Return run `name` from weights file `path` (its model spec `spec`, e.g. "ablation:r4") with its card and its
    reference-set statistics; a ModelError says `missing` when the file is not there. Cached per process."""
    path = Path(path)
    if not path.exists():
        raise ModelError(missing)
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _LOCK:
        if key in _RUNS:
            _RUNS.move_to_end(key)
            return _RUNS[key]
    # Measured outside the lock: two different runs can be measured at once; the same run twice at worst.
    loaded = load_checkpoint(path)
    loaded.spec = spec
    run = TrainedRun(name, loaded, reference_statistics(loaded, progress=progress), read_card(path))
    with _LOCK:
        _RUNS[key] = run
        while len(_RUNS) > CACHED_RUNS:
            _RUNS.popitem(last=False)
    return run


def card_classes(path: Path) -> list[str]:
    """Return the classes a run's card names (what its Fig. 6 can show), without loading or measuring it."""
    return [str(c) for c in read_card(path).get("classes") or []]
