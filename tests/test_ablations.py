"""The ablation lab: every variant has the structure its name claims; the shipped grid's cards reproduce;
`sevis ablate` resumes a killed run to the weights of an uninterrupted one and skips finished variants; the
comparison table, the app view and `sevis export ablations` work on the shipped variants."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from sevis.analysis.paper import CONSTANT_SPREAD
from sevis.core.recorder import find_se_blocks
from sevis.core.se import SqueezeExcite, make_divisible
from sevis.models.checkpoint import read_card
from sevis.models.zoo import load_model
from sevis.names import ABLATIONS, ablation_dir, trained_ablations
from sevis.train import ablations as A
from sevis.train.trainer import resume_path

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(900)
GATES = {"gate-relu": nn.ReLU, "gate-tanh": nn.Tanh}
STAGES = {"stage-2": {2}, "stage-3": {3}, "stage-4": {4}, "no-stage-5": {2, 3, 4}}
REDUCTION = {"r4": 4, "r8": 8, "r32": 32}


# ------------------------------------------------------------------------------------------ structure
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_variant_has_the_structure_its_name_claims(name):
    model = load_model(f"ablation:{name}", pretrained=False).model
    default = load_model("embedded", pretrained=False).model
    found = find_se_blocks(model)
    se_layers = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    if name == "plain":
        assert not found and not se_layers
        return
    stages = {b.stage for b, _ in found}
    assert stages == STAGES.get(name, {2, 3, 4, 5})
    per_stage = {s: sum(1 for b, _ in found if b.stage == s) for s in stages}
    assert per_stage == {s: n for s, n in zip((2, 3, 4, 5), default.cfg.layers) if s in stages}
    gate = GATES.get(name, nn.Sigmoid)
    assert all(type(se.gate) is gate for se in se_layers)
    assert all(se.squeeze == ("max" if name == "squeeze-max" else "avg") for se in se_layers)
    r = REDUCTION.get(name, 16)
    assert all(se.fc1.out_channels == make_divisible(se.channels / r) for se in se_layers)
    # Everything else is the default's: same widths, stem, blocks.
    assert (model.cfg.layers, model.cfg.widths, model.cfg.stem) == (default.cfg.layers, default.cfg.widths,
                                                                     default.cfg.stem)


def _se_input(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = block.se.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        block(x.clone())
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("name,where", [("baseline", "branch"), ("integration-pre", "input"),
                                        ("integration-post", "sum"), ("integration-identity", "shortcut"),
                                        ("se-3x3", "after 3x3")])
def test_se_sits_where_the_integration_says(name, where):
    torch.manual_seed(0)
    model = load_model(f"ablation:{name}", pretrained=False).model.eval()
    block = model.layer2[0]  # a downsampling block: input, shortcut and branch all differ in shape or values
    x = torch.randn(2, block.downsample[0].in_channels, 9, 9)
    with torch.no_grad():
        expected = {
            "input": x,
            "branch": block.residual(x),
            "shortcut": block.downsample(x),
            "sum": block.residual(x) + block.downsample(x),
            "after 3x3": block.residual[:block.after_3x3](x),
        }[where]
        got = _se_input(block, x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)


def test_dropping_se_from_the_last_stage_keeps_about_4_percent():
    """The seed notes' claim, on our layout: SE in stages 2-4 only costs well under half the extra parameters."""
    plain = A.plain_parameters()
    extra = {n: load_model(f"ablation:{n}", pretrained=False).num_parameters - plain
             for n in ("baseline", "no-stage-5")}
    assert 0.08 < extra["baseline"] / plain < 0.13
    assert 0.02 < extra["no-stage-5"] / plain < 0.06
    assert load_model("ablation:plain", pretrained=False).num_parameters == plain


