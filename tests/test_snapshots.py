"""Training snapshots: `sevis train --snapshots` keeps fp16 weights, loadable as embedded@<epoch> and listed."""
from __future__ import annotations

import pytest
import torch

from sevis.errors import ModelError
from sevis.models.resnet import create_resnet
from sevis.models.zoo import load_model
from sevis.names import snapshot_epochs
from sevis.train.trainer import TrainConfig, resume_path, seed_everything, train


def _seeded_initialisation(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """The weights train() starts from: seed_everything(seed), then create_resnet (nothing draws in between)."""
    seed_everything(seed)
    return create_resnet(arch).state_dict()


def _same_as_fp16(state: dict[str, torch.Tensor], model: torch.nn.Module) -> bool:
    own = model.state_dict()
    return set(own) == set(state) and all(
        torch.equal(own[k], v.half().float() if v.is_floating_point() else v) for k, v in state.items())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A two-epoch run on 256 garments keeping snapshots 0, 1 and 2, written where embedded's would be."""
    folder = tmp_path_factory.mktemp("snapshots")
    cfg = TrainConfig(arch="fmnist_se_resnet50", epochs=2, batch_size=64, train_images=256, test_images=200,
                      bn_images=0, threads=1, snapshots=(0, 1, 2), seed=3)
    train(cfg, log=lambda line: None, checkpoint=resume_path(folder / "fmnist_se_resnet50.safetensors"))
    return folder, cfg


def test_a_run_keeps_its_snapshots_and_they_load(tiny_run, monkeypatch, capsys):
    folder, cfg = tiny_run
    monkeypatch.setenv("SEVIS_SNAPSHOT_DIR", str(folder))
    assert snapshot_epochs("embedded") == [0, 1, 2]
    models = {e: load_model(f"embedded@{e}") for e in (0, 1, 2)}
    for e, m in models.items():
        assert m.source == "snapshot" and m.card["snapshot"]["epoch"] == e and not m.model.training
        assert 0.0 <= m.card["snapshot"]["test_accuracy"] <= 1.0 and "evaluation" not in m.card
        assert next(m.model.parameters()).dtype == torch.float32
    assert _same_as_fp16(_seeded_initialisation(cfg.arch, cfg.seed), models[0].model)  # epoch 0 = the init
    first = {e: m.model.conv1.weight for e, m in models.items()}
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])  # training moved them
    from sevis.cli.main import main
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "training snapshots:" in out and "embedded@2" in out


def test_unknown_snapshots_fail_with_one_clear_message(tiny_run, monkeypatch):
    monkeypatch.setenv("SEVIS_SNAPSHOT_DIR", str(tiny_run[0]))
    with pytest.raises(ModelError, match="no snapshot after epoch 7; available: embedded@0, embedded@1, embedded@2"):
        load_model("embedded@7")
    with pytest.raises(ModelError, match="must be an epoch number"):
        load_model("embedded@last")
    with pytest.raises(ModelError, match="has no training snapshots"):
        load_model("embedded-centred@0")


shipped = pytest.mark.skipif(len(snapshot_epochs("embedded")) < 2,
                             reason="the retrained model's snapshots are not there")


@shipped
def test_shipped_snapshots_load_differ_and_start_at_the_seeded_initialisation():
    epochs = snapshot_epochs("embedded")
    assert epochs[0] == 0
    models = [load_model(f"embedded@{e}") for e in epochs]
    card = load_model("embedded").card
    assert _same_as_fp16(_seeded_initialisation(card["training"]["arch"], card["training"]["seed"]), models[0].model)
    weights = [m.model.fc.weight for m in models]
    assert all(not torch.equal(a, b) for i, a in enumerate(weights) for b in weights[i + 1:])
    accuracy = [m.card["snapshot"]["test_accuracy"] for m in models]
    assert accuracy[-1] > accuracy[0] + 0.5  # from chance to a trained model
