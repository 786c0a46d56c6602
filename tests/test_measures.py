"""The depth measures against numpy on data with a known answer, the untrained control, the paper table."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch

from sevis.analysis.control import untrained_control
from sevis.analysis.inference import collect_statistics, split_batches
from sevis.analysis.paper import paper_vs_model
from sevis.core.statistics import ExcitationStats, depth_measures

CLASSES = ["a", "b", "c"]


def _stats(blocks: dict[str, np.ndarray], labels: np.ndarray) -> ExcitationStats:
    stats = ExcitationStats(CLASSES, OrderedDict((k, v.shape[1]) for k, v in blocks.items()))
    stats.update({k: torch.as_tensor(v) for k, v in blocks.items()}, labels)
    return stats


def test_identical_class_means_give_zero_share_and_zero_decorrelation():
    rng = np.random.default_rng(0)
    profile = rng.uniform(0.2, 0.8, 16)
    labels = np.repeat([0, 1, 2], 50)
    noise = rng.normal(0, 0.05, (150, 16))
    noise -= np.stack([noise[labels == k].mean(0) for k in range(3)])[labels]  # every class mean exactly `profile`
    stats = _stats({"B": profile + noise}, labels)
    assert stats.class_specificity("B") == pytest.approx(0.0, abs=1e-9)
    assert stats.decorrelation("B") == pytest.approx(0.0, abs=1e-9)
    assert stats.between_class_spread("B") == pytest.approx(0.0, abs=1e-9)
    assert stats.near_all_share("B") == 1.0


def test_disjoint_constant_classes_give_share_one():
    # Every image of a class has the same s, and classes differ: s is fully determined by the class.
    labels = np.repeat([0, 1, 2], 10)
    levels = np.array([[0.1, 0.9, 0.5, 0.3], [0.8, 0.2, 0.4, 0.6], [0.5, 0.5, 0.9, 0.1]])
    stats = _stats({"B": levels[labels]}, labels)
    assert stats.class_specificity("B") == pytest.approx(1.0, abs=1e-9)
    r = np.corrcoef(levels)
    assert stats.decorrelation("B") == pytest.approx(1 - r[np.triu_indices(3, 1)].mean(), abs=1e-9)
    assert stats.between_class_spread("B") == pytest.approx(levels.std(0).mean(), abs=1e-9)


def test_one_pattern_up_to_scale_has_zero_decorrelation_but_a_spread():
    # The paper's SE_5_3: the same profile for every class, scaled: correlation 1, yet class means differ.
    profile = np.linspace(0.1, 0.5, 8)
    labels = np.repeat([0, 1, 2], 5)
    s = (profile[None] * np.array([1.0, 1.5, 1.9])[:, None])[labels]
    stats = _stats({"B": s}, labels)
    assert stats.decorrelation("B") == pytest.approx(0.0, abs=1e-9)
    assert stats.between_class_spread("B") > 0.05


def test_saturation_is_the_share_of_channels_with_mean_above_point_nine():
    labels = np.repeat([0, 1, 2], 4)
    s = np.tile(np.array([0.95, 0.99, 0.91, 0.5, 0.89]), (12, 1))
    stats = _stats({"B": s}, labels)
    assert stats.saturation("B") == pytest.approx(3 / 5)
    assert stats.summary().loc[0, "mean_s"] == pytest.approx(s.mean())


def test_degenerate_variance_is_undefined_never_zero_or_one():
    labels = np.repeat([0, 1, 2], 4)
    stats = _stats({"B": np.full((12, 6), 0.5)}, labels)  # s constant: 0/0
    assert np.isnan(stats.class_specificity("B"))
    assert np.isnan(stats.decorrelation("B"))  # flat class profiles: r undefined
    one_class = _stats({"B": np.random.default_rng(1).uniform(size=(5, 6))}, np.zeros(5, int))
    assert np.isnan(one_class.decorrelation("B")) and one_class.min_class_count() == 0


def test_depth_measures_subtract_the_control():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 90)
    trained = _stats({"B1": rng.uniform(size=(90, 5)), "B2": np.eye(3)[labels].repeat(2, 1)}, labels)
    control = _stats({"B1": rng.uniform(size=(90, 5)), "B2": rng.uniform(size=(90, 6))}, labels)
    m = depth_measures(trained, control, {"B1": 2, "B2": 3})
    assert list(m["stage"]) == [2, 3]
    np.testing.assert_allclose(m["learned_specificity"], m["class_specificity"] - m["control_class_specificity"])
    assert m.loc[1, "class_specificity"] == pytest.approx(1.0)
    assert m.loc[1, "control_class_specificity"] == pytest.approx(control.class_specificity("B2"))


def _measures(**cols) -> pd.DataFrame:
    blocks = ["SE_2_1", "SE_2_2", "SE_5_1", "SE_5_2", "SE_5_3"]
    base = {"block": blocks, "stage": [2, 2, 5, 5, 5], "near_all_share": [0.9, 0.8, 0.2, 0.3, 0.4],
            "class_specificity": [0.1, 0.1, 0.6, 0.5, 0.5], "decorrelation": [0.1, 0.1, 0.6, 0.4, 0.05],
            "saturation": [0.0, 0.0, 0.1, 0.8, 0.0], "mean_s": [0.5, 0.5, 0.5, 0.92, 0.4]}
    base.update(cols)
    return pd.DataFrame(base)


def test_paper_table_verdicts_follow_the_numbers():
    ko = pd.DataFrame({"block": ["none", "SE_5_1", "SE_5_2", "SE_5_3"], "change": [0.0, -0.002, -0.001, -0.004]})
    t = paper_vs_model(_measures(), ko).set_index("finding")
    assert t.loc["class-agnostic early", "blocks"] == "SE_2_2"  # the last block of the first stage
    assert list(t["shows"]) == ["yes"] * 5
    assert "80% of class means" in t.loc["class-agnostic early", "this_model"]
    # Change the numbers and the verdicts change with them.
    t2 = paper_vs_model(_measures(near_all_share=[0.9, 0.3, 0.2, 0.3, 0.4], saturation=[0, 0, 0, 0.2, 0],
                                  decorrelation=[0.1, 0.7, 0.6, 0.4, 0.5]),
                        ko.assign(change=[0, -0.05, 0, 0])).set_index("finding")
    assert list(t2["shows"]) == ["no"] * 5
    assert "5.0 pts at SE_5_1" in t2.loc["late SE removable", "this_model"]
    # Without a sweep, or without a third last-stage block, the finding cannot be judged.
    t3 = paper_vs_model(_measures().iloc[:4]).set_index("finding")
    assert t3.loc["one pattern, scaled", "shows"] == "n/a" and t3.loc["late SE removable", "shows"] == "n/a"


def test_a_block_whose_s_never_varies_is_named_not_a_bare_na():
    # integration-identity's SE_2_3 gives every image the same s (spread 0): specificity is 0/0, and says why.
    t = paper_vs_model(_measures(class_specificity=[0.1, float("nan"), 0.6, 0.5, 0.5],
                                 spread=[0.1, 0.0, 0.2, 0.2, 0.2])).set_index("finding")
    assert "class specificity n/a (s is the same for every image)" in t.loc["class-agnostic early", "this_model"]
    assert t.loc["class-specific late", "this_model"].startswith(
        "class specificity n/a (s is the same for every image) at SE_2_2 → 0.60 at SE_5_1")
    assert t.loc["class-specific late", "shows"] == "n/a"
    # Undefined for another reason (no spread measured): a bare n/a.
    t2 = paper_vs_model(_measures(class_specificity=[0.1, float("nan"), 0.6, 0.5, 0.5])).set_index("finding")
    assert "class specificity n/a at SE_2_2" in t2.loc["class-specific late", "this_model"]


@pytest.mark.slow
def test_untrained_control_is_deterministic_and_recalibrated(embedded):
    ref = embedded.reference_set()
    batches = list(split_batches(embedded, ref, 250))
    a = untrained_control(embedded, (x for x, _ in batches), seed=0)
    b = untrained_control(embedded, (x for x, _ in batches), seed=0)
    c = untrained_control(embedded, (x for x, _ in batches), seed=1)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    assert not torch.equal(a.model.conv1.weight, c.model.conv1.weight)
    assert not torch.equal(a.model.conv1.weight, embedded.model.conv1.weight)  # the shipped model is untouched
    # BatchNorm statistics are those of the data: the stem's BN sees its inputs at mean ≈ running_mean.
    x = torch.cat([x for x, _ in batches])
    with torch.no_grad():
        h = a.model.conv1(x)
    torch.testing.assert_close(a.model.bn1.running_mean, h.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    # Its statistics are the same twice, and its gates are not saturated by stale BN statistics.
    sa, fa = collect_statistics(a, batches)
    sb, _ = collect_statistics(b, batches)
    for blk in sa.blocks:
        np.testing.assert_array_equal(sa.mean(blk), sb.mean(blk))
    assert 0.05 < fa["accuracy"] < 0.3  # untrained: about chance, never the trained model's accuracy
    assert all(0.05 < sa.overall_mean(blk).mean() < 0.95 for blk in sa.blocks)


@pytest.mark.slow
def test_control_from_three_seeds_is_deterministic_and_summarised_by_mean_and_range(embedded):
    from sevis.analysis.measures import CONTROL_SEEDS, control_statistics_seeds
    batches = list(split_batches(embedded, embedded.reference_set(), 250))[:2]  # 500 images: quick
    a = control_statistics_seeds(embedded, batches)
    b = control_statistics_seeds(embedded, batches)
    assert len(a) == len(CONTROL_SEEDS) >= 3
    for x, y in zip(a, b):  # the same seeds give the same control, bit for bit
        for blk in x.blocks:
            np.testing.assert_array_equal(x.mean(blk), y.mean(blk))
    specs = np.array([[s.class_specificity(blk) for blk in a[0].blocks] for s in a])
    assert not np.allclose(specs[0], specs[1]) and not np.allclose(specs[1], specs[2])  # seeds differ
    trained, _ = collect_statistics(embedded, batches)
    m = depth_measures(trained, a)
    np.testing.assert_allclose(m["control_class_specificity"], np.nanmean(specs, 0))
    np.testing.assert_allclose(m["control_class_specificity_min"], np.nanmin(specs, 0))
    np.testing.assert_allclose(m["control_class_specificity_max"], np.nanmax(specs, 0))
    np.testing.assert_allclose(m["learned_specificity"], m["class_specificity"] - np.nanmean(specs, 0))
    assert (m["control_seeds"] == 3).all()
    # The paper table quotes the seed mean and range.
    table = paper_vs_model(m.assign(stage=[int(b.split("_")[1]) for b in m["block"]])).set_index("finding")
    e = m.iloc[2]  # SE_2_3, the last block of the first stage
    assert (f"untrained control {e['control_class_specificity']:.2f}, range {e['control_class_specificity_min']:.2f}–"
            f"{e['control_class_specificity_max']:.2f} over 3 seeds") in table.loc["class-agnostic early", "this_model"]
