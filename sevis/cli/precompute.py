"""Writes the precomputed reference-set results of shipped models (sevis.analysis.precomputed reads them):
`python -m sevis.cli.precompute embedded embedded-centred ablation:baseline …`.
"""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sevis.analysis.knockout import knockout_sweep
from sevis.analysis.measures import CONTROL_SEEDS
from sevis.analysis.precomputed import fingerprint, precomputed_path, stats_arrays, weights_file
from sevis.analysis.reference import class_mean_excitations, reference_batches, reference_control, reference_statistics
from sevis.errors import ModelError
from sevis.models.zoo import LoadedModel


def compute(loaded: LoadedModel, progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Return the arrays of a precomputed file for `loaded` over its bundled reference set (what the app's
    Class × depth needs cold: statistics, the control per seed, both knock-out sweeps)."""
    say = progress or (lambda _: None)
    say("reference statistics")
    ref = reference_statistics(loaded, use_precomputed=False)
    say(f"untrained control, seeds {', '.join(map(str, CONTROL_SEEDS))}")
    controls = reference_control(loaded, use_precomputed=False) or []
    batches, sweep_source = reference_batches(loaded)
    sweeps = {}
    for mode in ("identity", "mean"):
        say(f"knock-out sweep ({mode})")
        means = class_mean_excitations(ref.stats, "all") if mode == "mean" else None
        sweeps[mode] = knockout_sweep(loaded, batches, mode=mode, means=means)
    meta = {"fingerprint": fingerprint(loaded), "model": loaded.spec,
            "accuracy": ref.accuracy, "per_class_accuracy": ref.per_class_accuracy, "images": ref.images,
            "source": ref.source, "sweep_source": sweep_source,
            "control": [c.summary().to_dict("list") for c in controls],
            "sweeps": {m: f.to_dict("list") for m, f in sweeps.items()}}
    arrays = stats_arrays("stats", ref.stats)
    arrays["meta"] = np.asarray(json.dumps(meta, default=float))
    return arrays


def write_precomputed(loaded: LoadedModel, progress: Callable[[str], None] | None = None) -> Path:
    """Compute and write `loaded`'s precomputed file beside its weights; return its path."""
    weights = weights_file(loaded)
    if weights is None:
        raise ModelError(f"{loaded.spec} is not a shipped Fashion-MNIST model with a weights file")
    buf = io.BytesIO()
    np.savez_compressed(buf, **compute(loaded, progress))
    path = precomputed_path(weights)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)  # readers never see half a file
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sevis.cli.precompute SPEC …`: write the precomputed file of each shipped model named."""
    from sevis.models.zoo import load_model
    specs = list(sys.argv[1:] if argv is None else argv) or ["embedded"]
    for spec in specs:
        loaded = load_model(spec)
        path = write_precomputed(loaded, progress=lambda what: print(f"{spec}: {what}", flush=True))
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
