"""The paper's other SE architectures: every family has SE where the paper puts it (hooks on real forward passes),
the plain twins have none, blocks are named by depth; `sevis family` resumes a killed run to the weights of an
uninterrupted one and leaves runs held by live processes alone; shipped cards reproduce through `sevis evaluate`;
`sevis check` finds SE blocks that never run or change nothing."""
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

from sevis.analysis.check import FAILING, NEAR_CONSTANT_SPREAD, check_failed, check_loaded, check_model, check_summary
from sevis.core.recorder import ExcitationRecorder, find_se_blocks
from sevis.core.se import SqueezeExcite
from sevis.errors import ModelError
from sevis.models.checkpoint import read_card
from sevis.models.families.inception import InceptionModule, ReductionModule
from sevis.models.zoo import load_model
from sevis.names import FAMILY_MODELS, FAMILY_RUNS, family_dir, trained_families
from sevis.train import family_grid as G
from sevis.train.trainer import resume_path

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(900)
DEFAULT_PARAMETERS = load_model("embedded", pretrained=False).num_parameters


def _random(model: str) -> nn.Module:
    torch.manual_seed(0)
    return load_model(f"family:{model}", pretrained=False).model.eval()


def _inputs_and_outputs(module: nn.Module, submodules: dict[str, nn.Module], x: torch.Tensor) -> dict:
    """Run `module` on x; return what each named submodule received ("<name>.in") and returned ("<name>.out")."""
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name, sub in submodules.items():
        handles.append(sub.register_forward_pre_hook(lambda m, a, n=name: seen.__setitem__(f"{n}.in", a[0].clone())))
        handles.append(sub.register_forward_hook(lambda m, a, o, n=name: seen.__setitem__(f"{n}.out", o.clone())))
    try:
        with torch.no_grad():
            seen["output"] = module(x)
    finally:
        for h in handles:
            h.remove()
    return seen


# ------------------------------------------------------------------------------------------ structure
@pytest.mark.parametrize("model", list(FAMILY_MODELS))
def test_every_family_is_named_by_depth_and_sized_like_the_default(model):
    net = _random(model)
    found = [b for b, _ in find_se_blocks(net)]
    se_layers = [m for m in net.modules() if isinstance(m, SqueezeExcite)]
    assert DEFAULT_PARAMETERS / 2 <= sum(p.numel() for p in net.parameters()) <= 2 * DEFAULT_PARAMETERS
    if not model.startswith("se-"):  # the plain twin: the same code with se=False, no SE anywhere
        assert not found and not se_layers and not net.cfg.se
        twin = _random(f"se-{model}")
        assert type(twin) is type(net) and len(twin.blocks()) == len(net.blocks())
        return
    # one SE per block, named SE_<stage>_<block> with the paper's stages 2-5 (layer1..layer4)
    expected = [f"SE_{s + 2}_{b + 1}" for s, stage in enumerate(net.stages) for b in range(len(stage))]
    assert [b.name for b in found] == expected and len(se_layers) == len(expected)
    assert {b.stage for b in found} == {2, 3, 4, 5}
    assert all(b.kind == "SqueezeExcite" and b.squeeze_channels == max(1, round(b.channels / 16)) for b in found)
    y = net(torch.randn(2, 1, 36, 36))
    assert y.shape == (2, 10)


def test_se_inception_squeezes_the_concatenation_of_all_branches_reduction_modules_included():
    net = _random("se-inception")
    x = net.forward_stem(torch.randn(2, 1, 36, 36))
    kinds = []
    with torch.no_grad():
        for block in net.blocks():
            subs = {f"b{i}": b for i, b in enumerate(block.branches)} | {"se": block.se}
            seen = _inputs_and_outputs(block, subs, x)
            branches = [seen[f"b{i}.out"] for i in range(len(block.branches))]
            assert len(branches) >= 3
            assert seen["se.in"].shape[1] == sum(b.shape[1] for b in branches) == block.se.channels
            torch.testing.assert_close(seen["se.in"], torch.cat(branches, 1))  # SE sees the concat, nothing else
            torch.testing.assert_close(seen["output"], seen["se.out"])  # and its output goes on
            kinds.append(type(block))
            if isinstance(block, ReductionModule):
                assert seen["output"].shape[-1] == (x.shape[-1] + 1) // 2
            x = seen["output"]
    assert kinds.count(ReductionModule) == 3 and kinds.count(InceptionModule) >= 4
    assert type(net.layer2[0]) is type(net.layer3[0]) is type(net.layer4[0]) is ReductionModule


