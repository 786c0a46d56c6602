"""Precomputed reference-set results of the shipped models, stored beside their model card, so a cold Class × depth
does not recompute them on every server: the per-class statistics over the bundled reference set, the untrained
control's per-block summary for each seed, and both knock-out sweeps.

The file (<weights stem>.reference.npz) is tied to what it was computed from: the format VERSION, the SHA-256 of
the weights and of the bundled reference set, and the control's seeds. When any of them differs the file is stale:
`load_precomputed` says so in a note and the app computes afresh. `python -m sevis.cli.precompute embedded …`
(sevis/cli/precompute.py) (re)writes the files.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sevis.analysis.measures import CONTROL_SEEDS
from sevis.core.statistics import ExcitationStats
from sevis.models.zoo import LoadedModel

VERSION = 1  # bump when what is stored, or how it is computed, changes
SUFFIX = ".reference.npz"


class StoredSummary:
    """A control seed's per-block summary (ExcitationStats.summary), standing in for its statistics wherever only
    the summary is read (sevis.core.statistics.depth_measures)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def summary(self) -> pd.DataFrame:
        return self.frame.copy()


@dataclass
class Precomputed:
    """What a shipped model's file holds, read back."""

    stats: ExcitationStats
    accuracy: float | None
    per_class_accuracy: dict | None
    images: int
    source: str
    control: list[StoredSummary]  # one per seed of CONTROL_SEEDS
    sweeps: dict[str, pd.DataFrame]  # "identity", "mean": sevis.analysis.knockout.knockout_sweep frames
    sweep_source: str
    fingerprint: dict


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of the file at `path` (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_file(loaded: LoadedModel) -> Path | None:
    """Return the weights file of a shipped Fashion-MNIST model (embedded models, ablation and family runs), else
    None (ImageNet models, sevis architectures and uploads carry no precomputed file)."""
    from sevis.models.zoo import weights_path
    from sevis.names import EMBEDDED
    spec = loaded.spec
    if loaded.source == "sevis":  # a shipped name with random weights (pretrained=False)
        return None
    if loaded.dataset != "fashion-mnist" or not (spec in EMBEDDED or spec.startswith(("ablation:", "family:"))):
        return None
    path = weights_path(spec)
    return path if path is not None and path.suffix == ".safetensors" and path.is_file() else None


def weights_sha256(loaded: LoadedModel) -> str:
    """Return the SHA-256 of the weights the model holds now (its state dict, names and values in order): random
    weights under a shipped name never match the shipped file's."""
    import torch
    h = hashlib.sha256()
    for name, t in loaded.model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def precomputed_path(weights: Path) -> Path:
    """Return where the precomputed file of `weights` lives: beside it and its model card."""
    return weights.with_name(weights.stem + SUFFIX)


def fingerprint(loaded: LoadedModel) -> dict:
    """Return what a precomputed file must match to be current: version, weights, reference set, control seeds."""
    from sevis.data.fashion_mnist import REFERENCE_PATHS
    reference = REFERENCE_PATHS.get(loaded.data_variant, REFERENCE_PATHS["centred"])
    return {"version": VERSION, "weights_sha256": weights_sha256(loaded), "reference_sha256": file_sha256(reference),
            "control_seeds": list(CONTROL_SEEDS)}


def stale_reasons(stored: dict, current: dict) -> list[str]:
    """Return what differs between a file's fingerprint and the current one, in words (empty: current)."""
    words = {"version": "file format", "weights_sha256": "weights", "reference_sha256": "reference set",
             "control_seeds": "control seeds"}
    return [w for k, w in words.items() if stored.get(k) != current.get(k)]


def stats_arrays(prefix: str, stats: ExcitationStats) -> dict[str, np.ndarray]:
    data = stats.to_dict()
    out = {f"{prefix}/classes": np.asarray(data["classes"]), f"{prefix}/blocks": np.asarray(list(data["blocks"]))}
    for name, b in data["blocks"].items():
        out[f"{prefix}/{name}/count"] = np.asarray(b["count"], np.float64)
        out[f"{prefix}/{name}/total"] = np.asarray(b["total"], np.float64)
        out[f"{prefix}/{name}/total_sq"] = np.asarray(b["total_sq"], np.float64)
        out[f"{prefix}/{name}/range"] = np.asarray([np.nan if b["min"] is None else b["min"],
                                                    np.nan if b["max"] is None else b["max"]])
        out[f"{prefix}/{name}/outside"] = np.asarray(b["outside"], np.float64)
    return out


def _stats_from(data, prefix: str) -> ExcitationStats:
    blocks = {}
    for name in data[f"{prefix}/blocks"]:
        name = str(name)
        lo, hi = data[f"{prefix}/{name}/range"]
        total = data[f"{prefix}/{name}/total"]
        blocks[name] = {"channels": total.shape[1], "count": data[f"{prefix}/{name}/count"], "total": total,
                        "total_sq": data[f"{prefix}/{name}/total_sq"], "min": None if np.isnan(lo) else float(lo),
                        "max": None if np.isnan(hi) else float(hi), "outside": data[f"{prefix}/{name}/outside"]}
    return ExcitationStats.from_dict({"classes": [str(c) for c in data[f"{prefix}/classes"]], "blocks": blocks})


def read_precomputed(path: Path) -> Precomputed:
    """Return the contents of a precomputed file (no freshness check: load_precomputed does that)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        stats = _stats_from(data, "stats")
    control = [StoredSummary(pd.DataFrame(c)) for c in meta["control"]]
    sweeps = {m: pd.DataFrame(f) for m, f in meta["sweeps"].items()}
    return Precomputed(stats, meta["accuracy"], meta["per_class_accuracy"], int(meta["images"]), meta["source"],
                       control, sweeps, meta["sweep_source"], meta["fingerprint"])


def load_precomputed(loaded: LoadedModel) -> tuple[Precomputed | None, str | None]:
    """Return (the model's precomputed results, None) when its file is current; (None, a note saying why it is
    not used) when the file is stale or unreadable; (None, None) when the model has no file."""
    weights = weights_file(loaded)
    path = precomputed_path(weights) if weights else None
    if path is None or not path.is_file():
        return None, None
    from sevis.data.fashion_mnist import REFERENCE_PATHS
    if not REFERENCE_PATHS.get(loaded.data_variant, REFERENCE_PATHS["centred"]).is_file():
        return None, None  # no bundled reference set to check against: loading it says what is missing
    try:
        pre = read_precomputed(path)
    except Exception as e:  # a damaged file is recomputed, never a failure
        return None, f"{path.name} could not be read ({type(e).__name__}); the reference results are computed afresh."
    reasons = stale_reasons(pre.fingerprint, fingerprint(loaded))
    if reasons:
        return None, (f"{path.name} is stale: the {' and '.join(reasons)} of {loaded.spec} changed since it was "
                      "computed, so the reference results are computed afresh (refresh the file with "
                      f"`python -m sevis.cli.precompute {loaded.spec}`).")
    return pre, None
