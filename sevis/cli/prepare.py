"""`sevis prepare [MODEL …]`: compute every view's default results for a shipped model (each Tour step, Class ×
depth, Knock-out, Channel, Ablations, Architectures, Training, …) and store them beside its weights, so that the
first open of any view reads a file. Also refreshes the model's reference results (statistics, control, sweeps),
which several views read, the class specificity of its training snapshots (the Tour's training step) and the fit of
its domain verdict (sevis.analysis.domain)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def prepare(spec: str, say=print) -> Path:
    """Write the reference results and the prepared view results of shipped model `spec`; return the views file."""
    from sevis.cli.precompute import write_precomputed
    from sevis.models.zoo import load_model
    from sevis.views.prepared import write_prepared
    from sevis.views.registry import compute_view, default_requests

    loaded = load_model(spec)
    start = time.perf_counter()
    say(f"{spec}: reference results (statistics, untrained control, knock-out sweeps)")
    write_precomputed(loaded)
    from sevis.analysis.domain import store_calibration
    say(f"{spec}: domain verdict")
    stored = store_calibration(loaded)
    if stored is not None:
        say(f"wrote {stored}")
    from sevis.names import snapshot_epochs
    if snapshot_epochs(spec):  # the Tour's training step reads its snapshots' table, for every model
        from sevis.analysis.snapshot_measures import store
        say(f"{spec}: class specificity at each training snapshot")
        say(f"wrote {store(spec)}")
    results = {}
    for slug, requests in default_requests(loaded).items():
        for request in requests:
            t = time.perf_counter()
            results[(slug, request.key())] = compute_view(loaded, slug, request, prepared=False)
            what = f" step {request.step + 1}" if request.step is not None else ""
            say(f"{spec}: {slug}{what} ({time.perf_counter() - t:.1f} s)")
    path = write_prepared(loaded, results)
    say(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(results)} results, "
        f"{time.perf_counter() - start:.0f} s)")
    return path


def _cmd_prepare(args: argparse.Namespace) -> int:
    from sevis.cli.args import embedded_names
    for spec in args.models or list(embedded_names()):
        prepare(spec, say=lambda line: print(line, flush=True))
    return 0


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="store every view's default results beside a shipped model, so views open "
                                       "at once (run after retraining; a stale file is recomputed with a note)")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="shipped model specs (default: every embedded model: embedded, embedded-plain, …)")
    p.set_defaults(func=_cmd_prepare)