def test_se_resnext_puts_se_on_the_grouped_branch_before_the_addition():
    net = _random("se-resnext")
    x = torch.randn(2, net.layer2[0].residual[0][0].in_channels, 9, 9)
    block = net.layer2[0]  # downsampling: branch and shortcut differ
    grouped = block.residual[1][0]
    assert grouped.groups > 1 and grouped.kernel_size == (3, 3)
    seen = _inputs_and_outputs(block, {"residual": block.residual, "se": block.se, "downsample": block.downsample}, x)
    torch.testing.assert_close(seen["se.in"], seen["residual.out"])
    torch.testing.assert_close(seen["output"], torch.relu(seen["se.out"] + seen["downsample.out"]))


def test_se_mobilenet_puts_se_after_the_depthwise_stage():
    net = _random("se-mobilenet")
    for block in (net.layer1[0], net.layer3[0]):
        x = torch.randn(2, block.depthwise[0].in_channels, 18, 18)
        depthwise = block.depthwise[0]
        assert depthwise.groups == depthwise.in_channels == depthwise.out_channels
        seen = _inputs_and_outputs(block, {"depthwise": block.depthwise, "se": block.se,
                                           "pointwise": block.pointwise}, x)
        torch.testing.assert_close(seen["se.in"], seen["depthwise.out"])
        torch.testing.assert_close(seen["pointwise.in"], seen["se.out"])
        assert block.se.channels == depthwise.in_channels  # on the depthwise width, before the pointwise widening


def test_se_vgg_puts_se_after_every_convolution_block_with_no_shortcut():
    net = _random("se-vgg")
    x = net.forward_stem(torch.randn(2, 1, 36, 36))
    for block in net.blocks():
        seen = _inputs_and_outputs(block, {"conv": block.conv, "se": block.se}, x)
        torch.testing.assert_close(seen["se.in"], seen["conv.out"])
        torch.testing.assert_close(seen["output"], seen["se.out"])
        x = seen["output"]
    assert not any(isinstance(m, nn.Identity) and n.endswith("downsample") for n, m in net.named_modules())


