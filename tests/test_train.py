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

from sevis.errors import SevisError
from sevis.models.checkpoint import read_card
from sevis.train.trainer import TrainConfig, resume_path, train

pytestmark = pytest.mark.timeout(900)
TINY = dict(epochs=2, train_images=512, test_images=200, batch_size=64, threads=1)


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_in_context_training_composes_the_28px_garments_afresh(monkeypatch):
    """Each training image is a 28 px garment composed onto a fresh background, exactly like a test image, never a
    seeded 36 px rendering shrunk onto a second background (the bug of data version 1)."""
    import numpy as np

    from sevis.data.context import ContextConfig, compose, sample_params
    from sevis.data.fashion_mnist import data_normalisation, load_fashion_mnist
    from sevis.train import trainer as T
    seen = []
    real = T._batches

    def spy(cfg, split, epoch, steps):
        seen.append(split.images.shape[1:])
        for x, y in real(cfg, split, epoch, steps):
            seen.append((x, y))
            yield x, y

    monkeypatch.setattr(T, "_batches", spy)
    cfg = TrainConfig(epochs=1, train_images=256, test_images=50, batch_size=128, threads=1, bn_images=0)
    T.train(cfg)
    assert seen[0] == (28, 28)
    x, y = seen[1]
    garments = load_fashion_mnist("train").images[:256]
    gen, rng = T.epoch_generators(cfg.seed, 0)
    order = rng.permutation(256)[:128]
    params = sample_params(256, gen, ContextConfig(flip=cfg.flip))
    mean, std = data_normalisation("context")
    expected = T.normalise(compose(garments[order], params[torch.from_numpy(order)], ContextConfig(flip=cfg.flip)),
                           mean, std)
    torch.testing.assert_close(x, expected)
    assert np.array_equal(y.numpy(), load_fashion_mnist("train").labels[:256][order])


def test_batchnorm_recalibration_after_the_last_epoch_is_deterministic():
    from sevis.data.fashion_mnist import Split, load_split
    from sevis.train.trainer import recalibrate_batchnorm
    cfg = TrainConfig(epochs=1, train_images=512, test_images=100, batch_size=128, threads=1, bn_images=500)
    model, history = train(cfg)
    assert history["log"][-1].startswith("BatchNorm statistics re-estimated over 500 fresh training images")
    assert history["test_accuracy_before_bn"] == history["test_accuracy"][-1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    garments = load_split("train", "centred")
    recalibrate_batchnorm(model, cfg, Split(garments.images[:512], garments.labels[:512]))
    after = model.state_dict()
    for k in before:  # the same images give the same statistics (up to float order: training ran channels-last)
        torch.testing.assert_close(after[k], before[k], rtol=1e-4, atol=1e-5)
    assert any("running_var" in k and not torch.equal(after[k], torch.ones_like(after[k])) for k in after)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.momentum == 0.1 and not model.training  # training's settings restored, ready to evaluate
