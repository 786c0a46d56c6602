"""`sevis train`: the paper's recipe scaled down to Fashion-MNIST.

SGD with momentum 0.9, Kaiming init, weight decay on conv/linear weights only, cosine schedule with
linear warm-up, random crop (pad 2) + horizontal flip, optional class-aware sampling, fixed seed.
SE and BN parameters get no weight decay: with decay the tiny SE bottlenecks collapse towards a
constant gate (s ≈ 0.5 everywhere) and every excitation plot is a flat line.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sevis.core.se import SqueezeExcite
from sevis.data.context import ContextConfig, compose, sample_params
from sevis.data.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD, Split, data_normalisation, load_split
from sevis.errors import SevisError
from sevis.models.families import FAMILY_ARCHITECTURES, FamilyNet, create_family
from sevis.models.resnet import SEResNet, create_resnet

# Recorded in every model card. 2: in-context training composes fresh canvases from the 28 px garments; version 1
# (until 2026-11-24) composed them from the seeded 36 px renderings instead, so each training image held a shrunken
# in-context image, background square and all, on a second background, unlike any test image.
DATA_VERSION = 2


@dataclass
class TrainConfig:
    arch: str = "fmnist_se_resnet50"
    data: str = "context"  # "centred": the original images; "context": sevis.data.context, fresh every epoch
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    se_weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # or "step": /10 at 50% and 75% of training
    pad: int = 2  # centred data only: random crops of the 2-pixel-padded image (in context, positions vary anyway)
    flip: bool = True
    class_aware: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    train_images: int = 0  # train on the first N images only (0: all 60k); tiny runs in tests
    test_images: int = 0  # evaluate each epoch on the first N test images (0: all 10k)
    arch_overrides: dict = field(default_factory=dict)  # ResNetConfig fields changed from `arch` (the ablations)
    # after the last epoch, BatchNorm statistics re-estimated over this many fresh images (0: off)
    bn_images: int = 20000
    scale: tuple[float, float] = (1.0, 1.0)  # in context: garment size drawn uniformly from this range (x 28 px)
    snapshots: tuple[int, ...] = ()  # epochs after which fp16 weights are kept (0: the initialisation)
    backgrounds: str = "smooth"  # in context: the background family (sevis.data.context.BACKGROUND_FAMILIES)


def create_model(arch: str, **overrides) -> SEResNet | FamilyNet:
    """Return a freshly initialised registered architecture: an SE-ResNet (sevis.models.resnet) or a family network
    (sevis.models.families: fmnist_se_inception, fmnist_resnext, ...)."""
    if arch in FAMILY_ARCHITECTURES:
        return create_family(arch, **overrides)
    return create_resnet(arch, **overrides)


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


def normalise(images_u8: torch.Tensor, mean: float = FASHION_MNIST_MEAN,
              std: float = FASHION_MNIST_STD) -> torch.Tensor:
    """Return N×1×H×W float images normalised like the embedded models' preprocessing."""
    return ((images_u8.float() / 255.0) - mean).div_(std).unsqueeze(1)


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop after padding by `pad` black pixels and horizontal flip (centred data)."""
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
def accuracy(model: nn.Module, split: Split, device: torch.device, batch_size: int = 500,
             data: str = "centred") -> tuple[float, np.ndarray]:
    """Return (overall accuracy, per-class accuracy) of `model` on `split` (images of data variant `data`)."""
    model.eval()
    preds = []
    mean, std = data_normalisation(data)
    for i in range(0, len(split), batch_size):
        x = normalise(torch.from_numpy(split.images[i:i + batch_size]), mean, std).to(device)
        preds.append(model(x).argmax(1).cpu())
    pred = torch.cat(preds).numpy()
    per_class = np.array([(pred[split.labels == c] == c).mean() for c in range(len(split.classes))])
    return float((pred == split.labels).mean()), per_class


def epoch_generators(seed: int, epoch: int) -> tuple[torch.Generator, np.random.Generator]:
    """Return the (torch, numpy) generators of one epoch: derived from (seed, epoch) alone, so a run resumed
    at any epoch draws exactly what an uninterrupted run draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch), np.random.default_rng([seed, epoch])


