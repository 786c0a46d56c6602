"""The untrained control: the same architecture with seeded random weights, BatchNorm statistics recalibrated
on data.

Any claim about what SE *learned* needs it beside the trained model: on centred Fashion-MNIST an untrained
network's early SE blocks are already as class-specific as the trained one's, because a global average pool
of early features encodes ink coverage and outline. Recalibrating BatchNorm keeps the control's activations
in range (random running statistics would saturate every gate), without learning anything from labels.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Iterable

import torch
from torch import nn

from sevis.models.families import FamilyNet, build_family
from sevis.models.resnet import SEResNet
from sevis.models.zoo import LoadedModel


def reinitialise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Return a copy of `model` with seeded random weights: sevis SE-ResNets get their own (Kaiming) init,
    sevis family networks too, other networks every module's `reset_parameters`."""
    torch.manual_seed(seed)
    if isinstance(model, SEResNet):
        return SEResNet(model.cfg)
    if isinstance(model, FamilyNet):
        return build_family(model.cfg)
    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return fresh


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Return `model` in eval mode with every BatchNorm's running statistics re-estimated on `batches`
    (a plain average over all of them, not a moving one)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch counts the same
    model.train()
    for x in batches:
        model(x)
    return model.eval()


def untrained_control(loaded: LoadedModel, batches: Iterable[torch.Tensor], seed: int = 0) -> LoadedModel:
    """Return `loaded`'s untrained control: same architecture and preprocessing, seeded random weights,
    BatchNorm statistics recalibrated on `batches` (preprocessed images; labels are never seen)."""
    model = recalibrate_batchnorm(reinitialise(loaded.model, seed), batches)
    return replace(loaded, model=model, name=f"{loaded.name} (untrained control)",
                   spec=f"{loaded.spec}#untrained", source="control")
