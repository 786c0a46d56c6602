"""Training survives interruption: a resumed run ends with exactly the weights of an uninterrupted one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sevis.checkpoint import read_card
from sevis.errors import SevisError
from sevis.train import TrainConfig, resume_path, train

pytestmark = pytest.mark.timeout(900)
TINY = dict(epochs=2, train_images=512, test_images=200, batch_size=64, threads=1)


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resumed_training_equals_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(**TINY)
    ck = tmp_path / "run.resume.pt"
    _, first = train(cfg, checkpoint=ck, stop_after=1)  # "interrupted" after epoch 1
    assert ck.exists() and len(first["epoch_seconds"]) == 1
    resumed, history = train(cfg, checkpoint=ck)
    whole, whole_history = train(cfg)
    _same_weights(resumed.state_dict(), whole.state_dict())
    assert history["test_accuracy"] == whole_history["test_accuracy"]
    assert len(history["epoch_seconds"]) == 2  # the history carries over the interruption
    # A checkpoint of other settings is refused with one message, never silently mixed in.
    with pytest.raises(SevisError, match="other settings"):
        train(TrainConfig(**{**TINY, "lr": 0.05}), checkpoint=ck)


def _cli(out: Path) -> list[str]:
    return [sys.executable, "-m", "sevis", "train", "--epochs", "3", "--train-images", "1536", "--test-images", "200",
            "--batch-size", "64", "--threads", "1", "--out", str(out)]


def test_sevis_train_killed_after_an_epoch_continues_where_it_stopped(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = tmp_path / "killed" / "m.safetensors"
    proc = subprocess.Popen(_cli(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not resume_path(out).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # as a session that is stopped without warning
    proc.wait()
    assert resume_path(out).exists() and not out.exists(), proc.stdout.read()
    again = subprocess.run(_cli(out), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout
    assert out.exists() and not resume_path(out).exists()
    whole = tmp_path / "whole" / "m.safetensors"
    subprocess.run(_cli(whole), env=env, capture_output=True, text=True, timeout=600, check=True)
    _same_weights(load_file(str(out)), load_file(str(whole)))
    card = read_card(out)
    assert card["dataset"]["variant"] == "context" and card["preprocessing"]["canvas"] == 36
    assert len(card["training"]["epoch_seconds"]) == 3 and card["command"].startswith("sevis train")
