"""SE − plain across the architecture families with paired bootstrap intervals on two test sets (issue 25), the
second test set (unseen backgrounds), what SE adds per family, and the near-constant gates the cards list."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from sevis.analysis.intervals import MIN_PAIRS, NO_DIFFERENCE, TOO_FEW, paired_bootstrap
from sevis.names import FAMILY_RUNS, family_dir, trained_families
from sevis.train import family_grid as G


def exact_bootstrap(d: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Return every distinct mean of the n^n equally likely resamples of `d` and its probability: the bootstrap
    distribution computed directly, without random draws."""
    means = np.array([np.mean(c) for c in itertools.product(d, repeat=len(d))])
    values, counts = np.unique(np.round(means, 12), return_counts=True)
    return values, counts / counts.sum()


def assert_central_95(d: list[float], low: float, high: float) -> None:
    """The interval's ends cut 2.5% off each tail of the exact bootstrap distribution (to within what 10,000
    resamples can tell: ±0.6 percentage points)."""
    values, p = exact_bootstrap(d)
    assert p[values < low - 1e-9].sum() <= 0.031 and p[values <= low + 1e-9].sum() >= 0.019
    assert p[values > high + 1e-9].sum() <= 0.031 and p[values >= high - 1e-9].sum() >= 0.019


def test_paired_bootstrap_on_known_numbers():
    two = paired_bootstrap([3.0, 5.0], [2.0, 2.0])  # two pairs: their bootstrap is only their range, no interval
    assert (two.mean, two.low, two.high, two.pairs, two.verdict) == (2.0, None, None, 2, TOO_FEW)
    three = paired_bootstrap([3.0, 5.0, 4.0], [2.0, 2.0, 2.0])  # differences 1, 3, 2: every resample mean is > 0
    assert three.verdict == "higher" and 1.0 <= three.low < three.high <= 3.0
    same = paired_bootstrap([80.5, 81.5, 82.5], [80.0, 81.0, 82.0])  # the same difference for every seed
    assert same.low == pytest.approx(0.5) and same.high == pytest.approx(0.5) and same.mean == pytest.approx(0.5)
    spans = paired_bootstrap([1.0, 2.0, 3.0, 4.0], [2.0, 1.5, 3.5, 3.0])  # differences -1, +0.5, -0.5, +1
    assert spans.low < 0 < spans.high and spans.verdict == NO_DIFFERENCE and spans.mean == pytest.approx(0.0)
    lower = paired_bootstrap([1.0, 1.0, 1.0], [2.0, 2.5, 3.0])
    assert lower.verdict == "lower" and lower.high < 0
    one = paired_bootstrap([85.0, None], [84.0, 83.0])  # a missing value drops its pair: one pair is too few
    assert (one.mean, one.low, one.high, one.pairs, one.verdict) == (1.0, None, None, 1, TOO_FEW)
    assert paired_bootstrap([], []).verdict == TOO_FEW
    assert paired_bootstrap([1.0, 2.0, 4.0], [0.0, 0.0, 0.0]) == paired_bootstrap([1.0, 2.0, 4.0], [0.0, 0.0, 0.0])
    for d in ([0.3, -0.2, 1.1, 0.4, -0.6], [2.0, -1.0, 0.5, 0.25]):  # against the whole bootstrap distribution
        iv = paired_bootstrap(d, [0.0] * len(d))
        assert iv.mean == pytest.approx(np.mean(d))
        assert_central_95(d, iv.low, iv.high)


def _row(family: str, se: bool, seed: int, test: float, unseen: float | None) -> dict:
    name = ("se-" if se else "") + family + (f"-seed{seed}" if seed else "")
    return {"name": name, "model": ("se-" if se else "") + family, "family": family, "se": se, "seed": seed,
            "test_accuracy": test, "unseen_accuracy": unseen, "parameters": 1000, "se_parameters": 50 if se else 0,
            "cpu_ms": 2.0 if se else 1.5, "paired_timing": True,
            "near_constant_blocks": ["SE_2_1"] if se and family == "vgg" else []}


