"""A trained run of either grid (the ablation variants of sevis.train.ablations, the architectures of
sevis.train.family_grid) loaded for a view: its weights, its card and its statistics over the bundled reference set.

One loader for both grids, with one process-wide cache: measuring a run over the reference set takes tens of seconds,
and every request of the Ablations and Architectures views (other classes, another pair) needs the same runs again.
The cache is keyed on the weights file and its modification time, so a retrained run is measured afresh.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sevis.analysis.reference import ReferenceStats, reference_statistics
from sevis.errors import ModelError
from sevis.models.checkpoint import read_card
from sevis.models.zoo import LoadedModel, load_checkpoint

CACHED_RUNS = 8  # runs kept measured per process (each a small model and its per-class statistics)


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
