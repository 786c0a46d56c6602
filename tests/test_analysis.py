"""ExcitationStats against numpy over all samples at once; specificity and saturation limits; streaming."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sevis.core.statistics import ExcitationStats, cosine_similarity, sample_channels, similarity_by_depth

CLASSES = ["a", "b", "c", "d"]


def _data(seed=0, n=300, channels=(5, 12)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    s = OrderedDict()
    for i, c in enumerate(channels):
        class_effect = rng.uniform(0.2, 0.8, (len(CLASSES), c))
        s[f"B{i}"] = np.clip(class_effect[labels] + rng.normal(0, 0.1 * (i + 1), (n, c)), 0, 1)
    return s, labels


def _stats(s, labels, batch=None):
    stats = ExcitationStats(CLASSES, OrderedDict((k, v.shape[1]) for k, v in s.items()))
    n = len(labels)
    batch = batch or n
    for i in range(0, n, batch):
        stats.update({k: torch.as_tensor(v[i:i + batch], dtype=torch.float32) for k, v in s.items()},
                     labels[i:i + batch])
    return stats


def _numpy_specificity(x, labels):
    grand = x.mean(0)
    between = sum((labels == k).sum() * ((x[labels == k].mean(0) - grand) ** 2).sum()
                  for k in np.unique(labels))
    return between / ((x - grand) ** 2).sum()


def test_against_numpy_over_all_samples():
    s, labels = _data()
    stats = _stats(s, labels, batch=37)
    assert np.array_equal(stats.count, np.bincount(labels, minlength=4))
    for name, x in s.items():
        x = x.astype(np.float32).astype(np.float64)  # what the recorder hands over
        mean = np.stack([x[labels == k].mean(0) for k in range(4)])
        std = np.stack([x[labels == k].std(0) for k in range(4)])
        np.testing.assert_allclose(stats.mean(name), mean, atol=1e-10)
        np.testing.assert_allclose(stats.std(name), std, atol=1e-8)
        np.testing.assert_allclose(stats.overall_mean(name), x.mean(0), atol=1e-10)
        np.testing.assert_allclose(stats.overall_std(name), x.std(0), atol=1e-8)
        assert stats.spread(name) == pytest.approx(x.std(0).mean(), abs=1e-8)
        assert stats.class_specificity(name) == pytest.approx(_numpy_specificity(x, labels), abs=1e-8)
        assert stats.saturation(name) == pytest.approx((x.mean(0) > 0.9).mean(), abs=1e-12)
        row = stats.summary().set_index("block").loc[name]
        assert row["min_s"] == pytest.approx(x.min()) and row["max_s"] == pytest.approx(x.max())
        assert row["images"] == len(labels) and row["channels"] == x.shape[1]
        assert row["mean_s"] == pytest.approx(x.mean(), abs=1e-10)


def test_class_specificity_pooled_over_several_blocks():
    s, labels = _data(channels=(5, 12, 7))
    stats = _stats(s, labels, batch=50)
    x = np.concatenate([v.astype(np.float32).astype(np.float64) for v in s.values()], 1)
    assert stats.class_specificity(list(s)) == pytest.approx(_numpy_specificity(x, labels), abs=1e-8)
    assert stats.class_specificity(["B1"]) == stats.class_specificity("B1")
    assert np.isnan(stats.class_specificity([]))


def test_class_specificity_zero_when_classes_are_identical():
    rng = np.random.default_rng(1)
    per_class = rng.uniform(0, 1, (50, 8))  # the same 50 samples for every class
    x = np.concatenate([per_class] * 4)
    labels = np.repeat(np.arange(4), 50)
    stats = _stats({"B": x}, labels, batch=33)
    assert stats.class_specificity("B") == pytest.approx(0.0, abs=1e-9)
    assert stats.saturation("B") == 0.0  # uniform s: no channel has a mean above 0.9


def test_class_specificity_one_when_the_class_determines_s():
    rng = np.random.default_rng(2)
    per_class = rng.uniform(0, 1, (4, 8))
    labels = rng.integers(0, 4, 200)
    stats = _stats({"B": per_class[labels]}, labels, batch=17)
    assert stats.class_specificity("B") == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(stats.std("B")[np.unique(labels)], 0, atol=1e-6)


def test_constant_gate_is_undefined_for_specificity_and_saturated_only_near_one():
    labels = np.arange(40) % 4
    stats = _stats({"B": np.full((40, 6), 0.7)}, labels)
    assert stats.saturation("B") == 0.0  # constant, but far from 1: the block rescales, it does not pass on
    assert np.isnan(stats.class_specificity("B"))  # no variance at all: 0/0 is undefined, never 0 or 1
    assert stats.spread("B") == pytest.approx(0.0, abs=1e-6)
    near_one = _stats({"B": np.full((40, 6), 0.97)}, labels)
    assert near_one.saturation("B") == 1.0


def test_specificity_rises_with_the_share_of_class_signal():
    s, labels = _data(channels=(6, 6, 6))  # same class effect size, noise grows with depth index
    stats = _stats(s, labels)
    spec = [stats.class_specificity(name) for name in s]
    assert spec[0] > spec[1] > spec[2]
    assert all(0 <= v <= 1 for v in spec)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 120))
def test_streaming_equals_batch(seed, batch):
    s, labels = _data(seed=seed, n=120)
    once, streamed = _stats(s, labels), _stats(s, labels, batch=batch)
    for name in s:
        np.testing.assert_allclose(streamed.mean(name), once.mean(name), atol=1e-12)
        np.testing.assert_allclose(streamed.std(name), once.std(name), atol=1e-9)
        assert streamed.class_specificity(name) == pytest.approx(once.class_specificity(name), abs=1e-9)
        assert streamed.saturation(name) == pytest.approx(once.saturation(name), abs=1e-9)
    a, b = streamed.summary(), once.summary()
    np.testing.assert_allclose(a[["min_s", "max_s"]].to_numpy(), b[["min_s", "max_s"]].to_numpy())


def test_memory_does_not_grow_with_images():
    s, labels = _data(n=50)
    stats = _stats(s, labels)
    sizes = [acc.total.nbytes + acc.total_sq.nbytes for acc in stats._acc.values()]
    for _ in range(20):
        stats.update(s, labels)
    assert [acc.total.nbytes + acc.total_sq.nbytes for acc in stats._acc.values()] == sizes
    assert stats.count.sum() == 21 * 50


def test_missing_classes_and_mismatched_rows():
    stats = ExcitationStats(CLASSES, {"B": 3})
    stats.update({"B": np.full((4, 3), 0.5)}, np.array([0, 0, 1, 1]))
    assert np.isnan(stats.mean("B")[2]).all() and not np.isnan(stats.mean("B")[:2]).any()
    assert np.isnan(stats.class_specificity("B"))  # s constant: undefined
    frame = stats.class_means_frame("B")
    assert set(frame["class"]) == set(CLASSES) | {"all"} and len(frame) == 5 * 3
    with pytest.raises(ValueError, match="3 labels"):
        stats.update({"B": np.zeros((2, 3))}, np.array([0, 1, 2]))
    empty = ExcitationStats(CLASSES, {"B": 3})
    assert np.isnan(empty.class_specificity("B")) and np.isnan(empty.saturation("B"))


def test_sample_channels():
    assert list(sample_channels(10, None)) == list(range(10))
    assert list(sample_channels(10, 3, "first")) == [0, 1, 2]
    picked = sample_channels(2048, 50)
    assert len(picked) == 50 == len(set(picked)) and np.all(np.diff(picked) > 0)
    assert picked[0] == 0 and picked[-1] == 2047  # evenly spaced over every channel, not a random draw
    assert np.ptp(np.diff(picked)) <= 1 and np.array_equal(picked, sample_channels(2048, 50, seed=7))
    assert list(sample_channels(256, 5)) == [0, 64, 128, 191, 255]
    with pytest.raises(ValueError):
        sample_channels(10, 3, "random-walk")


def test_similarity_measures():
    a = {"B0": np.array([1.0, 0, 0]), "B1": np.array([0.2, 0.4, 0.9])}
    b = {"B0": np.array([0.0, 1, 0]), "B1": np.array([0.4, 0.8, 1.8])}
    assert cosine_similarity(a["B0"], b["B0"]) == pytest.approx(0.0)
    assert cosine_similarity(a["B1"], b["B1"]) == pytest.approx(1.0)
    df = similarity_by_depth(a, b)
    assert list(df["block"]) == ["B0", "B1"] and df["pearson"].iloc[1] == pytest.approx(1.0)
    assert df["mean_abs_diff"].iloc[0] == pytest.approx(2 / 3)


def test_outside_shares_count_values_below_zero_at_zero_and_above_one_across_batches():
    # A first batch inside (0, 1] and a later one outside it: the counts must still cover every value.
    rng = np.random.default_rng(3)
    labels = rng.integers(0, len(CLASSES), 200)
    inside = rng.uniform(0.1, 1.0, (100, 6))
    outside = rng.uniform(-0.5, 1.5, (100, 6))
    outside[:10, 0] = 0.0
    s = OrderedDict(B=np.concatenate([inside, outside]))
    stats = _stats(s, labels, batch=100)
    x = s["B"].astype(np.float32)
    assert stats.outside_shares("B") == pytest.approx(
        {"below_zero": (x < 0).mean(), "zero": (x == 0).mean(), "above_one": (x > 1).mean()})
    again = ExcitationStats.from_dict(stats.to_dict())
    assert again.outside_shares("B") == stats.outside_shares("B")
    sigmoid_like = _stats(OrderedDict(B=inside), labels[:100])
    assert sigmoid_like.outside_shares("B") == {"below_zero": 0.0, "zero": 0.0, "above_one": 0.0}
