"""How class specificity emerged during training, per SE block, read from the training snapshots `sevis train
--snapshots` kept (<embedded model>@<epoch>; epoch 0 is the initialisation, the untrained network): each snapshot's
per-class excitation statistics over one reference set (the bundled one, or a labelled folder), measured once per
process. The Tour's training step reads it. For the bundled set, `sevis prepare` stores the table beside the snapshots
(class_specificity.json, tied to the SHA-256 of every snapshot and of the reference sets), so a cold process reads
it instead of measuring nine networks on 1,000 images; a stale file is measured afresh.
"""
from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from sevis.analysis.precomputed import file_sha256
from sevis.analysis.reference import reference_statistics, too_few_images
from sevis.errors import ModelError
from sevis.models.zoo import load_model
from sevis.names import snapshot_dir, snapshot_epochs


@dataclass
class SnapshotSpecificity:
    """Class specificity per (snapshot, SE block) of one embedded model over one reference set."""

    base: str  # the embedded model whose snapshots these are
    source: str  # the reference set, in words
    table: pd.DataFrame  # one row per (epoch, block): epoch, block, depth, class_specificity, accuracy
    problem: str | None = None  # why per-class statistics cannot be shown (too few images per class), else None

    @property
    def epochs(self) -> list[int]:
        return sorted(set(int(e) for e in self.table["epoch"])) if len(self.table) else []

    def by_epoch(self) -> pd.DataFrame:
        """Return class specificity as a matrix: one row per epoch, one column per block (depth order)."""
        return self.table.pivot(index="epoch", columns="block", values="class_specificity")[
            list(dict.fromkeys(self.table["block"]))]

    def mean_by_epoch(self) -> pd.Series:
        """Return, per epoch, the mean class specificity over the blocks where it is defined (NaN where none is)."""
        return self.by_epoch().mean(axis=1, skipna=True)


_LOCK = threading.Lock()
_CACHE: dict[tuple, SnapshotSpecificity] = {}
STORED_NAME = "class_specificity.json"
STORED_VERSION = 1


def stored_path(base: str) -> Path:
    """Return where `sevis prepare` stores the bundled set's table for `base`'s snapshots."""
    return snapshot_dir(base) / STORED_NAME


def _fingerprint(files: list[Path]) -> dict:
    from sevis.data.fashion_mnist import REFERENCE_PATHS
    return {"version": STORED_VERSION, "snapshots": {f.name: file_sha256(f) for f in files},
            "references": {k: file_sha256(p) for k, p in sorted(REFERENCE_PATHS.items()) if p.is_file()}}


def _read_stored(base: str, files: list[Path]) -> SnapshotSpecificity | None:
    """Return the stored table when it matches these snapshots and reference sets, else None."""
    try:
        stored = json.loads(stored_path(base).read_text())
        if stored["fingerprint"] != _fingerprint(files):
            return None
        table = pd.read_json(io.StringIO(stored["table"]), orient="split")
        return SnapshotSpecificity(base, stored["source"], table, stored["problem"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(base: str) -> Path:
    """Measure (or reuse) the bundled set's table for `base`'s snapshots and write it beside them; return the file
    (`sevis prepare`)."""
    result = snapshot_specificity(base)
    files = sorted(snapshot_dir(base).glob("epoch_*.safetensors"))
    path = stored_path(base)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps({"fingerprint": _fingerprint(files), "source": result.source,
                                "problem": result.problem, "table": result.table.to_json(orient="split")}))
    part.replace(path)
    return path


def snapshot_specificity(base: str, folder: str | None = None,
                         progress: Callable[[float], None] | None = None) -> SnapshotSpecificity:
    """Return the class specificity of every SE block at every training snapshot of embedded model `base`, over the
    bundled reference set (or the labelled `folder`). Measured once per process and reference set; a new or
    retrained snapshot is measured afresh. A ModelError when `base` has no snapshots."""
    epochs = snapshot_epochs(base)
    if not epochs:
        raise ModelError(f"{base} has no training snapshots: train it with `sevis train --snapshots 0 1 2 5 ...`")
    files = sorted(snapshot_dir(base).glob("epoch_*.safetensors"))
    key = (base, folder, tuple((f.name, f.stat().st_mtime_ns) for f in files))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    stored = _read_stored(base, files) if folder is None else None
    if stored is not None:
        with _LOCK:
            _CACHE[key] = stored
        return stored
    rows, source, problem = [], "", None
    for i, epoch in enumerate(epochs):
        ref = reference_statistics(load_model(f"{base}@{epoch}"), folder)
        source, problem = ref.source, problem or too_few_images(ref.stats)
        for depth, block in enumerate(ref.stats.blocks):
            rows.append({"epoch": epoch, "block": block, "depth": depth,
                         "class_specificity": float(ref.stats.class_specificity(block)),
                         "accuracy": np.nan if ref.accuracy is None else float(ref.accuracy)})
        if progress:
            progress((i + 1) / len(epochs))
    result = SnapshotSpecificity(base, source, pd.DataFrame(rows), problem)
    with _LOCK:
        for old in [k for k in _CACHE if k[:2] == (base, folder)]:
            del _CACHE[old]
        _CACHE[key] = result
    return result
