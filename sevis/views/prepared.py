"""Prepared view results: `sevis prepare MODEL` stores the result of every view's default request (every Tour step,
Class × depth, Knock-out, Channel, Ablations, Architectures, Training, …) beside a shipped model's weights, so the
first open of any view reads a file instead of computing for minutes.

The file is JSON (gzip), never a pickle: figures as Plotly JSON, data as pandas' table JSON, files as base64. It is
tied to a format version, the sevis view-code version, the SHA-256 of the weights and of the reference set (the
same fingerprint as the reference-results file); a stale or damaged file is not used, and the view says so.
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from sevis.analysis.precomputed import fingerprint, stale_reasons, weights_file
from sevis.figures.plots import Panel, decode_typed_arrays
from sevis.models.zoo import LoadedModel
from sevis.views.base import ViewRequest, ViewResult, plain_numbers

FORMAT = 1
# Bump when any view's computation or wording changes what a default request returns; tests/test_prepared.py
# recomputes the cheap views and compares them with the shipped files, so a forgotten bump fails there.
VIEWS_VERSION = 5
SUFFIX = ".views.json.gz"


def prepared_path(weights: Path) -> Path:
    """Return where the prepared view results of `weights` live: beside it and its model card."""
    return weights.with_name(weights.stem + SUFFIX)


def panel_to_json(p: Panel) -> dict[str, Any]:
    data = p.data if isinstance(p.data, pd.DataFrame) else pd.DataFrame()
    return {"key": p.key, "title": p.title, "caption": p.caption, "figure": p.figure.to_json(),
            "data": data.to_json(orient="split", date_format="iso", default_handler=str),
            "files": {k: base64.b64encode(v).decode() for k, v in p.files.items()}}


def panel_from_json(d: dict[str, Any]) -> Panel:
    data = pd.read_json(io.StringIO(d["data"]), orient="split", dtype=False)  # keep the columns as written
    figure = go.Figure(decode_typed_arrays(json.loads(d["figure"])), skip_invalid=True)
    return Panel(d["key"], d["title"], d["caption"], figure, data,
                 {k: base64.b64decode(v) for k, v in d["files"].items()})


def result_to_json(r: ViewResult) -> dict[str, Any]:
    return {"slug": r.slug, "title": r.title, "panels": [panel_to_json(p) for p in r.panels],
            "numbers": plain_numbers(r.numbers), "takeaway": r.takeaway, "notes": list(r.notes)}


def result_from_json(d: dict[str, Any]) -> ViewResult:
    return ViewResult(d["slug"], d["title"], [panel_from_json(p) for p in d["panels"]], dict(d["numbers"]),
                      d["takeaway"], list(d["notes"]))


def grids_sha256() -> str:
    """Return a SHA-256 over what the grid views read besides the model (Ablations, Architectures, Training and the
    Tour's training and SE-Inception steps): every card of the ablation and family grids, with its weights file's
    size, and the training snapshots' names and sizes. A run that lands or a card that is re-evaluated makes the
    prepared results stale, so no view shows a table without it."""
    import hashlib

    from sevis.names import DEFAULT_SPEC, ablation_dir, family_dir, snapshot_dir
    h = hashlib.sha256()
    for folder in (ablation_dir(), family_dir(), snapshot_dir(DEFAULT_SPEC)):
        for f in sorted(folder.glob("*")) if folder.is_dir() else []:
            if f.suffix == ".json" and f.name != "summary.json":
                h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
            elif f.suffix == ".safetensors":
                h.update(f"{f.name}:{f.stat().st_size}\0".encode())
    return h.hexdigest()


def current_fingerprint(loaded: LoadedModel) -> dict[str, Any]:
    return {**fingerprint(loaded), "format": FORMAT, "views_version": VIEWS_VERSION, "grids_sha256": grids_sha256()}


def write_prepared(loaded: LoadedModel, results: dict[tuple[str, str], ViewResult]) -> Path:
    """Write `results` ((slug, request key) -> result) beside the model's weights; return the file's path."""
    from sevis.errors import ModelError
    weights = weights_file(loaded)
    if weights is None:
        raise ModelError(f"{loaded.spec} is not a shipped Fashion-MNIST model with a weights file, so its view "
                         "results cannot be prepared")
    doc = {"fingerprint": current_fingerprint(loaded), "model": loaded.spec,
           "results": {f"{slug}/{key}": result_to_json(r) for (slug, key), r in results.items()}}
    path = prepared_path(weights)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(json.dumps(doc).encode(), compresslevel=6, mtime=0))
    os.replace(tmp, path)  # readers never see half a file
    return path


_LOCK = threading.Lock()
_CACHE: dict[tuple[str, float], tuple[dict | None, str | None]] = {}


def _read(path: Path, loaded: LoadedModel) -> tuple[dict | None, str | None]:
    """Return (the file's results by "slug/key", None) when current; (None, why not) when stale or damaged. Read
    once per file version and process (the fingerprint hashes the weights, so it is checked once too)."""
    stamp = (str(path), path.stat().st_mtime)
    with _LOCK:
        if stamp in _CACHE:
            return _CACHE[stamp]
    try:
        doc = json.loads(gzip.decompress(path.read_bytes()))
        current = current_fingerprint(loaded)  # hashes the weights and the grids' cards: once per read
        reasons = stale_reasons(doc["fingerprint"], current)
        for key, word in (("format", "file format"), ("views_version", "views' code"),
                          ("grids_sha256", "trained ablation, family or snapshot runs")):
            if doc["fingerprint"].get(key) != current[key]:
                reasons.append(word)
        out = (None, (f"{path.name} is stale (the {' and '.join(reasons)} changed since it was prepared), so this "
                      f"view is computed afresh; `sevis prepare {loaded.spec}` refreshes it.")) if reasons \
            else (doc["results"], None)
    except Exception as e:  # a damaged file is recomputed, never a failure
        out = (None, f"{path.name} could not be read ({type(e).__name__}), so this view is computed afresh.")
    with _LOCK:
        _CACHE[stamp] = out
    return out


def load_prepared(loaded: LoadedModel, slug: str, request: ViewRequest) -> tuple[ViewResult | None, str | None]:
    """Return (the prepared result of `slug` for exactly this request, None); (None, a note) when the model's file
    is stale or damaged; (None, None) when the model has no file or the request was not prepared."""
    weights = weights_file(loaded)
    path = prepared_path(weights) if weights is not None else None
    if path is None or not path.is_file():
        return None, None
    results, note = _read(path, loaded)
    if results is None:
        return None, note
    stored = results.get(f"{slug}/{request.key()}")
    return (result_from_json(stored), None) if stored is not None else (None, None)