def _batches(cfg: TrainConfig, split: Split, epoch: int, steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield the epoch's (normalised N×1×H×W images, labels): fresh in-context samples or augmented centred ones."""
    gen, rng = epoch_generators(cfg.seed, epoch)
    n = len(split)
    order = class_aware_order(split.labels, n, rng) if cfg.class_aware else rng.permutation(n)
    images, labels = torch.from_numpy(split.images), torch.from_numpy(split.labels)
    mean, std = data_normalisation(cfg.data)
    if cfg.data == "context":
        ctx = training_context(cfg)
        params = sample_params(n, gen, ctx)  # every epoch sees each garment somewhere new
    for b in range(steps):
        idx = torch.from_numpy(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
        if cfg.data == "context":
            x = normalise(compose(images[idx], params[idx], ctx), mean, std)
        else:
            x = augment(normalise(images[idx], mean, std), cfg.pad, cfg.flip, gen)
        yield x, labels[idx]


def training_context(cfg: TrainConfig) -> ContextConfig:
    """Return how a run puts its training garments in context (flip, scale range, background family)."""
    return ContextConfig(flip=cfg.flip, scale=tuple(cfg.scale), backgrounds=cfg.backgrounds)


def resume_path(out: str | os.PathLike) -> Path:
    """Return where a run writing `out` keeps its per-epoch checkpoint: beside it, <stem>.resume.pt."""
    out = Path(out)
    return out.parent / f"{out.stem}.resume.pt"


def snapshot_dir(resume: str | os.PathLike) -> Path:
    """Return the folder of a run's snapshots: beside its weights, <stem>.snapshots/ (from the resume path)."""
    resume = Path(resume)
    return resume.parent / (resume.name.removesuffix(".resume.pt") + ".snapshots")


def save_snapshot(folder: Path, model: nn.Module, epoch: int, test_accuracy: float) -> Path:
    """Write the model's weights after `epoch` (0: initialisation) as fp16 safetensors; return the path."""
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    path = folder / f"epoch_{epoch:03d}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"epoch": str(epoch), "test_accuracy": f"{test_accuracy:.6f}"})
    os.replace(tmp, path)
    return path


def _config_key(cfg: TrainConfig) -> str:
    # Everything that changes what is trained; threads and device do not. No overrides leave the key as it was
    # before they existed, so runs started then still resume.
    # bn_images only acts after the last epoch, so runs started before it existed resume too.
    # Snapshots only add files; a scale of 1 is the recipe before the scale option existed, smooth backgrounds the
    # one before the background family existed.
    key = {k: v for k, v in asdict(cfg).items() if k not in ("threads", "device", "bn_images", "snapshots")}
    if not key["arch_overrides"]:
        del key["arch_overrides"]
    if key["backgrounds"] == "smooth":
        del key["backgrounds"]
    if tuple(key["scale"]) == (1.0, 1.0):
        del key["scale"]
    else:
        key["scale"] = list(key["scale"])
    return json.dumps(key, sort_keys=True)


def train(cfg: TrainConfig, log=print, checkpoint: str | os.PathLike | None = None,
          stop_after: int | None = None) -> tuple[SEResNet, dict]:
    """Train `cfg.arch` on Fashion-MNIST (`cfg.data`: centred or in context).

    With `checkpoint`, the model, optimiser and history are saved there after every epoch, and a run whose
    checkpoint exists continues after its last finished epoch (its config must match). `stop_after` ends
    the run after that many epochs (tests of resuming). Returns (model in eval mode on CPU, history with
    the log lines and seconds per epoch)."""
    if cfg.data != "context" and cfg.backgrounds != "smooth":
        raise SevisError(f"--backgrounds {cfg.backgrounds} puts garments in context; centred data has no background")
    training_context(cfg)  # an unknown background family fails here, before any data is loaded
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    # In context, training composes fresh canvases from the 28 px garments every epoch (_batches); only the test
    # split is the fixed, seeded rendering.
    train_split = load_split("train", "centred" if cfg.data == "context" else cfg.data)
    test_split = load_split("test", cfg.data)
    if cfg.train_images:
        train_split = Split(train_split.images[:cfg.train_images], train_split.labels[:cfg.train_images])
    if cfg.test_images:
        test_split = Split(test_split.images[:cfg.test_images], test_split.labels[:cfg.test_images])
    model = create_model(cfg.arch, **cfg.arch_overrides).to(device)
    # channels_last makes the small convolutions about 20% faster on CPU (oneDNN) and on GPU.
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, cfg.weight_decay, cfg.se_weight_decay), lr=cfg.lr,
                          momentum=cfg.momentum, nesterov=True)
    steps_per_epoch = len(train_split) // cfg.batch_size
    total, warmup = steps_per_epoch * cfg.epochs, int(steps_per_epoch * cfg.warmup_epochs)
    history: dict = {"log": [], "epoch_seconds": [], "test_accuracy": []}
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        start = _resume(Path(checkpoint), cfg, model, opt, history)
        log(f"resuming from {checkpoint} after epoch {start}/{cfg.epochs}")

    def emit(line: str) -> None:
        history["log"].append(line)
        log(line)

    if start == 0 and 0 in cfg.snapshots and checkpoint is not None:
        acc0, _ = accuracy(model, test_split, device, data=cfg.data)
        save_snapshot(snapshot_dir(checkpoint), model, 0, acc0)
    if start == 0:
        emit(f"training {cfg.arch} ({sum(p.numel() for p in model.parameters()):,} params) on {device}, "
             f"{cfg.data} data, for {cfg.epochs} epochs, {steps_per_epoch} steps each")
    for epoch in range(start, cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)):
        model.train()
        t0, loss_sum = time.time(), 0.0
        for b, (x, y) in enumerate(_batches(cfg, train_split, epoch, steps_per_epoch)):
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps_per_epoch + b, total, warmup, cfg)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
        seconds = time.time() - t0
        acc, _ = accuracy(model, test_split, device, data=cfg.data)
        history["epoch_seconds"].append(round(seconds, 1))
        history["test_accuracy"].append(round(acc, 6))
        emit(f"epoch {epoch + 1}/{cfg.epochs}  loss {loss_sum / steps_per_epoch:.4f}  test acc {acc:.4f}  "
             f"{seconds:.0f}s")
        if checkpoint is not None and epoch + 1 in cfg.snapshots:
            save_snapshot(snapshot_dir(checkpoint), model, epoch + 1, acc)
        if checkpoint is not None:
            _save_resume(Path(checkpoint), cfg, model, opt, history, epoch + 1)
    if cfg.bn_images and len(history["test_accuracy"]) == cfg.epochs:
        recalibrate_batchnorm(model, cfg, train_split, device)
        acc, _ = accuracy(model, test_split, device, data=cfg.data)
        history["test_accuracy_before_bn"] = history["test_accuracy"][-1]
        history["test_accuracy_after_bn"] = round(acc, 6)
        emit(f"BatchNorm statistics re-estimated over {cfg.bn_images:,} fresh training images: test acc {acc:.4f}")
    return model.cpu().to(memory_format=torch.contiguous_format).eval(), history


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, cfg: TrainConfig, split: Split, device: torch.device | None = None,
                          batch_size: int = 250) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics as the plain average over cfg.bn_images fresh training
    images (in context: new positions and backgrounds), the weights unchanged; return the model in eval mode.

    Training keeps an exponential average over the last few batches (the "precise BN" of pycls replaces it by an
    average over many images); each card logs the test accuracy before and after. Deterministic: the images come
    from (cfg.seed, cfg.epochs), an epoch no training used."""
    device = device or next(model.parameters()).device
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    step_cfg = TrainConfig(**{**asdict(cfg), "batch_size": batch_size, "class_aware": False})
    steps = max(1, min(cfg.bn_images, len(split)) // batch_size)
    for x, _ in _batches(step_cfg, split, cfg.epochs, steps):
        model(x.to(device).contiguous(memory_format=torch.channels_last))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return model.eval()


def _save_resume(path: Path, cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, history: dict,
                 epochs_done: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Only tensors, numbers, strings and containers: it loads back with torch.load(weights_only=True).
    torch.save({"config": _config_key(cfg), "epochs_done": epochs_done, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "history": history}, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def _resume(path: Path, cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, history: dict) -> int:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, or not ours: one clear message, never an unpickled object
        raise SevisError(f"cannot resume from {path}: {type(e).__name__}: {e}. Delete it to start afresh.") from None
    if state.get("config") != _config_key(cfg):
        raise SevisError(f"{path} belongs to a run with other settings ({state.get('config')}); delete it to start "
                         "afresh, or re-run the command that made it")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    history.update(state["history"])
    return int(state["epochs_done"])


def train_config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)


def model_card(model: SEResNet | FamilyNet, cfg: TrainConfig, history: dict, name: str, command: str) -> dict:
    """Return the model card of a freshly trained model: architecture, data, preprocessing, recipe, history."""
    from sevis.data.fashion_mnist import CONTEXT_SEEDS, FASHION_MNIST_CLASSES, fmnist_preprocessing
    what = model.title if isinstance(model, FamilyNet) else ("SE-ResNet" if model.cfg.se else "Plain ResNet (no SE)")
    backgrounds = "random smooth backgrounds" if cfg.backgrounds == "smooth" else \
        "random backgrounds: smooth, stripes, gradients, noise textures and photo crops"
    where = f"Fashion-MNIST in context (random positions, {backgrounds})" if cfg.data == "context" \
        else "Fashion-MNIST (garments centred on black)"
    preprocessing = fmnist_preprocessing(cfg.data)
    dataset = {"name": "Fashion-MNIST", "variant": cfg.data, "source": "Debian package dataset-fashion-mnist",
               "license": "MIT (Copyright 2017 Zalando SE)", "train_images": 60000, "test_images": 10000}
    if cfg.data == "context":
        dataset.update(context=ContextConfig().to_dict(), test_seed=CONTEXT_SEEDS["test"],
                       training_context=training_context(cfg).to_dict(),
                       note="training samples are drawn afresh every epoch; the test split is rendered with test_seed")
    return {
        "name": name,
        "description": f"{what} trained by sevis on {where}",
        "architecture": model.cfg.to_dict(),
        "classes": list(FASHION_MNIST_CLASSES),
        "preprocessing": preprocessing,
        "dataset": dataset,
        "training": {**train_config_dict(cfg), "data_version": DATA_VERSION,
                     "device_used": str(resolve_device(cfg.device)),
                     "seconds": round(sum(history["epoch_seconds"])), "epoch_seconds": history["epoch_seconds"],
                     "test_accuracy_by_epoch": history["test_accuracy"], "torch": torch.__version__,
                     "log": history["log"],
                     **{k: history[k] for k in ("test_accuracy_before_bn", "test_accuracy_after_bn") if k in history}},
        "seed": cfg.seed,
        "command": command,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