def test_the_table_says_no_difference_shown_and_too_few_seeds_and_how_many_pairs():
    from sevis.views.families import display_table, families_takeaway
    rows = [_row("vgg", True, k, t, u) for k, t, u in ((0, 0.80, 0.70), (1, 0.82, None), (2, 0.78, None))]
    rows += [_row("vgg", False, k, t, u) for k, t, u in ((0, 0.81, 0.69), (1, 0.80, 0.70), (2, 0.80, None))]
    rows += [_row("resnext", se, k, 0.80 + (0.01 if se else 0) + 0.001 * k, 0.7) for se in (True, False)
             for k in range(3)]
    table = pd.DataFrame(rows)
    arch = G.architecture_table(table).set_index("family")
    # VGG: test-split differences -1, +2, -2 points: the interval spans 0; unseen backgrounds: one pair only
    assert arch.at["vgg", "pairs"] == 3 and arch.at["vgg", "delta"] == pytest.approx(-1 / 3, abs=0.005)
    assert arch.at["vgg", "delta_low"] < 0 < arch.at["vgg", "delta_high"] and arch.at["vgg", "verdict"] == NO_DIFFERENCE
    assert arch.at["vgg", "unseen_pairs"] == 1 and arch.at["vgg", "unseen_verdict"] == TOO_FEW
    assert pd.isna(arch.at["vgg", "unseen_low"]) and arch.at["vgg", "unseen_delta"] == pytest.approx(1.0)
    # ResNeXt: +1 point for every seed: the interval is [+1, +1] and SE is higher
    assert (arch.at["resnext", "delta_low"], arch.at["resnext", "delta_high"]) == (1.0, 1.0)
    assert arch.at["resnext", "verdict"] == "higher"
    shown = display_table(G.architecture_table(table)).set_index("architecture")
    assert shown.at["VGG", "verdict"] == NO_DIFFERENCE and shown.at["VGG", "seed pairs"] == "3"
    assert shown.at["VGG", "unseen: verdict"] == TOO_FEW and shown.at["VGG", "unseen: 95% interval"] == "—"
    assert shown.at["ResNeXt", "95% interval"] == "[+1.00, +1.00]" and shown.at["ResNeXt", "SE accuracy %"] == "81.1"
    assert shown.at["VGG", "plain accuracy %"] == "80.3"
    text = families_takeaway(table)
    assert text.startswith("With 3 seed pairs per architecture") and "nan" not in text and "None" not in text
    assert "no difference is shown for VGG (-0.33 points, [" in text
    assert "there are too few seeds to tell for VGG (1 pair)" in text
    assert "Near-constant gates (a fixed scale, not a function of the input; seed 0): SE-VGG SE_2_1." in text


def _cards() -> dict[str, dict]:
    return {n: json.loads((family_dir() / f"{n}.json").read_text())["family"] for n in trained_families()}


def test_intervals_on_the_shipped_cards_match_a_direct_computation():
    cards = _cards()
    arch = G.architecture_table(G.summary()).set_index("family")
    assert list(arch.index) == ["inception", "resnext", "mobilenet", "vgg"]
    for family, row in arch.iterrows():
        for key, prefix in (("test_accuracy", ""), ("unseen_accuracy", "unseen_")):
            se = {c["seed"]: c.get(key) for c in cards.values() if c["family"] == family and c["se"]}
            plain = {c["seed"]: c.get(key) for c in cards.values() if c["family"] == family and not c["se"]}
            seeds = sorted(k for k in se.keys() & plain.keys() if se[k] is not None and plain[k] is not None)
            d = [100 * (se[k] - plain[k]) for k in seeds]
            pairs = row["pairs" if not prefix else "unseen_pairs"]
            assert pairs == len(d)
            if not d:
                continue
            delta = row["delta" if not prefix else "unseen_delta"]
            assert delta == pytest.approx(np.mean(d), abs=0.006)
            low, high = row["delta_low" if not prefix else "unseen_low"], row["delta_high" if not prefix else
                                                                                  "unseen_high"]
            if len(d) < MIN_PAIRS:
                assert pd.isna(low) and row[f"{prefix}verdict"] == TOO_FEW
                continue
            iv = paired_bootstrap([100 * se[k] for k in seeds], [100 * plain[k] for k in seeds])
            assert (low, high) == (round(iv.low, 2), round(iv.high, 2))
            assert_central_95(d, iv.low, iv.high)
            spans = iv.low <= 0 <= iv.high
            assert (row[f"{prefix}verdict"] == NO_DIFFERENCE) == spans


