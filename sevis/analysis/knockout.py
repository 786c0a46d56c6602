"""SE knock-out: replace s of chosen blocks by 1 (identity) or by a reference mean, and measure the effect.

The sweep (accuracy with each block knocked out in turn) reuses the unchanged prefix of the network:
for a ResNet-shaped model it runs the clean pass once per batch, keeps the input of every residual
block, and re-runs only the blocks from the knocked-out one onwards.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from sevis.core.recorder import ExcitationRecorder, Override, find_se_blocks
from sevis.models.zoo import LoadedModel

Mode = Literal["identity", "mean"]


@dataclass
class ResidualPipeline:
    """A model split as stem → residual blocks (in depth order) → head."""

    stem: Callable[[torch.Tensor], torch.Tensor]
    blocks: list[nn.Module]
    block_paths: list[str]
    head: Callable[[torch.Tensor], torch.Tensor]

    def run_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        for blk in self.blocks[start:]:
            x = blk(x)
        return self.head(x)


def residual_pipeline(model: nn.Module) -> ResidualPipeline | None:
    """Return the stem/blocks/head split of a ResNet-shaped model (sevis, timm ResNet/SENet), else None."""
    layers = [getattr(model, f"layer{i}", None) for i in range(1, 5)]
    if not all(isinstance(l, nn.Sequential) for l in layers) or not hasattr(model, "forward_head"):
        return None
    blocks, paths = [], []
    for i, layer in enumerate(layers, start=1):
        for j, blk in enumerate(layer):
            blocks.append(blk)
            paths.append(f"layer{i}.{j}")
    if hasattr(model, "forward_stem"):  # sevis SEResNet
        stem = model.forward_stem
    elif hasattr(model, "layer0"):  # timm legacy SENet: layer0, then its max pool (pool0)
        pool0 = getattr(model, "pool0", nn.Identity())
        stem = lambda x: pool0(model.layer0(x))  # noqa: E731
    elif all(hasattr(model, a) for a in ("conv1", "bn1", "act1", "maxpool")):  # timm ResNet
        stem = lambda x: model.maxpool(model.act1(model.bn1(model.conv1(x))))  # noqa: E731
    else:
        return None
    return ResidualPipeline(stem, blocks, paths, model.forward_head)


def knockout_overrides(names: Iterable[str], mode: Mode = "identity",
                       means: Mapping[str, np.ndarray] | None = None) -> dict[str, Override]:
    """Return recorder overrides that knock out `names`: s := 1, or s := the reference mean of that block."""
    if mode == "identity":
        return {n: "identity" for n in names}
    if mode == "mean":
        if means is None:
            raise ValueError("mode='mean' needs the reference-set mean excitation of each block")
        return {n: torch.as_tensor(np.asarray(means[n]), dtype=torch.float32) for n in names}
    raise ValueError(f"unknown knock-out mode {mode!r}; use identity or mean")


def _ticker(n: int, steps: int, progress: Callable[[int], None] | None) -> Callable[[], None]:
    """Return a function that, called `steps` times, reports `n` images to `progress` in whole-number parts."""
    state = {"step": 0, "sent": 0}

    def tick() -> None:
        state["step"] += 1
        upto = (n * state["step"]) // steps
        if progress and upto > state["sent"]:
            progress(upto - state["sent"])
            state["sent"] = upto
    return tick


@torch.inference_mode()
def knockout_sweep(loaded: LoadedModel, batches: Iterable[tuple[torch.Tensor, np.ndarray]],
                   mode: Mode = "identity", means: Mapping[str, np.ndarray] | None = None,
                   reuse_prefix: bool = True, progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Return accuracy with no knock-out and with each SE block knocked out in turn.

    Rows: block ("none" first), depth, accuracy, change (accuracy − baseline). `progress` gets a whole number
    of images after the clean pass and after each block of every batch (a batch's share split over its
    len(blocks) + 1 passes, summing to the batch size), so a progress bar moves from the first block on.
    """
    model = loaded.model
    se_blocks = [b for b, _ in find_se_blocks(model)]
    pipe = residual_pipeline(model) if reuse_prefix else None
    start_of: dict[str, int] = {}
    if pipe is not None:
        for b in se_blocks:
            idx = [i for i, p in enumerate(pipe.block_paths) if b.path.startswith(p + ".")]
            if not idx:
                pipe = None
                break
            start_of[b.name] = idx[0]
    correct = OrderedDict([("none", 0)] + [(b.name, 0) for b in se_blocks])
    total = 0
    for x, labels in batches:
        labels_t = torch.as_tensor(np.asarray(labels))
        tick = _ticker(len(labels_t), len(se_blocks) + 1, progress)
        if pipe is not None:
            inputs = []
            h = pipe.stem(x)
            for blk in pipe.blocks:
                inputs.append(h)
                h = blk(h)
            correct["none"] += int((pipe.head(h).argmax(1) == labels_t).sum())
            tick()
            for b in se_blocks:
                k = start_of[b.name]
                with ExcitationRecorder(model, blocks=[b.name], overrides=knockout_overrides([b.name], mode, means),
                                        record=False):
                    logits = pipe.run_from(inputs[k], k)
                correct[b.name] += int((logits.argmax(1) == labels_t).sum())
                tick()
        else:
            correct["none"] += int((model(x).argmax(1) == labels_t).sum())
            tick()
            for b in se_blocks:
                with ExcitationRecorder(model, blocks=[b.name], overrides=knockout_overrides([b.name], mode, means),
                                        record=False):
                    correct[b.name] += int((model(x).argmax(1) == labels_t).sum())
                tick()
        total += len(labels_t)
    base = correct["none"] / max(total, 1)
    depth = {b.name: b.index for b in se_blocks}
    return pd.DataFrame([{"block": name, "depth": depth.get(name, -1), "accuracy": c / max(total, 1),
                          "change": c / max(total, 1) - base} for name, c in correct.items()])
