"""The `sevis` command line: predict, excite, evaluate, models; every user error is one line and exit 2."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sevis import ExcitationRecorder, list_se_models, load_model
from sevis.analysis.reports import read_excitations
from sevis.cli.main import build_parser, main
from sevis.data.preprocess import open_image

ROOT = Path(__file__).resolve().parent.parent
# The embedded architecture's SE blocks: SE-ResNet-50's 3-4-6-3 at 1/8 width.
SE_LAYOUT = [(2, 3, 32), (3, 4, 64), (4, 6, 128), (5, 3, 256)]
SE_CHANNELS = [c for _, n, c in SE_LAYOUT for _ in range(n)]
SE_NAMES = [f"SE_{s}_{b}" for s, n, _ in SE_LAYOUT for b in range(1, n + 1)]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sevis: error: ") and "Traceback" not in err
    return err


def _direct_excitations(checkpoint, paths):
    lm = load_model(checkpoint)
    x = torch.stack([lm.preprocess(open_image(p)) for p in paths])
    with torch.no_grad(), ExcitationRecorder(lm.model) as rec:
        probs = lm.model(x).softmax(1)
    return lm, probs, rec.excitations


# ------------------------------------------------------------------------------ models / parser
def test_models_lists_every_spec(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for source, specs in list_se_models().items():
        assert f"{source}:" in out
        for spec in specs:
            assert re.search(rf"^\s+{re.escape(spec)}$", out, re.M), spec


def _sections(out: str) -> dict[str, list[str]]:
    """Return `sevis models` output as {heading: specs}."""
    sections: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line and not line.startswith(" "):
            sections[line.rstrip(":")] = []
        elif line.strip():
            sections[list(sections)[-1]].append(line.strip())
    return sections


def test_models_lists_no_plain_model_under_an_se_heading(capsys):
    from sevis.core.recorder import find_se_blocks
    from sevis.models.params import build_on_meta
    from sevis.names import EMBEDDED, NO_SE_GROUP
    assert main(["models"]) == 0
    sections = _sections(capsys.readouterr().out)
    assert NO_SE_GROUP in sections and sections[NO_SE_GROUP]

    def se_blocks(spec: str) -> int:  # sevis's own models, built on the meta device (no weights)
        arch = EMBEDDED[spec] if spec in EMBEDDED else spec.partition(":")[2]
        return len(find_se_blocks(build_on_meta(arch)))

    sevis_specs = {h: [s for s in specs if s in EMBEDDED or s.startswith("sevis:")] for h, specs in sections.items()}
    for heading, specs in sevis_specs.items():
        for spec in specs:
            if heading == NO_SE_GROUP:
                assert se_blocks(spec) == 0, f"{spec} has SE blocks but is listed under {heading!r}"
            else:
                assert se_blocks(spec) > 0, f"{spec} has no SE block but is listed under {heading!r}"
    assert "embedded-plain" in sections[NO_SE_GROUP] and "sevis:resnet50" in sections[NO_SE_GROUP]
    assert "sevis:se_resnet50" in sections["sevis"] and "embedded" in sections["embedded"]


def test_parser_has_every_subcommand():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"predict", "excite", "evaluate", "train", "models"} <= set(sub.choices)


@pytest.mark.parametrize("argv", [["predict"], ["predict", "x.png", "--top", "0"], ["excite", "x.png"],
                                  ["evaluate", "--split", "validation"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


# ------------------------------------------------------------------------------ predict
def test_predict_prints_top_k_and_an_excitation_summary(tiny_checkpoint, image_files, capsys):
    paths = [str(image_files["rgb.png"]), str(image_files["gray.png"])]
    assert main(["predict", *paths, "--model", str(tiny_checkpoint), "--top", "4"]) == 0
    out = capsys.readouterr().out
    lm, probs, exc = _direct_excitations(tiny_checkpoint, paths)
    sections = out.strip().split("\n\n")
    assert len(sections) == 2
    for i, (path, section) in enumerate(zip(paths, sections)):
        lines = section.splitlines()
        assert lines[0] == path
        top = [re.match(r"^\s+(.+?)\s+([\d.]+)%$", line) for line in lines[1:5]]
        assert all(top), lines[1:5]
        expected = probs[i].topk(4)
        assert [m.group(1) for m in top] == [lm.classes[j] for j in expected.indices]
        assert [float(m.group(2)) for m in top] == pytest.approx((100 * expected.values).tolist(), abs=0.006)
        rows = [line.split() for line in lines[6:]]
        assert [r[0] for r in rows] == list(exc)
        for r, (name, s) in zip(rows, exc.items()):
            mean, lo, hi = map(float, r[1:4])
            assert (mean, lo, hi) == pytest.approx((float(s[i].mean()), float(s[i].min()), float(s[i].max())), abs=6e-4)
            assert r[4] == f"({s.shape[1]})"


@pytest.mark.parametrize("key,match", [("corrupt.png", "not an image file"), ("empty.png", "empty"),
                                       ("truncated.png", "truncated or corrupt")])
def test_predict_bad_image_is_one_line(tiny_checkpoint, image_files, capsys, key, match):
    rc = main(["predict", str(image_files["rgb.png"]), str(image_files[key]), "--model", str(tiny_checkpoint)])
    assert rc == 2
    err = _error_line(capsys)
    assert key in err and match in err


def test_predict_unknown_model_and_missing_file(tiny_checkpoint, image_files, tmp_path, capsys):
    assert main(["predict", str(image_files["rgb.png"]), "--model", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in _error_line(capsys)
    assert main(["predict", str(tmp_path / "nope.png"), "--model", str(tiny_checkpoint)]) == 2
    assert "nope.png: no such file" in _error_line(capsys)
    assert main(["predict", str(image_files["rgb.png"]), "--model", str(tmp_path / "w.safetensors")]) == 2
    assert "checkpoint not found" in _error_line(capsys)


def test_predict_checkpoint_of_another_architecture(tiny_checkpoint, image_files, capsys):
    rc = main(["predict", str(image_files["rgb.png"]), "--model", str(tiny_checkpoint),
               "--arch", "sevis:fmnist_resnet"])
    assert rc == 2
    assert "does not fit this architecture" in _error_line(capsys)


# ------------------------------------------------------------------------------ excite
@pytest.fixture
def excite_inputs(image_files):
    return [str(image_files[k]) for k in ("rgb.png", "gray.png", "rgba.png")]


def test_excite_csv_long_format(tiny_checkpoint, excite_inputs, tmp_path, capsys):
    out = tmp_path / "exc.csv"
    assert main(["excite", "--model", str(tiny_checkpoint), *excite_inputs, "--out", str(out)]) == 0
    assert "3 image(s)" in capsys.readouterr().out
    df = pd.read_csv(out)
    assert list(df.columns) == ["image", "block", "channel", "s"]
    assert len(df) == len(excite_inputs) * sum(SE_CHANNELS)
    _, _, exc = _direct_excitations(tiny_checkpoint, excite_inputs)
    for i, path in enumerate(excite_inputs):
        for name, s in exc.items():
            part = df[(df["image"] == path) & (df["block"] == name)].sort_values("channel")
            assert list(part["channel"]) == list(range(s.shape[1]))
            np.testing.assert_allclose(part["s"].to_numpy(), s[i].numpy(), atol=1e-6)


def test_excite_json_and_npz_parse_back_to_the_same_values(tiny_checkpoint, excite_inputs, tmp_path):
    files = {}
    for ext in ("csv", "json", "npz"):
        files[ext] = tmp_path / f"exc.{ext}"
        assert main(["excite", "--model", str(tiny_checkpoint), *excite_inputs, "--out", str(files[ext])]) == 0
    doc = json.loads(files["json"].read_text())
    assert [b["name"] for b in doc["blocks"]] == SE_NAMES
    assert [b["channels"] for b in doc["blocks"]] == SE_CHANNELS
    assert [d["image"] for d in doc["images"]] == excite_inputs
    records = {ext: read_excitations(path) for ext, path in files.items()}
    ref = records["csv"]
    for ext, rec in records.items():
        assert rec.images == excite_inputs, ext
        assert list(rec.excitations) == list(ref.excitations), ext
        for name, s in rec.excitations.items():
            assert s.shape == (3, ref.excitations[name].shape[1])
            np.testing.assert_allclose(s, ref.excitations[name], atol=1e-6)
    assert records["json"].predictions and len(records["json"].predictions) == 3


def test_excite_refuses_unknown_formats_and_unwritable_paths(tiny_checkpoint, excite_inputs, tmp_path, capsys):
    out = tmp_path / "exc.xlsx"
    assert main(["excite", "--model", str(tiny_checkpoint), *excite_inputs, "--out", str(out)]) == 2
    assert ".csv, .json or .npz" in _error_line(capsys) and not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["excite", "--model", str(tiny_checkpoint), *excite_inputs, "--out", str(blocker / "e.csv")]) == 2
    assert "cannot write" in _error_line(capsys)


def test_excite_bad_image(tiny_checkpoint, image_files, tmp_path, capsys):
    out = tmp_path / "e.npz"
    assert main(["excite", "--model", str(tiny_checkpoint), str(image_files["corrupt.png"]), "--out", str(out)]) == 2
    assert "corrupt.png" in _error_line(capsys) and not out.exists()


# ------------------------------------------------------------------------------ evaluate
@pytest.mark.slow
def test_evaluate_reference_split_and_write_card(tiny_checkpoint, tmp_path, capsys):
    weights = tmp_path / "copy.safetensors"
    shutil.copy(tiny_checkpoint, weights)
    shutil.copy(tiny_checkpoint.with_suffix(".json"), weights.with_suffix(".json"))
    argv = ["evaluate", "--model", str(weights), "--split", "reference", "--write-card"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    m = re.search(r"^accuracy: (\d+\.\d\d)% \((\d+) reference images\)$", out, re.M)
    assert m, out
    card = json.loads(weights.with_suffix(".json").read_text())
    ev = card["evaluation"]
    assert ev["command"] == "sevis " + " ".join(argv)
    assert ev["split"] == "reference" and ev["images"] == int(m.group(2))
    assert float(m.group(1)) == pytest.approx(100 * ev["accuracy"], abs=0.006)
    assert len(ev["per_class_accuracy"]) == 10
    # the accuracy equals an independent count over the reference set
    from sevis.analysis.inference import split_batches
    from sevis.data.fashion_mnist import load_reference_set
    lm = load_model(weights)
    ref = load_reference_set()
    with torch.no_grad():
        pred = torch.cat([lm.model(x).argmax(1) for x, _ in split_batches(lm, ref)]).numpy()
    assert ev["accuracy"] == pytest.approx(float((pred == ref.labels).mean()), abs=1e-6)
    assert [r["block"] for r in ev["excitation"]] == SE_NAMES
    for row in ev["excitation"]:
        assert 0 <= row["min_s"] <= row["mean_s"] <= row["max_s"] <= 1
        assert row["spread"] >= 0 and 0 <= row["class_specificity"] <= 1 and row["saturation"] <= 1
    assert "last_stage_spread" in ev and card["architecture"]  # the rest of the card is kept
    assert "spread" in out and "SE_5_2" in out


def test_evaluate_without_the_dataset(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEVIS_FASHION_MNIST_DIR", str(tmp_path))
    assert main(["evaluate", "--model", str(tiny_checkpoint)]) == 2
    err = _error_line(capsys)
    assert "Fashion-MNIST not found" in err and "apt-get install dataset-fashion-mnist" in err


def test_evaluate_write_card_needs_a_weights_file(capsys):
    assert main(["evaluate", "--model", "timm:seresnet18", "--write-card"]) == 2
    assert "--write-card" in _error_line(capsys)


# ------------------------------------------------------------------------------ as a process
def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sevis", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=env)


@pytest.mark.slow
def test_module_entry_point_errors_without_traceback(tiny_checkpoint, image_files, tmp_path):
    import os
    proc = _run("predict", str(image_files["corrupt.png"]), "--model", str(tiny_checkpoint))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sevis: error: ")
    assert "Traceback" not in proc.stderr
    env = {**os.environ, "SEVIS_FASHION_MNIST_DIR": str(tmp_path)}
    proc = _run("evaluate", "--model", str(tiny_checkpoint), env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "sevis"
    if not script.exists():
        pytest.skip("sevis is not installed as a console script in this environment")
    proc = subprocess.run([str(script), "models"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "timm:seresnet50" in proc.stdout
