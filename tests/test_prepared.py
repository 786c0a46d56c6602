"""Prepared view results (`sevis prepare`): every shipped model ships a current file; what it stores equals a fresh
computation (so a change to a view without a VIEWS_VERSION bump fails here); a stale or damaged file is not used,
and the view says so."""
from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from sevis.analysis.precomputed import weights_file
from sevis.figures.plots import decode_typed_arrays
from sevis.models.zoo import load_model
from sevis.names import EMBEDDED
from sevis.views import prepared as P
from sevis.views.base import ViewRequest
from sevis.views.registry import compute_view, default_requests

# The model runs in float32, and its sums come out a few ulps apart with another number of threads (the file was
# prepared with two): numbers agree to float32 precision, not bit for bit.
RTOL = 1e-5  # relative, and absolute for values near 0 (s lies in [0, 1] for a sigmoid gate)


def same(a, b) -> bool:
    """Return whether two stored values agree: numbers to RTOL, arrays element-wise, everything else exactly."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
            return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=RTOL, equal_nan=True)
        return a.shape == b.shape and bool((a == b).all())
    if isinstance(a, float) and isinstance(b, (int, float)):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RTOL, abs_tol=RTOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def figure_values(fig) -> dict:
    """Return a figure as plain values, its typed arrays decoded (so arrays compare as numbers)."""
    return decode_typed_arrays(json.loads(fig.to_json()))


@pytest.mark.parametrize("spec", list(EMBEDDED))
def test_every_shipped_model_ships_current_prepared_results(spec):
    loaded = load_model(spec)
    path = P.prepared_path(weights_file(loaded))
    assert path.is_file(), f"run `sevis prepare {spec}`"
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert doc["fingerprint"] == P.current_fingerprint(loaded), f"stale: run `sevis prepare {spec}`"
    stored = set(doc["results"])
    for slug, requests in default_requests(loaded).items():
        for request in requests:
            assert f"{slug}/{request.key()}" in stored, (spec, slug, request.step)


@pytest.mark.slow
def test_prepared_results_equal_a_fresh_computation(embedded):
    for slug, requests in default_requests(embedded).items():
        for request in requests:
            stored, note = P.load_prepared(embedded, slug, request)
            assert stored is not None and note is None, slug
            fresh = compute_view(embedded, slug, request, prepared=False)
            where = f"{slug} step {request.step}" if request.step is not None else slug
            assert stored.panel_titles() == fresh.panel_titles(), where
            assert stored.takeaway == fresh.takeaway, where
            assert stored.notes == fresh.notes, where
            assert set(stored.numbers) == set(fresh.numbers), where
            for name, value in fresh.numbers.items():
                assert same(stored.numbers[name], value), (where, name, stored.numbers[name], value)
            for a, b in zip(stored.panels, fresh.panels):
                assert a.caption == b.caption and a.data.shape == b.data.shape, (where, a.key)
                # the figure read back is the figure computed: arrays as arrays (not Plotly's typed-array dicts)
                # the figure read back is the figure computed: its traces, their names and numbers (to float32
                # precision; a colour picked by the sign of a difference near 0 may flip, so colours are not compared)
                fa, fb = figure_values(a.figure), figure_values(b.figure)
                assert fa["layout"].get("title") == fb["layout"].get("title"), (where, a.key)
                assert len(fa["data"]) == len(fb["data"]), (where, a.key)
                for ta, tb in zip(fa["data"], fb["data"]):
                    assert ta.get("type") == tb.get("type") and ta.get("name") == tb.get("name"), (where, a.key)
                    for axis in ("x", "y", "z"):
                        if isinstance(ta.get(axis), np.ndarray):  # read back as an array, not a typed-array dict
                            assert same(ta[axis], tb.get(axis)), (where, a.key, axis)


def test_a_stale_or_damaged_file_is_not_used_and_the_view_says_so(embedded, tmp_path, monkeypatch):
    real = P.prepared_path(weights_file(embedded))
    doc = json.loads(gzip.decompress(real.read_bytes()))
    request = default_requests(embedded)["architecture"][0]
    copy = tmp_path / real.name
    monkeypatch.setattr(P, "prepared_path", lambda weights: copy)

    copy.write_bytes(gzip.compress(json.dumps(doc).encode()))
    result, note = P.load_prepared(embedded, "architecture", request)
    assert result is not None and note is None  # the same content at another path reads

    doc["fingerprint"]["weights_sha256"] = "0" * 64  # weights changed since it was prepared
    copy.write_bytes(gzip.compress(json.dumps(doc).encode()))
    result, note = P.load_prepared(embedded, "architecture", request)
    assert result is None and "is stale (the weights changed" in note and "sevis prepare embedded" in note
    shown = compute_view(embedded, "architecture", request)
    assert shown.notes[0] == note and shown.panels  # computed afresh, and it says why

    copy.write_bytes(b"\x1f\x8b not gzip at all")
    result, note = P.load_prepared(embedded, "architecture", request)
    assert result is None and "could not be read" in note


def test_a_request_that_was_not_prepared_is_computed(embedded):
    request = ViewRequest(classes=("Bag", "Sandal"))
    assert P.load_prepared(embedded, "class-depth", request) == (None, None)
    result = compute_view(embedded, "class-depth", request)
    assert "Bag" in result.panel("fig6_class_means").data["class"].tolist()


def test_random_weights_under_a_shipped_name_never_read_the_file():
    loaded = load_model("embedded", pretrained=False)
    assert weights_file(loaded) is None
    assert P.load_prepared(loaded, "architecture", ViewRequest()) == (None, None)


def test_a_family_run_that_lands_makes_the_prepared_results_stale(embedded, tmp_path, monkeypatch):
    """The Architectures view (and the Tour's SE-Inception step) read the family grid's cards: a grid with one more
    run, or a re-evaluated card, is not the grid the file was prepared with, so its results are not used."""
    import shutil

    from sevis.names import family_dir
    real = P.prepared_path(weights_file(embedded))
    doc = json.loads(gzip.decompress(real.read_bytes()))
    copy = tmp_path / real.name
    copy.write_bytes(gzip.compress(json.dumps(doc).encode()))
    monkeypatch.setattr(P, "prepared_path", lambda weights: copy)
    grid = tmp_path / "families"
    shutil.copytree(family_dir(), grid, ignore=shutil.ignore_patterns("*.lock", "*.resume.pt", "*.part"))
    monkeypatch.setenv("SEVIS_FAMILY_DIR", str(grid))
    P._CACHE.clear()
    request = default_requests(embedded)["architectures"][0]
    assert P.load_prepared(embedded, "architectures", request)[0] is not None  # the same grid elsewhere reads
    card = next(grid.glob("vgg.json"))
    card.write_text(card.read_text().replace('"seed": 0', '"seed": 0 ', 1))  # a re-evaluated card
    P._CACHE.clear()
    result, note = P.load_prepared(embedded, "architectures", request)
    assert result is None and "trained ablation, family or snapshot runs changed" in note
