"""ImageNet weights offline: asking for uncached pretrained weights fails at once with the one message that names
the fix; cached weights load without the network; --random-weights needs no weights at all.

The hub is made unreachable on purpose (HF_ENDPOINT and the proxies point at a closed local port, empty caches),
so these tests behave the same on a machine that is online.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sevis.cli.main import main
from sevis.data.fashion_mnist import load_reference_set

ROOT = Path(__file__).resolve().parent.parent
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there, connections are refused at once


@pytest.fixture
def photo(tmp_path) -> Path:
    """A reference-set garment saved as a PNG file."""
    path = tmp_path / "coat.png"
    ref = load_reference_set()
    Image.fromarray(ref.images[int(np.flatnonzero(ref.labels == 4)[0])], "L").save(path)
    return path


def _offline_env(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HF_ENDPOINT=CLOSED, http_proxy=CLOSED, https_proxy=CLOSED, HTTP_PROXY=CLOSED, HTTPS_PROXY=CLOSED,
               HF_HUB_CACHE=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"))
    env.pop("HF_HUB_OFFLINE", None)
    env.update(extra)
    return env


def _sevis(args: list[str], env: dict) -> subprocess.CompletedProcess:
    # The timeout only guards against a hang (the old behaviour: ~50 s of retries); no timing is asserted.
    return subprocess.run([sys.executable, "-m", "sevis", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["timm:seresnet50", "timm:legacy_seresnet18", "torchvision:mobilenet_v3_small"])
def test_uncached_pretrained_weights_offline_fail_with_one_line_naming_the_fix(spec, photo, tmp_path):
    proc = _sevis(["predict", str(photo), "--model", spec], _offline_env(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # no retry warnings, no traceback
    assert lines[0].startswith(f"sevis: error: weights for {spec} cannot be had")
    assert "Connect to the internet once" in lines[0] and f"--arch {spec}" in lines[0]


def test_hf_hub_offline_env_fails_the_same_way(photo, tmp_path):
    proc = _sevis(["predict", str(photo), "--model", "timm:seresnet50"],
                  _offline_env(tmp_path, HF_ENDPOINT="https://huggingface.co", HF_HUB_OFFLINE="1"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "Connect to the internet once" in proc.stderr


def _cache_timm_weights(name: str, tmp_path: Path) -> Path:
    """Put random weights (seed 1) for timm `name` where the hub client or torch.hub would have cached them;
    return a safetensors copy of the same weights."""
    import timm
    from safetensors.torch import save_file
    from timm.models import get_pretrained_cfg

    torch.manual_seed(1)
    state = {k: v.contiguous() for k, v in timm.create_model(name, pretrained=False).state_dict().items()}
    cfg = get_pretrained_cfg(name)
    if cfg.hf_hub_id:
        repo = tmp_path / "hf" / f"models--{cfg.hf_hub_id.replace('/', '--')}"
        commit = "0123456789abcdef0123456789abcdef01234567"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
        (repo / "snapshots" / commit).mkdir(parents=True)
        save_file(state, repo / "snapshots" / commit / "model.safetensors")
    else:
        checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        torch.save(state, checkpoints / os.path.basename(cfg.url))
    save_file(state, tmp_path / "weights.safetensors")
    return tmp_path / "weights.safetensors"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "legacy_seresnet18"])  # hub-hosted, URL-hosted
def test_cached_weights_load_offline_without_the_network(name, photo, tmp_path):
    weights = _cache_timm_weights(name, tmp_path)
    env = _offline_env(tmp_path)
    cached = _sevis(["excite", str(photo), "--model", f"timm:{name}", "--out", str(tmp_path / "cached.npz")], env)
    assert cached.returncode == 0, cached.stderr
    assert "Retry" not in cached.stderr and "Warning" not in cached.stderr, cached.stderr
    local = _sevis(["excite", str(photo), "--model", str(weights), "--arch", f"timm:{name}",
                    "--out", str(tmp_path / "local.npz")], env)
    assert local.returncode == 0, local.stderr
    with np.load(tmp_path / "cached.npz") as a, np.load(tmp_path / "local.npz") as b:
        blocks = [k for k in a.files if k.startswith("s/")]
        assert blocks and blocks == [k for k in b.files if k.startswith("s/")]
        for k in blocks:  # the cached file's weights, not random ones
            np.testing.assert_array_equal(a[k], b[k])


def test_random_weights_need_no_download_and_are_reproducible(photo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    outs = []
    for i in range(2):
        out = tmp_path / f"s{i}.npz"
        assert main(["excite", str(photo), "--model", "timm:legacy_seresnet18", "--random-weights",
                     "--out", str(out)]) == 0
        with np.load(out) as data:
            outs.append({k: data[k] for k in data.files if k.startswith("s/")})
    assert len(outs[0]) == 8  # legacy SE-ResNet-18: 8 SE blocks
    for k in outs[0]:
        np.testing.assert_array_equal(outs[0][k], outs[1][k])
    assert main(["predict", str(photo), "--model", "timm:legacy_seresnet18", "--random-weights", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "excitation s" in out and "SE" in out


def test_random_weights_refuse_a_weights_file(photo, tmp_path, capsys):
    assert main(["predict", str(photo), "--model", str(tmp_path / "w.safetensors"), "--random-weights"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sevis: error: --random-weights needs a model name") and len(err.splitlines()) == 1
