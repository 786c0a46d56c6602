"""What SE adds beyond its input (sevis.analysis.squeeze): z's and the plain twin's class specificity against a
direct computation with hooks of our own, and the verdict against the untrained control's range."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sevis.analysis.inference import split_batches
from sevis.analysis.squeeze import s_and_z_statistics, twin_statistics, what_se_adds
from sevis.core.recorder import find_se_blocks
from sevis.models.zoo import load_model


def between_share(values: np.ndarray, labels: np.ndarray) -> float:
    """Σ_c SS_between / Σ_c SS_total, computed directly from N×C values."""
    grand = values.mean(0)
    between = sum((labels == k).sum() * ((values[labels == k].mean(0) - grand) ** 2).sum() for k in np.unique(labels))
    return float(between / ((values - grand) ** 2).sum())


@pytest.fixture(scope="module")
def small_batches(embedded):
    ref = embedded.reference_set()
    idx = np.concatenate([np.flatnonzero(ref.labels == c)[:20] for c in range(10)])
    from sevis.data.fashion_mnist import Split
    return list(split_batches(embedded, Split(ref.images[idx], ref.labels[idx]), 100))


def pooled_by_hand(model, paths, batches):
    modules = dict(model.named_modules())
    out = {n: [] for n in paths}
    handles = [modules[p].register_forward_pre_hook(lambda m, a, n=n: out[n].append(a[0].mean((2, 3))))
               for n, p in paths.items()]
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    for h in handles:
        h.remove()
    return {n: torch.cat(v).double().numpy() for n, v in out.items()}


def test_z_and_twin_specificity_match_a_direct_computation(embedded, small_batches):
    labels = np.concatenate([y for _, y in small_batches])
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    paths = {b.name: b.path for b in blocks}
    _, z_stats = s_and_z_statistics(embedded, small_batches)
    direct = pooled_by_hand(embedded.model, paths, small_batches)
    for b in blocks:
        assert z_stats.class_specificity(b.name) == pytest.approx(between_share(direct[b.name], labels), rel=1e-6)
    twin = load_model("embedded-plain")
    twin_stats = twin_statistics(twin, blocks, small_batches)
    direct_twin = pooled_by_hand(twin.model, paths, small_batches)
    for b in blocks:
        assert twin_stats.class_specificity(b.name) == pytest.approx(between_share(direct_twin[b.name], labels),
                                                                     rel=1e-6)
    # the twin's features are not the SE model's: a test that compared a model with itself would pass here
    assert not np.allclose(direct_twin["SE_5_1"], direct["SE_5_1"])


def test_what_se_adds_compares_s_minus_z_with_the_control_range(embedded, small_batches):
    from sevis.analysis.squeeze import s_and_z_statistics as both
    s_stats, z_stats = both(embedded, small_batches)
    adds = what_se_adds(embedded, s_stats, small_batches, twin=None, seeds=(0, 1))
    assert list(adds["block"]) == s_stats.blocks
    for _, row in adds.iterrows():
        assert row["s_minus_z"] == pytest.approx(s_stats.class_specificity(row["block"])
                                                 - z_stats.class_specificity(row["block"]))
        lo, hi = row["control_s_minus_z_min"], row["control_s_minus_z_max"]
        assert lo <= row["control_s_minus_z"] <= hi
        expected = True if row["s_minus_z"] > hi else False if row["s_minus_z"] < lo else None
        assert row["adds"] is expected
    assert adds["twin"].isna().all()  # no twin given: said as missing, never made up