def test_unseen_backgrounds_accuracy_of_a_shipped_run_recomputed_equals_its_card():
    from sevis.data.unseen_backgrounds import UNSEEN_KINDS, unseen_split
    from sevis.models.zoo import load_model
    from sevis.train.trainer import accuracy
    card = json.loads((family_dir() / "vgg.json").read_text())["family"]
    if card.get("unseen_accuracy") is None:
        pytest.skip("vgg's card has no unseen-background accuracy yet: `sevis family --evaluate-only`")
    split, kinds = unseen_split()
    assert len(split) == 2000 and set(kinds) == set(UNSEEN_KINDS) and np.bincount(split.labels).tolist() == [200] * 10
    assert split.images.shape == (2000, 36, 36) and split.images.dtype == np.uint8
    acc, _ = accuracy(load_model("family:vgg").model, split, torch.device("cpu"), data="context")
    assert card["unseen_accuracy"] == pytest.approx(acc, abs=1e-6)
    by_kind = card["unseen_accuracy_by_kind"]
    assert set(by_kind) == set(UNSEEN_KINDS) and np.mean(list(by_kind.values())) == pytest.approx(acc, abs=1e-5)
    again, _ = unseen_split()  # one fixed seed: the same images every time
    assert np.array_equal(again.images, split.images)


def test_sevis_family_evaluate_only_fills_finished_cards_and_resumes(tmp_path, capsys):
    import shutil

    from sevis.cli.main import main
    from sevis.models.checkpoint import read_card, write_card
    shipped = json.loads((family_dir() / "vgg.json").read_text())
    if shipped["family"].get("unseen_accuracy") is None:
        pytest.skip("vgg's card has no unseen-background accuracy yet: `sevis family --evaluate-only`")
    for suffix in (".safetensors", ".json"):
        shutil.copy(family_dir() / f"vgg{suffix}", tmp_path / f"vgg{suffix}")
    card = read_card(tmp_path / "vgg.safetensors")
    for key in ("unseen_accuracy", "unseen_accuracy_by_kind", "unseen_test", "near_constant_blocks"):
        card["family"].pop(key, None)
    write_card(tmp_path / "vgg.safetensors", card)  # a run finished before these entries existed
    assert main(["family", "--list", "--models", "vgg", "--out-dir", str(tmp_path)]) == 0
    assert "(card lacks: unseen, near_constant)" in capsys.readouterr().out
    assert main(["family", "--evaluate-only", "--models", "vgg", "se-vgg", "--out-dir", str(tmp_path)]) == 0
    assert "vgg: accuracy on unseen backgrounds" in capsys.readouterr().out
    filled = read_card(tmp_path / "vgg.safetensors")["family"]
    for key in ("unseen_accuracy", "unseen_accuracy_by_kind", "unseen_test", "near_constant_blocks"):
        assert filled[key] == shipped["family"][key], key
    assert main(["family", "--evaluate-only", "--models", "vgg", "--out-dir", str(tmp_path)]) == 0
    assert "evaluating" not in capsys.readouterr().out  # resumable: what a card holds is not computed again
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["vgg"] and summary["runs"][0]["unseen_accuracy"] is not None


def test_unseen_backgrounds_are_none_of_the_training_recipe():
    """The training recipe's background is a bilinear upsampling of a 9×9 grid: between grid points it is linear, so
    its second difference along a row vanishes away from the knots. Stripes, spots and fine noise are not."""
    from sevis.data.unseen_backgrounds import MAX_LEVEL, unseen_backgrounds
    back, kinds = unseen_backgrounds(40, 36, torch.Generator().manual_seed(1))
    assert back.shape == (40, 1, 36, 36) and float(back.max()) <= MAX_LEVEL and float(back.min()) >= 0
    assert kinds[:4] == ["stripes", "gradient", "spot", "fine-noise"]
    b = back[:, 0]
    curvature = torch.maximum((b[:, :, 2:] - 2 * b[:, :, 1:-1] + b[:, :, :-2]).abs().amax((1, 2)),
                              (b[:, 2:] - 2 * b[:, 1:-1] + b[:, :-2]).abs().amax((1, 2)))
    for k, c in zip(kinds, curvature):
        if k in ("stripes", "fine-noise", "spot"):
            assert c > 0.005, k