def test_unknown_variant_and_untrained_variant_say_so(tmp_path, monkeypatch):
    from sevis.errors import ModelError
    with pytest.raises(ModelError, match="unknown ablation 'r3'"):
        load_model("ablation:r3")
    monkeypatch.setenv("SEVIS_ABLATION_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="sevis ablate --variants r4"):
        load_model("ablation:r4")


# ------------------------------------------------------------------------------------------ the shipped grid
def test_shipped_variants_are_small_listed_and_summarised():
    from sevis.names import ABLATION_GROUP, list_se_models
    shipped = trained_ablations()
    assert shipped == list(ABLATIONS)  # the whole grid, the noise floor's seeds included
    for name in shipped:
        path = ablation_dir() / f"{name}.safetensors"
        assert path.stat().st_size <= A.MAX_BYTES
        assert ({t.dtype for t in load_file(path).values() if t.is_floating_point()}
                in ({torch.float16}, {torch.float32}))
    assert list_se_models()[ABLATION_GROUP] == [f"ablation:{n}" for n in shipped]
    summary = json.loads((ablation_dir() / "summary.json").read_text())
    assert [r["name"] for r in summary["variants"]] == shipped
    assert summary["noise_floor"]["seeds"] == len(A.NOISE_SEEDS) == 5
    # Every variant was trained by today's data pipeline (an older one's would be marked stale and retrained).
    assert not any(r["stale"] for r in summary["variants"])
    assert all(A.is_finished(n) and not A.is_stale(n) for n in shipped)


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_card_accuracy_reproduces_through_sevis_evaluate(name, capsys):
    from sevis.cli.main import main
    card = read_card(ablation_dir() / f"{name}.safetensors")
    assert main(["evaluate", "--model", f"ablation:{name}", "--split", "reference", "--no-control",
                 "--no-knockout"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy: {100 * card['evaluation']['accuracy']:.2f}% (1000 reference images)" in out
    # Half precision only where it costs nothing worth naming: within 0.05 points of the float32 weights on the
    # 10k test split (else the weights stay float32).
    abl = card["ablation"]
    if A.read_state_dtypes(ablation_dir() / f"{name}.safetensors") == {"F16"}:
        assert abs(abl["test_accuracy"] - abl["test_accuracy_fp32"]) <= A.HALF_TOLERANCE
    else:
        assert abl["test_accuracy"] == pytest.approx(abl["test_accuracy_fp32"], abs=1e-6)
    assert abl["test_images"] == 10_000


@pytest.mark.slow
def test_test_accuracy_of_two_variants_reproduces_on_the_test_split():
    from sevis.data.fashion_mnist import load_split
    from sevis.train.trainer import accuracy
    test = load_split("test", "context")
    for name in ("baseline", "gate-tanh"):
        loaded = load_model(f"ablation:{name}")
        acc, _ = accuracy(loaded.model, test, torch.device("cpu"), data="context")
        assert acc == pytest.approx(read_card(ablation_dir() / f"{name}.safetensors")["ablation"]["test_accuracy"],
                                    abs=1e-6)


def test_comparison_table_against_the_noise_floor():
    table = A.summary()
    cmp = A.comparison_table(table)
    floor = A.noise_floor(table)
    seeds = table[table["name"].isin(A.NOISE_SEEDS)]["test_accuracy"]
    assert floor["range"] == pytest.approx(seeds.max() - seeds.min(), abs=1e-6)
    assert "baseline-seed1" not in set(cmp["variant"]) and len(cmp) == len(table) - (len(A.NOISE_SEEDS) - 1)
    for _, row in cmp[cmp["variant"] != "baseline"].iterrows():
        acc = float(table.set_index("name").at[row["variant"], "test_accuracy"])
        assert row["delta"] == pytest.approx(round(100 * (acc - seeds.mean()), 2), abs=0.011)
        assert row["within_noise"] == (abs(row["delta"]) <= 100 * floor["range"])
    for _, row in cmp.iterrows():  # the paper's numbers beside each variant, and its change against SE-ResNet-50
        top1 = A.PAPER_ROWS[row["variant"]]["top1"]
        assert row["paper_top1_err"] == top1 or (top1 is None and pd.isna(row["paper_top1_err"]))
        if top1 is not None and row["variant"] != "baseline":
            assert row["paper_delta"] == pytest.approx(top1 - A.PAPER_ROWS["baseline"]["top1"])
    assert cmp.set_index("variant").at["plain", "se_extra"] == 0.0


def test_comparison_table_on_synthetic_rows():
    rows = [dict(name=n, axis=ABLATIONS[n]["axis"], change="", seed=0, test_accuracy=acc, test_accuracy_fp32=acc,
                 parameters=110, se_parameters=10, se_share=0.1, seconds=1, epochs=1, train_images=10)
            for n, acc in [("baseline", 0.80), ("baseline-seed1", 0.81), ("baseline-seed2", 0.79), ("r4", 0.805),
                           ("gate-tanh", 0.75)]]
    cmp = A.comparison_table(pd.DataFrame(rows)).set_index("variant")
    assert cmp.at["baseline", "accuracy"] == 80.0 and cmp.at["baseline", "noise_floor"] == 2.0
    assert cmp.at["r4", "delta"] == 0.5 and cmp.at["r4", "within_noise"]
    assert cmp.at["gate-tanh", "delta"] == -5.0 and not cmp.at["gate-tanh", "within_noise"]


def test_grid_findings_on_synthetic_rows():
    def table(stale=()):
        return pd.DataFrame([dict(name=n, axis=ABLATIONS[n]["axis"], change="", seed=0, test_accuracy=acc,
                                  test_accuracy_fp32=acc, parameters=110, se_parameters=se, se_share=se / (110 - se),
                                  seconds=1, epochs=1, train_images=10, stale=n in stale)
                             for n, acc, se in [("baseline", 0.80, 10), ("baseline-seed1", 0.81, 10),
                                                ("baseline-seed2", 0.79, 10), ("r4", 0.83, 30), ("r32", 0.70, 5),
                                                ("gate-tanh", 0.75, 10), ("no-stage-5", 0.805, 4), ("plain", 0.76, 0)]])
    text = "\n".join(A.grid_findings(table()))
    assert "Without SE (`plain`) accuracy changes by -4.00 points (outside the noise floor)" in text
    assert "+1.02: the same direction" in text  # the paper: plain's error is higher
    assert "Reduction: best here `r4` (+3.00); in the paper `r4` (-0.03 err)." in text
    assert "Excitation: best here the baseline (every variant lower, best `gate-tanh` -5.00); in the paper the " \
           "baseline." in text
    # r4 (+3.00 vs -0.03 err), r32, gate-tanh and plain lie outside a 2-point floor, all the paper's way.
    assert "Of the 4 changes outside the noise floor, 4 point the paper's way." in text
    assert "adds 3.8% parameters instead of 10.0% and changes accuracy by +0.50 points (inside the noise floor)" in text
    assert "range of 3 seeds (2.00 points)" in text
    dead = table()
    dead["constant_blocks"] = [["SE_2_3"] if n in ("r32", "gate-tanh") else [] for n in dead["name"]]
    assert "SE blocks that give every image the same s, a fixed per-channel scale with no excitation left: SE_2_3 " \
           "in `r32`, `gate-tanh`." in A.grid_findings(dead)
    stale = A.grid_findings(table(stale=("r4",)))
    assert "Reduction: best here the baseline (every variant lower, best `r32` -10.00)" in "\n".join(stale)
    assert stale[-1] == "Left out until retrained (older data pipeline): `r4`."
    assert A.grid_findings(table(stale=("baseline-seed1", "baseline-seed2"))) == []  # no noise floor, no findings


def test_every_variant_card_paper_table_follows_from_its_measures():
    from sevis.analysis.paper import paper_vs_model
    for name in trained_ablations():
        ev = read_card(ablation_dir() / f"{name}.safetensors")["evaluation"]
        m = pd.DataFrame(ev["excitation"])
        if not len(m):  # plain: no SE blocks
            assert ev["paper_vs_model"] == []
            continue
        ko = pd.DataFrame({"block": ["none"] + list(m["block"]), "change": [0.0] + list(m["knockout_identity"])})
        km = pd.DataFrame({"block": ["none"] + list(m["block"]), "change": [0.0] + list(m["knockout_mean"])})
        assert paper_vs_model(m, ko, km).to_dict("records") == ev["paper_vs_model"], name


def test_blocks_whose_s_never_varies_are_measured_and_named():
    # squeeze-max's SE_2_3 gives every reference image the same s (both of its 2 hidden units stay below 0):
    # the card's spread, the summary, a fresh pass over the reference set and the texts agree.
    from sevis.views import ablations as L
    table = A.summary()
    constant = table.set_index("name")["constant_blocks"]
    assert constant["baseline"] == [] and constant["squeeze-max"]
    v = L.load_variant("squeeze-max")
    assert list(v.gate.loc[v.gate["constant"], "block"]) == constant["squeeze-max"]
    block = constant["squeeze-max"][0]
    assert v.ref.stats.overall_std(block).max() < CONSTANT_SPREAD < v.ref.stats.overall_std("SE_2_1").max()
    assert (f"{block} of squeeze-max gives every image the same s"
            in L.pair_takeaway(table, L.load_variant("baseline"), v))
    line = next(x for x in A.grid_findings(table) if x.startswith("SE blocks that give every image the same s"))
    assert all(f"`{n}`" in line for n, blocks in constant.items() if blocks)
    card = read_card(ablation_dir() / "squeeze-max.safetensors")["evaluation"]["paper_vs_model"]
    if block == card[0]["blocks"]:  # the paper's early block: its specificity is 0/0, and the text says why
        assert "class specificity n/a (s is the same for every image; untrained control" in card[0]["this_model"]


def test_grid_findings_of_the_shipped_grid_name_each_axis_best():
    table = A.summary()
    fresh = table[~table["stale"]]
    cmp = A.comparison_table(fresh)
    lines = A.grid_findings(table)
    for axis, group in cmp.groupby("axis"):
        if axis in ("baseline", "no SE"):
            continue
        line = next(x for x in lines if x.startswith(axis.capitalize() + ":"))
        best = group.loc[group["delta"].idxmax()]
        assert (f"`{best['variant']}` ({best['delta']:+.2f})" if best["delta"] > 0
                else "best here the baseline") in line


# ------------------------------------------------------------------------------------------ sevis ablate
def test_a_variant_from_an_older_data_pipeline_is_marked_stale_and_retrained(tmp_path, capsys):
    import shutil

    from sevis.cli.main import main
    from sevis.views.ablations import stale_note
    for name in ("baseline", "r4"):
        for ext in (".safetensors", ".json"):
            shutil.copy(ablation_dir() / f"{name}{ext}", tmp_path / f"{name}{ext}")
    card = json.loads((tmp_path / "r4.json").read_text())
    card["training"]["data_version"] = 1  # what the buggy in-context pipeline wrote (no data_version at all)
    (tmp_path / "r4.json").write_text(json.dumps(card))
    assert A.is_stale("r4", tmp_path) and not A.is_finished("r4", tmp_path) and A.is_finished("baseline", tmp_path)
    assert A.status("r4", tmp_path) == "stale (older data pipeline)"
    table = A.summary(tmp_path)
    assert list(table.loc[table["stale"], "name"]) == ["r4"]
    assert stale_note(table).startswith("1 of 2 variants (r4) were trained before the fix")
    assert main(["ablate", "--list", "--out-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert any(line.split()[:2] == ["r4", "stale"] for line in listing.splitlines())
    assert any(line.split()[:2] == ["baseline", "trained"] for line in listing.splitlines())


def _ablate(out_dir: Path, *names: str) -> list[str]:
    return [sys.executable, "-m", "sevis", "ablate", "--variants", *names, "--epochs", "2", "--train-images", "512",
            "--test-images", "200", "--no-evaluate", "--out-dir", str(out_dir)]


@pytest.mark.slow
def test_sevis_ablate_killed_after_an_epoch_resumes_to_the_same_weights(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed"
    weights = killed / "gate-tanh.safetensors"
    proc = subprocess.Popen(_ablate(killed, "gate-tanh"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not resume_path(weights).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # a session stopped without warning: its lock file stays behind
    proc.wait()
    assert resume_path(weights).exists() and not weights.exists(), proc.stdout.read()
    assert weights.with_suffix(".lock").exists() and A.status("gate-tanh", killed) == "interrupted"
    again = subprocess.run(_ablate(killed, "gate-tanh"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout
    whole = tmp_path / "whole"
    done = subprocess.run(_ablate(whole, "gate-tanh"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    a, b = load_file(weights), load_file(whole / "gate-tanh.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not resume_path(weights).exists() and not weights.with_suffix(".lock").exists()
    # Finished variants are skipped: the file stays as it is.
    stamp = weights.stat().st_mtime_ns
    skip = subprocess.run(_ablate(killed, "gate-tanh"), env=env, capture_output=True, text=True, timeout=600)
    assert "gate-tanh: finished, skipped" in skip.stdout and weights.stat().st_mtime_ns == stamp
    assert A.status("gate-tanh", killed) == "trained" and A.status("r4", killed) == "missing"
    card = read_card(weights)
    assert card["ablation"]["overrides"] == {"gate": "tanh"} and card["architecture"]["gate"] == "tanh"
    summary = json.loads((killed / "summary.json").read_text())
    assert [r["name"] for r in summary["variants"]] == ["gate-tanh"]


def test_a_variant_held_by_a_live_process_is_left_to_it(tmp_path, capsys):
    lock = tmp_path / "r8.lock"
    lock.write_text(str(os.getppid()))  # a live process that is not us
    assert A.ablate(["r8"], tmp_path, epochs=1, train_images=256, test_images=50, evaluate_reference=False) == []
    assert "being trained by process" in capsys.readouterr().out


def test_sevis_ablate_rejects_unknown_variants(capsys):
    from sevis.cli.main import main
    assert main(["ablate", "--variants", "r3"]) == 2
    assert "unknown ablation 'r3'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ view and export
def test_pair_takeaway_and_gate_facts_are_measured():
    from sevis.views import ablations as L
    table = A.summary()
    base, tanh = L.load_variant("baseline"), L.load_variant("gate-tanh")
    assert (base.gate["below_zero"] == 0).all() and (base.gate["above_one"] == 0).all()  # a sigmoid stays in (0, 1)
    top = tanh.gate.loc[tanh.gate["below_zero"].idxmax()]
    text = L.pair_takeaway(table, base, tanh)
    assert f"{100 * top['below_zero']:.0f}% of {top['block']}'s values in gate-tanh are below 0" in text
    acc = table.set_index("name")["test_accuracy"]
    # One baseline per view: the seed mean the table shows, named as such, and a difference that adds up on screen.
    floor = A.noise_floor(table)
    shown = A.comparison_table(table).set_index("variant").loc["baseline"]
    base_text = f"{100 * floor['mean']:.2f}"
    assert f"{100 * acc['gate-tanh']:.2f}%, the baseline (mean of {floor['seeds']} seeds) {base_text}%" in text
    diff = round(float(f"{100 * acc['gate-tanh']:.2f}") - float(base_text), 2)
    assert f"({diff:+.2f} points," in text
    assert f"{shown['accuracy']:.2f}" == base_text  # the table's baseline is the takeaway's


def test_sevis_export_ablations_writes_table_and_pair(tmp_path, capsys):
    from sevis.cli.main import main
    assert main(["export", "ablations", "--variants", "baseline", "plain", "--format", "csv", "html",
                 "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"ablation_table.csv", "ablation_deltas.csv", "fig6_baseline.csv", "ablation_depth_profiles.csv",
            "ablation_knockouts.csv", "ablation_table.html"} <= names
    assert "fig6_plain.csv" not in names  # no SE blocks, no excitations to plot
    table = pd.read_csv(tmp_path / "ablation_table.csv")
    assert list(table["variant"])[0] == "baseline" and "plain" in set(table["variant"])
    assert set(pd.read_csv(tmp_path / "ablation_depth_profiles.csv")["variant"]) == {"baseline"}
    out = capsys.readouterr().out
    assert "takeaway: plain scores" in out and "plain 0" in out
    # what the grid says is part of the view's result: printed, in the view's JSON and in the app's list
    view = json.loads((tmp_path / "ablations_view.json").read_text())
    findings = A.grid_findings(A.summary())
    assert findings and [n.removeprefix("What the grid says: ") for n in view["notes"]
                         if n.startswith("What the grid says: ")] == findings
    assert f"note: What the grid says: {findings[0]}" in out
    assert view["numbers"]["pair_difference"] == pytest.approx(view["numbers"]["accuracy/plain"]
                                                               - view["numbers"]["accuracy/baseline"], abs=0.006)


def test_the_ablations_result_opens_on_the_default_pair_and_refuses_bad_requests():
    from sevis.errors import SevisError
    from sevis.names import DEFAULT_ABLATION_PAIR
    from sevis.views import ablations as L
    from sevis.views.base import ViewRequest
    embedded = load_model("embedded")
    default = L.compute(embedded, ViewRequest())
    a, b = DEFAULT_ABLATION_PAIR
    assert [p.key for p in default.panels] == ["ablation_table", "ablation_deltas", f"fig6_{a}", f"fig6_{b}",
                                               "ablation_depth_profiles", "ablation_knockouts"]
    assert default.takeaway == L.pair_takeaway(A.summary(), L.load_variant(a), L.load_variant(b))
    assert L.compute(embedded, ViewRequest(pair=DEFAULT_ABLATION_PAIR)).numbers == default.numbers
    with pytest.raises(SevisError, match="unknown ablation variant 'r3'"):
        L.compute(embedded, ViewRequest(pair=("baseline", "r3")))
    with pytest.raises(SevisError, match="unknown class"):
        L.compute(embedded, ViewRequest(classes=("Cat",)))


@pytest.mark.app
def test_app_ablations_view_renders_a_pair_and_a_download(media):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["view"] = "Ablations"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="ab_b").set_value("se-3x3")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert "se-3x3" in set(table["variant"]) and "our Δ acc (points)" in table.columns
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "baseline: mean excitation per class" in titles and "se-3x3: mean excitation per class" in titles
    assert "Depth profiles: baseline and se-3x3" in titles
    assert any(t.startswith("Accuracy change when one SE block is knocked out") for t in titles)
    takeaway = [m.value for m in at.info if m.value.startswith("**Takeaway.**")]
    assert takeaway and "se-3x3 scores" in takeaway[0]
    csv = media.click("ablation_table.csv").decode()
    assert csv.splitlines()[0].startswith("axis,variant,paper")
    findings = [m.value for m in at.markdown if m.value.startswith("**What the grid says**")]
    assert findings and A.grid_findings(A.summary())[0] in findings[0]
    # without classes the pair is not drawn; the table and what the grid says stay
    at.multiselect(key="ab_classes").set_value([])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value == "Choose at least one class." for m in at.info) and len(at.dataframe) == 1
    assert not any("mean excitation per class" in json.loads(c.proto.spec)["layout"]["title"]["text"]
                   for c in at.get("plotly_chart"))
    # The ablation variants are in the sidebar's model picker too.
    at.selectbox(key="model_kind").set_value("Ablation variant (trained by sevis ablate)")
    at.run()
    assert not at.exception
    assert at.selectbox(key="ablation_name").options[0].startswith("baseline")
