"""`sevis train`: the paper's recipe scaled down to Fashion-MNIST.

SGD with momentum 0.9, Kaiming init, weight decay on conv/linear weights only, cosine schedule with
linear warm-up, random crop (pad 2) + horizontal flip, optional class-aware sampling, fixed seed.
SE and BN parameters get no weight decay: with decay the tiny SE bottlenecks collapse towards a
constant gate (s ≈ 0.5 everywhere) and every excitation plot is a flat line.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, Split, load_fashion_mnist
from .resnet import SEResNet, create_resnet
from .se import SqueezeExcite


@dataclass
class TrainConfig:
    arch: str = "fmnist_se_resnet"
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    se_weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # or "step": /10 at 50% and 75% of training
    pad: int = 2
    flip: bool = True
    class_aware: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 0


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """Return the device to train on: 'auto' picks CUDA when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def normalise(images_u8: torch.Tensor) -> torch.Tensor:
    """Return N×1×28×28 float images normalised like the embedded model's preprocessing."""
    return ((images_u8.float() / 255.0) - FASHION_MNIST_MEAN).div_(FASHION_MNIST_STD).unsqueeze(1)


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop after zero-padding by `pad` (in normalised units, 0 = black) and horizontal flip."""
    n, _, h, w = x.shape
    if pad:
        bg = -FASHION_MNIST_MEAN / FASHION_MNIST_STD
        padded = F.pad(x, (pad, pad, pad, pad), value=bg)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)
        cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded[:, 0][batch, rows[:, :, None], cols[:, None, :]].unsqueeze(1)
    if flip:
        mask = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def class_aware_order(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The paper's class-aware sampling: pick a class, then the next image of that class.

    Each class's list is reshuffled when it is used up, and the class list when it is used up.
    """
    classes = np.unique(labels)
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    pos = {c: 0 for c in classes}
    class_list, ci = rng.permutation(classes), 0
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        if ci == len(class_list):
            class_list, ci = rng.permutation(classes), 0
        c = class_list[ci]
        ci += 1
        if pos[c] == len(pools[c]):
            pools[c], pos[c] = rng.permutation(pools[c]), 0
        out[i] = pools[c][pos[c]]
        pos[c] += 1
    return out


def param_groups(model: nn.Module, weight_decay: float, se_weight_decay: float) -> list[dict]:
    """Split parameters: decay on conv/linear weights; `se_weight_decay` on SE layers; none on BN and biases."""
    se_params = {id(p) for m in model.modules() if isinstance(m, SqueezeExcite) for p in m.parameters()}
    decay, no_decay, se = [], [], []
    for name, p in model.named_parameters():
        if id(p) in se_params:
            se.append(p)
        elif p.ndim <= 1:  # BN scales/shifts and biases
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if se:
        groups.append({"params": se, "weight_decay": se_weight_decay})
    return groups


def lr_at(step: int, total: int, warmup: int, cfg: TrainConfig) -> float:
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if cfg.schedule == "step":
        return cfg.lr * (0.1 ** (int(progress >= 0.5) + int(progress >= 0.75)))
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, device: torch.device, batch_size: int = 500) -> tuple[float, np.ndarray]:
    """Return (overall accuracy, per-class accuracy) of `model` on `split`."""
    model.eval()
    preds = []
    for i in range(0, len(split), batch_size):
        x = normalise(torch.from_numpy(split.images[i:i + batch_size])).to(device)
        preds.append(model(x).argmax(1).cpu())
    pred = torch.cat(preds).numpy()
    per_class = np.array([(pred[split.labels == c] == c).mean() for c in range(len(split.classes))])
    return float((pred == split.labels).mean()), per_class


def train(cfg: TrainConfig, log=print) -> SEResNet:
    """Train `cfg.arch` on the Fashion-MNIST train split and return the model (eval mode, on CPU)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gen = seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    train_split, test_split = load_fashion_mnist("train"), load_fashion_mnist("test")
    model = create_resnet(cfg.arch).to(device)
    # channels_last makes the small convolutions about 20% faster on CPU (oneDNN) and on GPU.
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, cfg.weight_decay, cfg.se_weight_decay), lr=cfg.lr,
                          momentum=cfg.momentum, nesterov=True)
    images = torch.from_numpy(train_split.images)
    labels = torch.from_numpy(train_split.labels)
    n = len(labels)
    steps_per_epoch = n // cfg.batch_size
    total, warmup = steps_per_epoch * cfg.epochs, int(steps_per_epoch * cfg.warmup_epochs)
    step = 0
    log(f"training {cfg.arch} ({sum(p.numel() for p in model.parameters()):,} params) on {device} "
        f"for {cfg.epochs} epochs, {steps_per_epoch} steps each")
    for epoch in range(cfg.epochs):
        model.train()
        order = class_aware_order(train_split.labels, n, rng) if cfg.class_aware else rng.permutation(n)
        t0, loss_sum = time.time(), 0.0
        for b in range(steps_per_epoch):
            idx = torch.from_numpy(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
            x = augment(normalise(images[idx]), cfg.pad, cfg.flip, gen)
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = labels[idx].to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, warmup, cfg)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
        acc, _ = accuracy(model, test_split, device)
        log(f"epoch {epoch + 1}/{cfg.epochs}  loss {loss_sum / steps_per_epoch:.4f}  test acc {acc:.4f}  "
            f"{time.time() - t0:.0f}s")
    return model.cpu().to(memory_format=torch.contiguous_format).eval()


def train_config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
