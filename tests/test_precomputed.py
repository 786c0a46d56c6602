"""Shipped models' precomputed reference results (sevis.analysis.precomputed): the numbers equal a direct computation,
a file whose weights, reference set or version differ is detected as stale and recomputed with a note, and random
weights under a shipped name never use it."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from sevis import load_model
from sevis.analysis import precomputed as P
from sevis.analysis.knockout import knockout_sweep
from sevis.analysis.reference import reference_batches, reference_control, reference_statistics

SPEC = "embedded-centred"  # the smaller shipped model: its file is quick to recompute


@pytest.fixture(scope="module")
def loaded():
    return load_model(SPEC)


@pytest.fixture
def private_file(loaded, tmp_path, monkeypatch):
    """A copy of the shipped file (or a fresh one) that the test may damage, read in place of the shipped one."""
    from sevis.cli.precompute import write_precomputed
    weights = P.weights_file(loaded)
    assert weights is not None
    target = tmp_path / P.precomputed_path(weights).name
    monkeypatch.setattr(P, "precomputed_path", lambda w: target)
    shipped = weights.with_name(weights.stem + P.SUFFIX)
    pre, note = (P.read_precomputed(shipped), None) if shipped.is_file() else (None, None)
    if pre is not None and not P.stale_reasons(pre.fingerprint, P.fingerprint(loaded)):
        shutil.copy(shipped, target)
    else:
        write_precomputed(loaded)
    return target


def _rewrite_meta(path, change) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.asarray(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


@pytest.mark.slow
def test_precomputed_numbers_equal_a_direct_computation(loaded, private_file):
    pre, note = P.load_precomputed(loaded)
    assert pre is not None and note is None
    fresh = reference_statistics(loaded, use_precomputed=False)
    used = reference_statistics(loaded)
    assert used.note is None and used.accuracy == fresh.accuracy and used.images == fresh.images == 1000
    for block in fresh.stats.blocks:
        np.testing.assert_array_equal(used.stats.mean(block), fresh.stats.mean(block))
        np.testing.assert_array_equal(used.stats.std(block), fresh.stats.std(block))
    direct = reference_control(loaded, use_precomputed=False)
    stored = reference_control(loaded)
    assert len(stored) == len(direct) == 3
    for a, b in zip(stored, direct):
        pd.testing.assert_frame_equal(a.summary(), b.summary(), check_dtype=False, atol=1e-12)
    batches, _ = reference_batches(loaded)
    sweep = knockout_sweep(loaded, batches, mode="identity")
    np.testing.assert_allclose(pre.sweeps["identity"]["accuracy"], sweep["accuracy"], atol=1e-12)
    assert list(pre.sweeps["identity"]["block"]) == list(sweep["block"])


@pytest.mark.parametrize("field, words", [("weights_sha256", "weights"), ("reference_sha256", "reference set"),
                                          ("version", "file format")])
def test_a_stale_file_is_detected_and_recomputed_with_a_note(loaded, private_file, field, words):
    _rewrite_meta(private_file, lambda meta: meta["fingerprint"].update({field: "something else"}))
    pre, note = P.load_precomputed(loaded)
    assert pre is None and f"stale: the {words} of {SPEC} changed" in note and "computed afresh" in note
    ref = reference_statistics(loaded)
    assert ref.note == note  # the view shows why it computed
    fresh = reference_statistics(loaded, use_precomputed=False)
    np.testing.assert_array_equal(ref.stats.mean(ref.stats.blocks[-1]), fresh.stats.mean(fresh.stats.blocks[-1]))


def test_a_damaged_file_is_recomputed(loaded, private_file):
    private_file.write_bytes(b"not an npz")
    pre, note = P.load_precomputed(loaded)
    assert pre is None and "could not be read" in note


def test_changed_weights_make_the_file_stale(loaded, private_file):
    import copy

    import torch
    other = copy.copy(loaded)
    other.model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        next(other.model.parameters()).add_(1e-3)
    pre, note = P.load_precomputed(other)
    assert pre is None and "the weights of" in note


def test_random_weights_under_a_shipped_name_use_no_file():
    random = load_model(SPEC, pretrained=False)
    assert P.weights_file(random) is None and P.load_precomputed(random) == (None, None)
    assert P.weights_file(load_model("timm:seresnet50", pretrained=False)) is None