def test_unknown_and_untrained_family_models_say_so(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="unknown architecture model 'se-alexnet'"):
        load_model("family:se-alexnet")
    monkeypatch.setenv("SEVIS_FAMILY_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="sevis family --models vgg-seed1"):
        load_model("family:vgg-seed1")


def test_a_family_card_that_asks_for_an_unknown_family_is_refused(tmp_path):
    from sevis.models.checkpoint import save_checkpoint
    net = _random("vgg")
    path = save_checkpoint(net, tmp_path / "x.safetensors", {"architecture": {**net.cfg.to_dict(), "family": "lenet"}})
    with pytest.raises(ModelError, match="cannot build"):
        load_model(path)


# ------------------------------------------------------------------------------------------ sevis family
def _family(out_dir: Path, *names: str) -> list[str]:
    return [sys.executable, "-m", "sevis", "family", "--models", *names, "--epochs", "2", "--train-images", "512",
            "--test-images", "200", "--no-evaluate", "--out-dir", str(out_dir)]


@pytest.mark.slow
def test_sevis_family_killed_after_an_epoch_resumes_to_the_same_weights(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed"
    weights = killed / "se-mobilenet.safetensors"
    proc = subprocess.Popen(_family(killed, "se-mobilenet"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not resume_path(weights).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # a session stopped without warning: its lock file stays behind
    proc.wait()
    assert resume_path(weights).exists() and not weights.exists(), proc.stdout.read()
    assert weights.with_suffix(".lock").exists() and G.status("se-mobilenet", killed) == "interrupted"
    again = subprocess.run(_family(killed, "se-mobilenet"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout
    whole = tmp_path / "whole"
    done = subprocess.run(_family(whole, "se-mobilenet"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    a, b = load_file(weights), load_file(whole / "se-mobilenet.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not resume_path(weights).exists() and not weights.with_suffix(".lock").exists()
    stamp = weights.stat().st_mtime_ns  # finished runs are skipped: the file stays as it is
    skip = subprocess.run(_family(killed, "se-mobilenet"), env=env, capture_output=True, text=True, timeout=600)
    assert "se-mobilenet: finished, skipped" in skip.stdout and weights.stat().st_mtime_ns == stamp
    assert G.status("se-mobilenet", killed) == "trained" and G.status("mobilenet", killed) == "missing"
    card = read_card(weights)["family"]
    assert (card["family"], card["se"], card["seed"]) == ("mobilenet", True, 0)
    assert card["se_parameters"] == sum(b.parameters for b, _ in find_se_blocks(_random("se-mobilenet")))
    assert card["parameters"] - card["se_parameters"] == sum(p.numel() for p in _random("mobilenet").parameters())
    assert card["cpu_ms_per_image"] > 0
    summary = json.loads((killed / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["se-mobilenet"]


@pytest.mark.slow
def test_each_se_model_is_timed_against_its_twin_in_alternating_rounds(tmp_path):
    tiny = dict(epochs=1, train_images=256, test_images=50, evaluate_reference=False)
    assert len(G.train_families(["se-vgg", "vgg"], tmp_path, **tiny)) == 2
    alone = {n: read_card(tmp_path / f"{n}.safetensors")["family"] for n in ("se-vgg", "vgg")}
    assert all(c["cpu_timing"] != G.PAIRED_TIMING and c["cpu_ms_per_image"] > 0 for c in alone.values())
    assert G.time_families(tmp_path) == ["vgg"]  # the only architecture with both models trained
    paired = {n: read_card(tmp_path / f"{n}.safetensors")["family"] for n in ("se-vgg", "vgg")}
    assert all(c["cpu_timing"] == G.PAIRED_TIMING and c["cpu_ms_per_image"] > 0 for c in paired.values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    row = summary["architectures"][0]
    assert row["family"] == "vgg" and row["se_cpu_ms"] == round(paired["se-vgg"]["cpu_ms_per_image"], 3)
    assert row["time_change"] == pytest.approx(100 * (paired["se-vgg"]["cpu_ms_per_image"]
                                                      / paired["vgg"]["cpu_ms_per_image"] - 1), abs=0.1)
    assert row["pairs"] == 1 and row["delta_low"] is None and row["verdict"] == "too few seeds"  # one pair: no interval
    from sevis.views.families import display_table, families_takeaway
    text = families_takeaway(G.summary(tmp_path), tmp_path)
    assert text.startswith("With 1 seed pair per architecture") and "nan" not in text and "None" not in text
    assert "there are too few seeds to tell for VGG (1 pair)" in text
    assert f"SE costs {row['time_change']:+.0f}% CPU time per image" in text
    shown = display_table(G.architecture_table(G.summary(tmp_path)))
    assert shown.at[0, "95% interval"] == "—" and shown.at[0, "verdict"] == "too few seeds"
    assert shown.at[0, "unseen: verdict"] == "not evaluated yet"  # --no-evaluate: no unseen-background accuracy


def test_a_run_held_by_a_live_process_is_left_to_it(tmp_path, capsys):
    (tmp_path / "vgg.lock").write_text(str(os.getppid()))  # a live process that is not us
    assert G.train_families(["vgg"], tmp_path, epochs=1, train_images=256, test_images=50,
                            evaluate_reference=False) == []
    assert "being trained by process" in capsys.readouterr().out


def test_sevis_family_lists_runs_and_rejects_unknown_ones(capsys):
    from sevis.cli.main import main
    assert main(["family", "--list", "--models", "se-vgg", "vgg-seed1"]) == 0
    out = capsys.readouterr().out
    assert "se-vgg" in out and "fmnist_vgg, seed 1" in out
    assert main(["family", "--models", "se-lenet"]) == 2
    assert "unknown architecture model 'se-lenet'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ sevis check
class _NeverCalled(InceptionModule):
    """senet.pytorch issue 22: the SE layer is registered, the forward pass never calls it."""

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], 1)


class _Discarded(InceptionModule):
    """SE runs, but its output is thrown away."""

    def forward(self, x):
        out = torch.cat([branch(x) for branch in self.branches], 1)
        self.se(out)
        return out


@pytest.mark.parametrize("broken,verdict", [(_NeverCalled, "never runs"), (_Discarded, "changes nothing")])
def test_check_finds_se_that_never_runs_or_changes_nothing(broken, verdict, monkeypatch, capsys):
    loaded = load_model("family:se-inception", pretrained=False)
    loaded.model.layer2[1].__class__ = broken  # SE_3_2 (layer2 is the paper's stage 3): the buggy forward
    table, inputs = check_loaded(loaded, images=50)
    rows = table.set_index("block")
    assert rows.at["SE_3_2", "verdict"] == verdict and check_failed(table)
    assert not rows.drop("SE_3_2")["verdict"].isin(FAILING).any()
    assert rows.at["SE_3_2", "runs"] == (broken is _Discarded)
    from sevis.cli import main as cli
    from sevis.models import zoo
    monkeypatch.setattr(zoo, "load_model", lambda *a, **k: loaded)
    assert cli.main(["check", "family:se-inception", "--random-weights", "--images", "20"]) == 1
    assert f"{verdict}: SE_3_2" in capsys.readouterr().out


def test_check_passes_se_on_the_identity_branch_and_reads_its_gates(capsys):
    from sevis.cli.main import main
    loaded = load_model("ablation:integration-identity")
    table, _ = check_loaded(loaded, images=100)
    assert len(table) == 16 and table["runs"].all() and table["matters"].all() and not check_failed(table)
    shares = table[["near_0", "near_half", "near_1"]]
    assert ((shares >= 0) & (shares <= 1)).all().all() and (shares.sum(axis=1) <= 1 + 1e-9).all()
    # a block whose s is the same for every image is still wired in; the verdict names it
    constant = table[table["constant"]]
    assert (constant["verdict"] == "a fixed scale (the same s for every image)").all()
    assert main(["check", "ablation:integration-identity", "--images", "50"]) == 0
    assert "every one runs and matters" in capsys.readouterr().out


def test_check_on_a_plain_model_and_an_saturated_gate():
    loaded = load_model("family:vgg", pretrained=False)
    table, inputs = check_loaded(loaded, images=20)
    assert table.empty and not check_failed(table)
    net = _random("se-vgg")
    block = net.layer1[0].se
    with torch.no_grad():  # s = sigmoid(large) = 1.0 exactly in float32: wired in, nothing to change
        block.fc2.bias.fill_(100.0)
        block.fc2.weight.zero_()
    table = check_model(net, torch.randn(4, 1, 36, 36))
    assert table.set_index("block").at["SE_2_1", "verdict"] == "s is 1 already" and not check_failed(table)


def test_check_names_a_gate_that_is_a_fixed_scale_apart_from_mattering():
    """W1 := 0 makes s = σ(W2·δ(b1) + b2) the same for every image: knocking it out with s := 1 still changes the
    logits (the fixed scale goes), but s := its mean changes nothing, and the check says it is a fixed scale."""
    net = _random("se-vgg")
    block = net.layer2[0].se  # SE_3_1
    with torch.no_grad():
        block.fc1.weight.zero_()
        block.fc1.bias.fill_(0.5)
    x = torch.randn(6, 1, 36, 36, generator=torch.Generator().manual_seed(1))
    table = check_model(net, x).set_index("block")
    row = table.loc["SE_3_1"]
    assert row["matters"] and not row["input_dependent"] and row["near_constant"]
    assert row["verdict"] == "a fixed scale (the same s for every image)"
    assert row["logit_change_mean"] < 1e-4 * row["logit_change"]
    with ExcitationRecorder(net) as rec:  # the spread, computed directly
        net(x)
    spread = float(rec.excitations["SE_3_1"].double().std(0).mean())
    assert row["spread"] == pytest.approx(spread) and spread < NEAR_CONSTANT_SPREAD
    for _, r in table.drop("SE_3_1").iterrows():  # the other blocks: "ok" exactly when s varies with the image
        assert (r["verdict"] == "ok") == (r["spread"] >= NEAR_CONSTANT_SPREAD), r.to_dict()
    summary = check_summary(table.reset_index(), "6 random images")
    assert "near-constant gates (a fixed scale, not a function of the input): " in summary and "SE_3_1" in summary


# ------------------------------------------------------------------------------------------ shipped models
def test_the_whole_grid_is_shipped_small_listed_and_timed_in_pairs():
    from sevis.names import FAMILY_GROUP, list_se_models
    from sevis.train.ablations import MAX_BYTES
    trained = trained_families()
    # every model with seeds 0 and 1 at least (seeds 2-4 are trained by `sevis family`, resumable, in FAMILY_RUNS order)
    assert [n for n in FAMILY_RUNS if FAMILY_RUNS[n]["seed"] < 2] == [n for n in trained if FAMILY_RUNS[n]["seed"] < 2]
    assert len([n for n in FAMILY_RUNS if FAMILY_RUNS[n]["seed"] < 2]) == 16
    for name in trained:
        path = family_dir() / f"{name}.safetensors"
        assert path.stat().st_size <= MAX_BYTES
        assert ({t.dtype for t in load_file(path).values() if t.is_floating_point()}
                in ({torch.float16}, {torch.float32}))
        if FAMILY_RUNS[name]["seed"] < 2:  # timed against its twin; later seeds once the whole grid is trained
            assert read_card(path)["family"]["cpu_timing"] == G.PAIRED_TIMING
    assert list_se_models()[FAMILY_GROUP] == [f"family:{n}" for n in trained]
    summary = json.loads((family_dir() / "summary.json").read_text())
    assert {r["name"] for r in summary["runs"]} <= set(trained)
    arch = G.architecture_table(G.summary()).to_dict("records")
    assert [r["family"] for r in arch] == ["inception", "resnext", "mobilenet", "vgg"]
    from sevis.analysis.intervals import MIN_PAIRS
    assert all(r["pairs"] >= 2 for r in arch)
    assert all(r["delta_low"] <= r["delta"] <= r["delta_high"] for r in arch if r["pairs"] >= MIN_PAIRS)
    assert all(pd.isna(r["delta_low"]) for r in arch if r["pairs"] < MIN_PAIRS)  # two pairs: no interval
    assert all(r["se_cpu_ms"] > 0 and r["plain_cpu_ms"] > 0 for r in arch)


@pytest.mark.parametrize("name", trained_families())
def test_shipped_card_reproduces_through_sevis_evaluate(name, capsys):
    from sevis.cli.main import main
    from sevis.train.ablations import HALF_TOLERANCE, read_state_dtypes
    path = family_dir() / f"{name}.safetensors"
    card = read_card(path)
    assert main(["evaluate", "--model", f"family:{name}", "--split", "reference", "--no-control",
                 "--no-knockout"]) == 0
    assert f"accuracy: {100 * card['evaluation']['accuracy']:.2f}% (1000 reference images)" in capsys.readouterr().out
    fam = card["family"]
    assert fam["test_images"] == 10_000 and fam["schedule"] == G.FAMILY_SCHEDULE
    if read_state_dtypes(path) == {"F16"}:
        assert abs(fam["test_accuracy"] - fam["test_accuracy_fp32"]) <= HALF_TOLERANCE
    assert card["architecture"] == _random(FAMILY_RUNS[name]["model"]).cfg.to_dict()
    assert card["seed"] == FAMILY_RUNS[name]["seed"]


# ------------------------------------------------------------------------------------------ view and export
def test_sevis_export_families_writes_the_table_profiles_fig6_and_check(tmp_path, capsys):
    from sevis.cli.main import main
    from sevis.train.family_grid import architecture_table, summary
    assert main(["export", "families", "--model", "family:se-vgg", "--format", "csv", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"architectures_table.csv", "architectures_delta.csv", "architectures_depth_profiles.csv",
            "fig6_se-vgg.csv", "check_se-vgg.csv"} <= names
    table = pd.read_csv(tmp_path / "architectures_table.csv")
    expected = architecture_table(summary())
    assert list(table["family"]) == list(expected["family"]) and len(table) == 4
    for _, row in table.iterrows():  # SE − plain is the difference of the means over the seeds both have, in points
        runs = summary()
        fam = runs[runs["family"] == row["family"]]
        se, plain = (fam[fam["se"] == flag].set_index("seed")["test_accuracy"] for flag in (True, False))
        seeds = sorted(set(se.index) & set(plain.index))
        assert row["pairs"] == len(seeds) >= 2
        assert row["delta"] == pytest.approx(100 * (se[seeds].mean() - plain[seeds].mean()), abs=0.006)
    check = pd.read_csv(tmp_path / "check_se-vgg.csv")
    assert len(check) == 9 and set(check["verdict"]) <= {"ok", "a fixed scale (the same s for every image)",
                                                          "a near-constant scale (s hardly depends on the image)"}
    profiles = pd.read_csv(tmp_path / "architectures_depth_profiles.csv")
    assert set(profiles["model"]) == {"se-inception", "se-resnext", "se-mobilenet", "se-vgg"}
    view = json.loads((tmp_path / "families_view.json").read_text())  # the ViewResult the app renders too
    assert view["takeaway"].startswith("With ") and "seed pair" in view["takeaway"]
    assert f"takeaway: {view['takeaway']}" in capsys.readouterr().out
    assert "Is every SE block wired in? (se-vgg)" in view["panels"]
    assert view["numbers"]["delta/vgg"] == pytest.approx(float(table.set_index("family").at["vgg", "delta"]))


@pytest.mark.slow
def test_the_architectures_result_opens_on_the_first_se_run_and_takes_a_run_and_classes():
    from sevis.errors import SevisError
    from sevis.views.base import ViewRequest
    from sevis.views.families import compute
    embedded = load_model("embedded")
    default = compute(embedded, ViewRequest())
    keys = [p.key for p in default.panels]
    assert keys == ["architectures_table", "architectures_delta", "architectures_depth_profiles",
                    "architectures_what_se_adds", "fig6_se-inception", "check_se-inception"]
    assert set(default.panel("fig6_se-inception").data["class"]) == {"Trouser", "Sneaker", "Bag", "Coat", "all"}
    # a family model picked as the model opens on itself; --run and --classes choose; a plain twin has no Fig. 6
    assert compute(load_model("family:se-vgg"), ViewRequest()).panels[4].key == "fig6_se-vgg"
    plain = compute(embedded, ViewRequest(run="vgg", classes=("Bag", "Sandal")))
    assert [p.key for p in plain.panels][4:] == ["check_vgg"]
    assert "vgg has no SE blocks (the plain twin): no excitations to plot." in plain.notes
    assert plain.takeaway == default.takeaway  # the takeaway is about the grid, not the run shown
    with pytest.raises(SevisError, match="unknown architecture run 'resnet'"):
        compute(embedded, ViewRequest(run="resnet"))
    with pytest.raises(SevisError, match="unknown class"):
        compute(embedded, ViewRequest(classes=("Cat",)))


@pytest.mark.app
def test_app_architectures_view_renders(media):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["view"] = "Architectures"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="fam_run").set_value("se-resnext")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["architecture"]) == ["Inception", "ResNeXt", "MobileNet", "VGG"]
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Depth profiles of every architecture" in titles and "SE-ResNeXt: mean excitation per class" in titles
    assert list(at.dataframe[1].value["architecture"]) == ["Inception", "ResNeXt", "MobileNet", "VGG"]  # cost, paper
    assert "paper's row" in at.dataframe[1].value.columns and "verdict" in table.columns
    check = at.dataframe[-1].value
    assert len(check) == 16 and (check["runs"] == "yes").all() and "s near 0.5" in check.columns
    takeaway = [m.value for m in at.info if m.value.startswith("**Takeaway.**")]
    assert takeaway and "extra parameters" in takeaway[0]
    # the family models are in the sidebar's model picker too
    at.selectbox(key="model_kind").set_value("Architecture model (trained by sevis family)")
    at.run()
    assert not at.exception and at.selectbox(key="family_name").options[0].startswith("se-inception")
