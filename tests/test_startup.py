"""Fast start: `sevis --help`, `sevis models` and usage errors import no torch; what made that possible
(a torch-free name list, a torchvision-free grayscale preprocessing) matches what it replaced."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "timm", "pandas", "plotly", "streamlit")


def _modules_after(argv: list[str]) -> dict:
    """Run sevis.cli.main.main(argv) in a fresh interpreter; return its exit code, output and the heavy modules
    loaded."""
    code = f"""
import contextlib, io, json, sys
from sevis.cli.main import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        rc = main({argv!r})
    except SystemExit as e:
        rc = e.code
print(json.dumps({{"rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                  "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["predict", "--help"], ["stats", "--help"],
                                  ["predict"], ["frobnicate"], ["predict", "x.png", "--top", "0"]])
def test_help_models_and_usage_errors_import_no_torch(argv):
    r = _modules_after(argv)
    assert r["loaded"] == [], f"sevis {' '.join(argv)} imported {r['loaded']}"
    if argv[-1] == "--help":
        assert r["rc"] == 0 and "usage: sevis" in r["out"]
    elif argv == ["models"]:
        assert r["rc"] == 0 and "timm:seresnet50" in r["out"] and "embedded" in r["out"]
    else:
        assert r["rc"] == 2 and "sevis" in r["err"] and "error" in r["err"]


def test_models_names_match_the_registry_and_zoo():
    from sevis import names
    from sevis.models import zoo
    from sevis.models.resnet import list_architectures
    assert names.SEVIS_ARCHITECTURES == tuple(list_architectures())
    from sevis.models.resnet import architecture_config
    assert names.SEVIS_PLAIN_ARCHITECTURES == tuple(a for a in list_architectures() if not architecture_config(a).se)
    assert zoo.list_se_models is names.list_se_models and zoo.EMBEDDED is names.EMBEDDED
    for spec in names.list_se_models()["sevis"] + names.list_se_models()["embedded"]:
        zoo.load_model(spec, pretrained=False)  # every listed sevis spec builds


def _torchvision_grayscale(size, mean, std, auto_invert=True, canvas=None):
    """The torchvision pipeline sevis.data.preprocess.grayscale_transform replaced (the reference to match)."""
    from torchvision import transforms as T

    from sevis.data.preprocess import InvertIfLightBackground
    steps = [T.Grayscale(1)] + ([InvertIfLightBackground()] if auto_invert else [])
    steps += [T.Resize(size), T.CenterCrop(size)]
    if canvas and canvas > size:
        extra = canvas - size
        steps.append(T.Pad((extra // 2, extra // 2, extra - extra // 2, extra - extra // 2), fill=0))
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


def _test_images() -> list[Image.Image]:
    """Reference-set garments, plus photos-like images of many shapes (wide, tall, tiny, light background)."""
    from sevis.data.fashion_mnist import load_reference_set
    ref = load_reference_set()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(a, "L").convert("RGB") for a in ref.images[::97]]
    for w, h in [(40, 30), (30, 40), (64, 48), (13, 7), (7, 13), (28, 28), (29, 57), (300, 200), (1, 5), (201, 3)]:
        images.append(Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB"))
    images.append(Image.fromarray(255 - ref.images[3], "L").resize((56, 70)))  # light background: inverted
    return images


@pytest.mark.parametrize("kwargs", [dict(size=28, mean=[0.2860], std=[0.3530]),
                                    dict(size=28, mean=[0.5], std=[0.25], auto_invert=False),
                                    dict(size=28, mean=[0.3571], std=[0.2322], canvas=36),
                                    dict(size=32, mean=[0.0], std=[1.0])])
def test_grayscale_transform_equals_torchvision_bit_for_bit(kwargs):
    from sevis.data.preprocess import grayscale_transform
    ours, theirs = grayscale_transform(**kwargs), _torchvision_grayscale(**kwargs)
    for img in _test_images():
        a, b = ours(img), theirs(img)
        assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
        assert torch.equal(a, b), img.size
