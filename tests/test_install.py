"""A non-editable install works without the checkout: the wheel built from this tree, installed into a fresh venv
and run from a folder outside the checkout (no PYTHONPATH), predicts, exports, serves the app and loads the default
model from the package data that travelled inside it.

The wheel and the venv are real; only the dependencies (torch with CUDA alone is several GB, downloaded from the
package index) are not installed again: the fresh venv sees the test interpreter's site-packages through a .pth
file, added after sevis itself is installed, so pip installs sevis into the fresh venv and nothing else, offline.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.server import free_port
from sevis.data.fashion_mnist import load_reference_set
from sevis.names import FIG6_DEFAULT_CLASSES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# What a build must not copy from the checkout: environments, caches, build outputs, training left-overs.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", ".pytest_cache",
                                    ".hypothesis", "runs", ".data", ".whl", ".device", "*.resume.pt", "*.lock")
CLASSES = ("Trouser", "Bag", "Sneaker")  # garments the default model names with > 99% (real test images)
STEP_S = 600  # one install step or command; a busy 2-core machine imports torch slowly


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `cmd` and return its result; a non-zero exit fails the test with its output."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_S)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from a copy of this tree, install it into a fresh venv; return the venv, a work folder
    outside the checkout, the environment to run in and the wheel."""
    base = tmp_path_factory.mktemp("install")
    src, dist, venv, work = base / "src", base / "dist", base / "venv", base / "work"
    shutil.copytree(ROOT, src, symlinks=True, ignore=NOT_SOURCE)  # the build writes build/ into its source
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # --no-build-isolation: setuptools comes from this interpreter, so the build needs no network.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
         base, env)
    wheel = next(dist.glob("sevis-*.whl"))
    _run([sys.executable, "-m", "venv", str(venv)], base, env)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", str(wheel)], work, env)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     work, env).stdout.strip())
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_sevis_test_dependencies.pth").write_text("".join(f"{d}\n" for d in deps))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"venv": venv, "python": python, "bin": venv / "bin", "work": work, "env": env, "wheel": wheel}


def test_wheel_carries_every_subpackage_and_the_shipped_files(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "sevis").rglob("__init__.py")}
    assert packages <= {n.rpartition("/")[0] for n in names if n.endswith("/__init__.py")}
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "sevis" / "pretrained").rglob("*")
               if p.is_file() and not p.name.endswith((".lock", ".resume.pt"))}
    assert shipped <= names, sorted(shipped - names)[:5]
    assert {"sevis/app/script.py", "sevis/app/.streamlit/config.toml"} <= names


def test_import_and_load_model_outside_the_checkout(installed):
    code = ("import json, sevis; from importlib.metadata import requires, version; "
            "from packaging.requirements import Requirement; m = sevis.load_model('embedded'); "
            "reqs = [Requirement(r) for r in requires('sevis')]; "
            "unmet = [str(r) for r in reqs if r.marker is None and not r.specifier.contains(version(r.name), True)]; "
            "print(json.dumps({'file': sevis.__file__, 'classes': list(m.classes), 'unmet': unmet, "
            "'blocks': len(sevis.find_se_blocks(m.model))}))")
    out = json.loads(_run([str(installed["python"]), "-c", code], installed["work"], installed["env"]).stdout)
    assert Path(out["file"]).is_relative_to(installed["venv"]), out["file"]  # the installed copy, not the checkout
    assert out["classes"][1] == "Trouser" and len(out["classes"]) == 10
    assert out["blocks"] == 16  # SE-ResNet-50's layout: 3 + 4 + 6 + 3 SE blocks
    assert out["unmet"] == []  # the wheel's declared dependencies are the ones these tests run with


def test_predict_outside_the_checkout(installed):
    ref = load_reference_set(variant="centred")
    paths = []
    for name in CLASSES:
        i = int(np.flatnonzero(ref.labels == ref.classes.index(name))[0])
        paths.append(installed["work"] / f"{name}.png")
        Image.fromarray(ref.images[i]).save(paths[-1])
    done = _run([str(installed["bin"] / "sevis"), "predict", *map(str, paths), "--json", "--top", "1"],
                installed["work"], installed["env"])
    records = json.loads(done.stdout)
    assert [r["top"][0]["class"] for r in records] == list(CLASSES)
    assert all(r["domain"]["in_domain"] for r in records)  # the shipped reference statistics were found


def test_export_outside_the_checkout(installed):
    out = installed["work"] / "figs"
    _run([str(installed["bin"] / "sevis"), "export", "fig6", "--format", "csv", "--out", str(out)],
         installed["work"], installed["env"])
    with open(out / "fig6_class_means.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["class"] for r in rows} == set(FIG6_DEFAULT_CLASSES)
    assert {"SE_2_3", "SE_5_3"} <= {r["block"] for r in rows}
    assert all(0.0 <= float(r["mean"]) <= 1.0 for r in rows)


def test_sevis_app_serves_the_installed_page(installed):
    port = free_port()
    log = installed["work"] / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(installed["bin"] / "sevis"), "app", "--server.port", str(port),
                                 "--server.address", "127.0.0.1"], cwd=installed["work"], env=installed["env"],
                                stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STEP_S
            while True:
                assert proc.poll() is None, f"sevis app exited {proc.returncode}:\n{log.read_text()}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                        assert r.status == 200 and r.read().decode().strip() == "ok"
                        break
                except OSError:
                    assert time.monotonic() < deadline, f"no answer in {STEP_S} s:\n{log.read_text()}"
                    time.sleep(1)
            # The server is the installed package's page: `sevis app` became `streamlit run <site-packages>/...`.
            served = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            script = next(Path(a.decode()) for a in served if a.endswith(b"script.py"))
            assert script.is_relative_to(installed["venv"]) and script.match("sevis/app/script.py"), served
        finally:
            proc.terminate()  # sevis app became streamlit (exec), so this stops the server itself
            proc.wait(timeout=60)


@pytest.mark.app
def test_the_installed_page_renders_outside_the_checkout(installed):
    """Streamlit's AppTest runs the installed script once: the default view draws its figures, with no exception."""
    code = ("import json, sevis.app; from pathlib import Path; from streamlit.testing.v1 import AppTest; "
            "script = Path(sevis.app.__file__).with_name('script.py'); "
            f"at = AppTest.from_file(str(script), default_timeout={STEP_S}); at.run(); "
            "print(json.dumps({'script': str(script), 'exceptions': [e.value for e in at.exception], "
            "'charts': len(at.get('plotly_chart'))}))")
    out = json.loads(_run([str(installed["python"]), "-c", code], installed["work"], installed["env"]).stdout
                     .strip().splitlines()[-1])
    assert Path(out["script"]).is_relative_to(installed["venv"])
    assert out["exceptions"] == [] and out["charts"] >= 1