def test_the_architectures_what_se_adds_equals_a_direct_computation():
    from sevis.analysis.reference import reference_batches
    from sevis.analysis.squeeze import s_and_z_statistics, twin_statistics
    from sevis.core.recorder import find_se_blocks
    from sevis.models.zoo import load_model
    from sevis.views.families import se_adds_frame, se_adds_panel, se_adds_table
    table = G.summary()
    adds = se_adds_frame(table)
    if adds.empty:
        pytest.skip("no card holds what SE adds yet: `sevis family --evaluate-only`")
    run = "se-vgg" if "se-vgg" in set(adds["run"]) else adds["run"].iloc[-1]
    panel = se_adds_panel(adds)
    rows = panel.data[panel.data["run"] == run].set_index("block")
    loaded, twin = load_model(f"family:{run}"), load_model(f"family:{run.removeprefix('se-')}")
    batches, _ = reference_batches(loaded)
    s_stats, z_stats = s_and_z_statistics(loaded, batches)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    t_stats = twin_statistics(twin, blocks, batches)
    assert list(rows.index) == [b.name for b in blocks]
    for b in blocks:
        s, z, t = (st.class_specificity(b.name) for st in (s_stats, z_stats, t_stats))
        for col, direct in (("s", s), ("z", z), ("twin", t), ("s_minus_z", s - z)):
            if np.isfinite(direct):
                assert rows.at[b.name, col] == pytest.approx(direct, abs=2e-6), (b.name, col)
            else:
                assert rows.at[b.name, col] is None or not np.isfinite(rows.at[b.name, col])
        lo, hi, diff = rows.at[b.name, "control_s_minus_z_min"], rows.at[b.name, "control_s_minus_z_max"], s - z
        assert rows.at[b.name, "adds"] is (True if diff > hi else False if diff < lo else None)
    # the sentence names the last block with its numbers as the table shows them
    title = "SE-" + {"inception": "Inception", "resnext": "ResNeXt", "mobilenet": "MobileNet", "vgg": "VGG"}[
        FAMILY_RUNS[run]["family"]]
    last = blocks[-1].name
    sentence = next(s for s in panel.caption.split(". In ") if title in s)
    assert f"at its last block, {last}, s has class specificity {s_stats.class_specificity(last):.2f}" in sentence
    shown = se_adds_table(adds)
    assert "nan" not in shown.to_string() and "None" not in shown.to_string()


def test_family_cards_list_their_near_constant_gates_by_sevis_check_criterion():
    from sevis.analysis.check import NEAR_CONSTANT_SPREAD
    listed = {n: c["near_constant_blocks"] for n, c in _cards().items() if "near_constant_blocks" in c}
    if not listed:
        pytest.skip("no card lists its near-constant gates yet: `sevis family --evaluate-only`")
    for name, blocks in listed.items():
        rows = json.loads((family_dir() / f"{name}.json").read_text())["evaluation"]["excitation"]
        assert blocks == [r["block"] for r in rows if r["spread"] is not None and r["spread"] < NEAR_CONSTANT_SPREAD]
        if not FAMILY_RUNS[name]["se"]:
            assert blocks == []
    # the card's list agrees with the spread of s measured directly over the reference set (std over images, mean
    # over channels: sevis check's measure)
    from sevis.analysis.inference import split_batches
    from sevis.core.recorder import ExcitationRecorder
    from sevis.models.zoo import load_model
    name = "se-mobilenet" if "se-mobilenet" in listed else next(n for n in listed if FAMILY_RUNS[n]["se"])
    loaded = load_model(f"family:{name}")
    seen: dict[str, list] = {}
    with torch.inference_mode(), ExcitationRecorder(loaded.model) as rec:
        for x, _ in split_batches(loaded, loaded.reference_set()):
            loaded.model(x)
            for block, s in rec.pop().items():
                seen.setdefault(block, []).append(s.double())
    spread = {block: float(torch.cat(v).std(0, unbiased=False).mean()) for block, v in seen.items()}
    assert listed[name] == [b for b, v in spread.items() if v < NEAR_CONSTANT_SPREAD]
