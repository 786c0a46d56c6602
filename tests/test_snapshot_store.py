"""The training snapshots' class-specificity table that `sevis prepare` stores beside the default model's snapshots
(the Tour's training step reads it instead of measuring nine networks): it is current for the shipped snapshots,
equals a direct measurement, and a file that no longer matches is not used."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sevis.analysis import snapshot_measures as sm
from sevis.analysis.reference import reference_statistics
from sevis.models.zoo import load_model
from sevis.names import DEFAULT_SPEC, snapshot_dir, snapshot_epochs


def _files():
    return sorted(snapshot_dir(DEFAULT_SPEC).glob("epoch_*.safetensors"))


def test_the_shipped_table_is_current_and_equals_a_direct_measurement():
    stored = sm._read_stored(DEFAULT_SPEC, _files())
    assert stored is not None, "run `sevis prepare embedded` after retraining the snapshots"
    assert stored.epochs == snapshot_epochs(DEFAULT_SPEC)
    last = snapshot_epochs(DEFAULT_SPEC)[-1]
    ref = reference_statistics(load_model(f"{DEFAULT_SPEC}@{last}"))
    direct = [float(ref.stats.class_specificity(b)) for b in ref.stats.blocks]
    rows = stored.table[stored.table["epoch"] == last]
    assert list(rows["block"]) == list(ref.stats.blocks)
    np.testing.assert_allclose(rows["class_specificity"], direct, rtol=1e-5)


def test_a_table_for_other_snapshots_is_not_used(tmp_path, monkeypatch):
    stored = json.loads(sm.stored_path(DEFAULT_SPEC).read_text())
    stored["fingerprint"]["snapshots"]["epoch_000.safetensors"] = "0" * 64  # as if epoch 0 were retrained
    fake = tmp_path / sm.STORED_NAME
    fake.write_text(json.dumps(stored))
    monkeypatch.setattr(sm, "stored_path", lambda base: fake)
    assert sm._read_stored(DEFAULT_SPEC, _files()) is None
    fake.write_text("{not json")
    assert sm._read_stored(DEFAULT_SPEC, _files()) is None


@pytest.mark.parametrize("broken", ["", "[]", '{"fingerprint": 1}'])
def test_a_damaged_table_is_not_used(tmp_path, monkeypatch, broken):
    fake = tmp_path / sm.STORED_NAME
    fake.write_text(broken)
    monkeypatch.setattr(sm, "stored_path", lambda base: fake)
    assert sm._read_stored(DEFAULT_SPEC, _files()) is None
