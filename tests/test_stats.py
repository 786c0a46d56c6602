"""`sevis stats`: per-class, per-block statistics over a labelled folder; one process equals two under torchrun
(gloo); the file reads back into ExcitationStats and `sevis export --folder FILE.json` uses it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sevis.analysis.stats import read_stats_file
from sevis.cli.main import main
from sevis.core.statistics import ExcitationStats
from sevis.data.fashion_mnist import load_reference_set
from sevis.names import EMBEDDED

ROOT = Path(__file__).resolve().parent.parent
MODEL = "embedded-centred" if "embedded-centred" in EMBEDDED else "embedded"  # the model trained on centred garments
CLASSES = ("Trouser", "Bag", "Sneaker")
PER_CLASS = 6
TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes × 6 reference-set garments as PNG files, and one unreadable file among the bags."""
    root = tmp_path_factory.mktemp("labelled")
    ref = load_reference_set()
    for cls in CLASSES:
        (root / cls).mkdir()
        k = ref.classes.index(cls)
        for j, i in enumerate(np.flatnonzero(ref.labels == k)[:PER_CLASS]):
            Image.fromarray(ref.images[i], "L").save(root / cls / f"{j}.png")
    (root / "Bag" / "broken.png").write_bytes(b"not a png")
    return root


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture(scope="module")
def single_and_torchrun(folder, tmp_path_factory) -> tuple[dict, dict]:
    """The same folder through `sevis stats` in one process (2 decoding workers) and under torchrun with 2 processes."""
    out = tmp_path_factory.mktemp("stats")
    one = _run(folder, [sys.executable, "-m", "sevis"], ["--workers", "2"], out / "one.json")
    if not TORCHRUN.exists():
        pytest.skip(f"no torchrun beside {sys.executable}")
    two = _run(folder, [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "-m", "sevis"],
               ["--workers", "1"], out / "two.json")
    return one, two


def _run(folder: Path, launcher: list[str], extra: list[str], out: Path) -> dict:
    # A session of its own, so that a hang (a guard, not a timing assertion) takes torchrun's workers down too.
    proc = subprocess.Popen(launcher + ["stats", "--folder", str(folder), "--model", MODEL, "--out", str(out)] + extra,
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.count("wrote ") == 1, stdout  # only rank 0 writes and prints
    return json.loads(out.read_text())


def _close(a, b, path: str = "") -> None:
    """Assert two JSON trees are equal, numbers to 1e-6 (relative for the large running sums)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and a and isinstance(a[0], (list, float, int)) and not isinstance(a[0], bool):
        x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert x.shape == y.shape, path
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6, err_msg=path)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-6), path
    else:
        assert a == b, path


def test_two_processes_give_the_same_statistics_as_one(single_and_torchrun):
    one, two = single_and_torchrun
    assert one["images"] == two["images"] == len(CLASSES) * PER_CLASS
    assert one["unreadable"] == two["unreadable"] == 1
    assert one["images_per_class"] == {c: PER_CLASS for c in CLASSES}
    assert len(one["first_errors"]) == 1 and one["first_errors"][0].startswith("broken.png: not an image file")
    _close(one, two)


def test_statistics_match_the_app_computation_on_the_same_folder(single_and_torchrun, folder):
    from sevis.analysis.reference import reference_statistics
    from sevis.models.zoo import load_model

    one, _ = single_and_torchrun
    loaded = load_model(MODEL)
    ref = reference_statistics(loaded, str(folder))
    stats = ExcitationStats.from_dict(one["statistics"])
    assert stats.classes == sorted(CLASSES) == ref.stats.classes
    assert stats.blocks == ref.stats.blocks == one["blocks"] and len(one["blocks"]) == len(one["channels"]) > 0
    for block in stats.blocks:
        np.testing.assert_allclose(stats.mean(block), ref.stats.mean(block), atol=1e-6)
        np.testing.assert_allclose(stats.std(block), ref.stats.std(block), atol=1e-6)
        assert stats.class_specificity(block) == pytest.approx(ref.stats.class_specificity(block), abs=1e-6)
    np.testing.assert_array_equal(stats.count, [PER_CLASS] * 3)
    assert one["accuracy"] == pytest.approx(ref.accuracy)  # the classes are the model's: accuracy is measured
    assert one["accuracy"] > 0.8  # the shipped model on its own test garments
    summary = {row["block"]: row for row in one["summary"]}
    assert summary[stats.blocks[-1]]["spread"] == pytest.approx(stats.spread(stats.blocks[-1]))


def test_to_dict_from_dict_round_trip_is_exact(single_and_torchrun, tmp_path):
    one, _ = single_and_torchrun
    stats = ExcitationStats.from_dict(one["statistics"])
    assert stats.to_dict() == one["statistics"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(one))
    again, data = read_stats_file(path)
    assert again.to_dict() == one["statistics"] and data["model"] == MODEL
    empty = ExcitationStats(["a", "b"], {"B": 3})
    back = ExcitationStats.from_dict(json.loads(json.dumps(empty.to_dict())))
    assert back.to_dict() == empty.to_dict() and np.isnan(back.mean("B")).all()


def test_export_reads_a_stats_file_instead_of_recomputing(single_and_torchrun, folder, tmp_path):
    one, _ = single_and_torchrun
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps(one))
    argv = ["export", "fig6", "--model", MODEL, "--classes", "Bag", "Trouser", "--format", "csv",
            "--channels", "all"]
    assert main(argv + ["--folder", str(stats_file), "--out", str(tmp_path / "from_file")]) == 0
    assert main(argv + ["--folder", str(folder), "--out", str(tmp_path / "from_folder")]) == 0
    a = sorted((tmp_path / "from_file").glob("*.csv"))
    b = sorted((tmp_path / "from_folder").glob("*.csv"))
    assert a and [p.name for p in a] == [p.name for p in b]
    import pandas as pd
    for x, y in zip(a, b):
        fx, fy = pd.read_csv(x), pd.read_csv(y)
        assert list(fx.columns) == list(fy.columns) and len(fx) == len(fy) > 0
        num = fx.select_dtypes("number").columns
        np.testing.assert_allclose(fx[num].to_numpy(float), fy[num].to_numpy(float), atol=1e-6)


def test_stats_file_of_another_model_is_refused(single_and_torchrun, tmp_path, capsys):
    one, _ = single_and_torchrun
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps(one))
    assert main(["export", "fig6", "--model", "sevis:se_resnet18", "--random-weights", "--folder", str(stats_file),
                 "--format", "csv", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SE blocks differ" in err


@pytest.mark.parametrize("argv, words", [
    (["stats", "--folder", "/no/such/folder", "--out", "s.json"], "no such folder"),
    (["stats", "--folder", ".", "--out", "s.csv"], "name a .json file"),
    (["export", "fig6", "--folder", "/no/such.json", "--out", "x"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sevis: error: ") and words in err, err


def test_stats_usage_errors_exit_2():
    with pytest.raises(SystemExit) as info:
        main(["stats", "--folder", "x", "--out", "s.json", "--workers", "-1"])
    assert info.value.code == 2
