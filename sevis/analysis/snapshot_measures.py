"""How class specificity emerged during training, per SE block, read from the training snapshots `sevis train
--snapshots` kept (<embedded model>@<epoch>; epoch 0 is the initialisation, the untrained network): each snapshot's
per-class excitation statistics over one reference set (the bundled one, or a labelled folder), measured once per
process. The Tour's training step reads it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

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
