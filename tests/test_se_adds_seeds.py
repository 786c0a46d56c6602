"""What SE adds over the seeds (issue 25): every seed's SE run gets s, z and the twin's specificity in its card
(seed 0 also the untrained control), and the Architectures view reads s − z and s − twin at the last SE block as a
mean with a paired bootstrap 95% interval over the seeds (sevis.analysis.intervals), with its verdict in words."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sevis.analysis.intervals import MIN_PAIRS, NO_DIFFERENCE, TOO_FEW, paired_bootstrap
from sevis.analysis.squeeze import OVER_SEEDS_COLUMNS, VERDICT_WORDS, adds_over_seeds
from sevis.figures.se_adds import over_seeds, se_adds_finding, se_adds_panel, se_adds_table
from sevis.figures.sentences import broken
from sevis.names import FAMILY_RUNS, family_dir
from sevis.train import family_grid as G

NAN = float("nan")


def between_share(values: np.ndarray, labels: np.ndarray) -> float:
    """Σ_c SS_between / Σ_c SS_total of N×C values, computed directly."""
    grand = values.mean(0)
    between = sum((labels == k).sum() * ((values[labels == k].mean(0) - grand) ** 2).sum() for k in np.unique(labels))
    return float(between / ((values - grand) ** 2).sum())


def assert_sentence(text: str) -> None:
    assert not broken(text), (broken(text), text)
    assert "None" not in text and not re.search(r"\bnan\b", text, re.I), text
    assert text.strip() == text and text[-1] == ".", text


def test_a_later_seed_gets_the_cheap_entry_equal_to_a_direct_computation(tmp_path):
    """A seed-1 SE card lacking the entry gets it from evaluate_run (no untrained control: None there), and its s, z
    and twin equal the class specificity computed here from the recorder's s and z and a hook on the twin."""
    from sevis.analysis.reference import reference_batches
    from sevis.core.recorder import ExcitationRecorder, find_se_blocks
    from sevis.models.checkpoint import read_card
    from sevis.models.zoo import load_checkpoint
    from sevis.train.family_evaluation import evaluate_run, missing_entries, what_se_adds_frame
    run, twin = "se-vgg-seed1", "vgg-seed1"
    if not (G.is_finished(run) and G.is_finished(twin)):
        pytest.skip(f"{run} or {twin} is not trained")
    for name in (run, twin, "se-vgg"):
        for suffix in (".safetensors", ".json"):
            shutil.copy(family_dir() / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    card = read_card(tmp_path / f"{run}.safetensors")
    card["family"].pop("what_se_adds", None)  # a card written before every seed got the entry
    from sevis.models.checkpoint import write_card
    write_card(tmp_path / f"{run}.safetensors", card)
    assert "what_se_adds" in missing_entries(run, tmp_path)
    evaluate_run(run, tmp_path, ["what_se_adds"])
    assert "what_se_adds" not in missing_entries(run, tmp_path)
    rows = pd.DataFrame(read_card(tmp_path / f"{run}.safetensors")["family"]["what_se_adds"]).set_index("block")
    assert rows[["control_s_minus_z", "control_s_minus_z_min", "control_s_minus_z_max"]].isna().all().all()
    assert all(a is None for a in rows["adds"])

    loaded, plain = load_checkpoint(tmp_path / f"{run}.safetensors"), load_checkpoint(tmp_path / f"{twin}.safetensors")
    batches, _ = reference_batches(loaded)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    s, z, t = ({b.name: [] for b in blocks} for _ in range(3))
    modules = dict(plain.model.named_modules())
    hooks = [modules[b.path].register_forward_pre_hook(lambda m, a, n=b.name: t[n].append(a[0].mean((2, 3))))
             for b in blocks]
    with torch.no_grad(), ExcitationRecorder(loaded.model, capture_internals=True) as rec:
        for x, _ in batches:
            loaded.model(x)
            plain.model(x)
            for name, v in rec.squeezes.items():
                z[name].append(v.reshape(len(x), -1))
            for name, v in rec.pop().items():
                s[name].append(v)
    for h in hooks:
        h.remove()
    labels = np.concatenate([y for _, y in batches])
    assert list(rows.index) == [b.name for b in blocks]
    for b in blocks:
        direct = {k: between_share(torch.cat(v[b.name]).double().numpy(), labels) for k, v in (("s", s), ("z", z),
                                                                                               ("twin", t))}
        for col, value in direct.items():
            assert rows.at[b.name, col] == pytest.approx(value, abs=2e-6), (b.name, col)
        assert rows.at[b.name, "s_minus_z"] == pytest.approx(direct["s"] - direct["z"], abs=4e-6)
    # the seed-0 entry written before (with the control) stays valid beside it: one frame holds both
    both = what_se_adds_frame([run, "se-vgg"], tmp_path)
    assert set(both["run"]) == {run, "se-vgg"}
    assert both.loc[both["run"] == "se-vgg", "control_s_minus_z_min"].notna().all()


def _card_values() -> pd.DataFrame:
    """Return the what_se_adds rows of every shipped SE card that holds them, read as plain JSON."""
    rows = []
    for name, r in FAMILY_RUNS.items():
        path = family_dir() / f"{name}.json"
        if r["se"] and G.is_finished(name):
            for row in json.loads(path.read_text())["family"].get("what_se_adds") or []:
                rows.append({"family": r["family"], "seed": r["seed"], **row})
    return pd.DataFrame(rows)


def test_the_view_s_interval_equals_the_bootstrap_on_the_card_values():
    from sevis.views.families import se_adds_frame
    cards = _card_values()
    if cards.empty:
        pytest.skip("no card holds what SE adds yet: `sevis family --evaluate-only`")
    over = over_seeds(se_adds_frame(G.summary())).set_index(["family", "block"])
    for (family, block), g in cards.groupby(["family", "block"], sort=False):
        g = g.sort_values("seed")
        nan = lambda v: NAN if v is None else v  # noqa: E731
        s, z, twin = ([nan(v) for v in g[c]] for c in ("s", "z", "twin"))
        row = over.loc[(family, block)]
        assert row["runs"] == len(g)
        for name, other in (("s_minus_z", z), ("s_minus_twin", twin)):
            iv = paired_bootstrap(s, other)
            d = [a - b for a, b in zip(s, other) if np.isfinite(a - b)]
            assert row[f"{name}_pairs"] == len(d) == iv.pairs
            if d:
                assert row[name] == pytest.approx(np.mean(d)) and row[name] == iv.mean
            if len(d) < MIN_PAIRS:
                assert row[f"{name}_verdict"] == TOO_FEW and pd.isna(row[f"{name}_low"])
            else:
                assert (row[f"{name}_low"], row[f"{name}_high"], row[f"{name}_verdict"]) == (iv.low, iv.high,
                                                                                             iv.verdict)
    shown = se_adds_table(se_adds_frame(G.summary())).to_string()
    assert "nan" not in shown and "None" not in shown


def _runs(per_family: dict[str, list[tuple]]) -> pd.DataFrame:
    """Return what_se_adds rows of one last block per family: (s, z, twin) per seed."""
    rows = []
    for family, values in per_family.items():
        for seed, (s, z, twin) in enumerate(values):
            run = f"se-{family}" + (f"-seed{seed}" if seed else "")
            for block, k in (("SE_4_1", 0.0), ("SE_5_2", 1.0)):  # the finding reads the last block only
                rows.append({"run": run, "block": block, "s": s * k if s is not None else s, "z": z, "twin": twin,
                             "s_minus_z": NAN, "control_s_minus_z": NAN, "control_s_minus_z_min": NAN,
                             "control_s_minus_z_max": NAN, "adds": None})
    return pd.DataFrame(rows)


def test_the_verdict_words_for_above_below_spanning_and_too_few():
    runs = _runs({"inception": [(0.8, 0.6, 0.5), (0.7, 0.6, 0.6), (0.9, 0.6, 0.7)],  # s − z +0.2, +0.1, +0.3
                  "resnext": [(0.5, 0.7, 0.4), (0.5, 0.6, 0.4), (0.4, 0.6, 0.3)],  # −0.2, −0.1, −0.2
                  "mobilenet": [(0.5, 0.6, NAN), (0.6, 0.5, NAN), (0.5, 0.5, NAN), (0.6, 0.5, NAN)],  # spans 0
                  "vgg": [(0.8, 0.6, 0.7), (0.9, None, 0.7), (0.7, 0.6, 0.6)]})  # z missing: two pairs left
    over = over_seeds(runs).set_index("family")
    last = over[over["last"]]
    assert list(last["s_minus_z_verdict"]) == ["higher", "lower", NO_DIFFERENCE, TOO_FEW]
    assert last.at["inception", "s_minus_z"] == pytest.approx(0.2) and last.at["vgg", "s_minus_z_pairs"] == 2
    assert last.at["inception", "s_minus_z_low"] > 0 and last.at["resnext", "s_minus_z_high"] < 0
    assert last.at["mobilenet", "s_minus_twin_pairs"] == 0 and last.at["mobilenet", "s_minus_twin_verdict"] == TOO_FEW
    assert list(last["s_minus_twin_verdict"]) == ["higher", "higher", TOO_FEW, "higher"]
    text = se_adds_finding(over_seeds(runs))
    assert_sentence(text)
    assert "s adds class information beyond z for Inception (+0.200, [+" in text
    assert "; s holds less than z for ResNeXt (-0.167, [" in text
    assert f"; {NO_DIFFERENCE} for MobileNet (+0.025, [" in text and "4 seeds)" in text
    assert f"; {TOO_FEW} for VGG (2 seeds)." in text
    assert (f"{VERDICT_WORDS['twin']['higher']} for Inception (+0.200, [+0.100, +0.300], 3 seeds), ResNeXt (" in text
            and f"{TOO_FEW} for MobileNet (no seed with both values)." in text)
    # one seed, as the cards were before every seed got the entry: too few seeds, said as such
    one = se_adds_finding(over_seeds(runs[runs["run"] == "se-vgg"]))
    assert one.endswith(f"{TOO_FEW} for VGG (1 seed). Against the plain twin's features at the same place (SE seed k "
                        f"against plain seed k): {TOO_FEW} for VGG (1 seed).")
    assert se_adds_finding(over_seeds(runs.iloc[:0])) == ""


CELL = st.one_of(st.just(NAN), st.just(None), st.just(0.5), st.just(0.0), st.floats(0, 1, allow_nan=False))


@given(st.lists(st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=5), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None)
def test_the_finding_and_table_read_for_any_numbers(families):
    """NaN (a constant gate), None (no twin), one seed, equal values everywhere: still sentences, never nan."""
    runs = _runs(dict(zip(("inception", "resnext", "mobilenet", "vgg"), families)))
    over = over_seeds(runs)
    assert list(over.columns) == ["family", "architecture"] + OVER_SEEDS_COLUMNS
    assert_sentence(se_adds_finding(over))
    shown = se_adds_table(runs).to_string()
    assert "nan" not in shown and "None" not in shown


@pytest.mark.parametrize("values", [[(NAN, NAN, None)], [(0.5, 0.5, 0.5)] * 3, [(0.9, 0.2, NAN), (None, 0.3, 0.1)]])
def test_the_panel_caption_reads_for_degenerate_runs(values):
    """Undefined specificity, one seed, the same value everywhere: the caption (finding and seed 0's control
    sentence) still reads, and the figure holds no NaN-only trace."""
    panel = se_adds_panel(_runs({"vgg": values, "inception": values}))
    assert_sentence(panel.caption)
    assert all(pd.Series(tr.y, dtype=float).notna().any() for tr in panel.figure.data)


def test_adds_over_seeds_keeps_the_block_order_and_marks_the_last():
    runs = _runs({"vgg": [(0.8, 0.6, 0.5)] * 3})
    over = adds_over_seeds(runs.assign(family="vgg"))
    assert list(over["block"]) == ["SE_4_1", "SE_5_2"] and list(over["last"]) == [False, True]
    # the same difference for every seed: the interval is that difference, and it lies above 0
    assert (over.at[1, "s_minus_z_low"], over.at[1, "s_minus_z_high"]) == pytest.approx((0.2, 0.2))
    assert over.at[1, "s_minus_z_verdict"] == "higher" and over.at[1, "runs"] == 3
