"""Model zoo: `load_model(spec)` for our embedded models, timm, torchvision and checkpoint files.

Every loader returns a LoadedModel with the model in eval mode, its preprocessing exactly as it was
trained, and its class names, so the rest of sevis never needs to know where a model came from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import nn

from sevis.data.framing import SceneTransform
from sevis.data.preprocess import grayscale_transform
from sevis.errors import DatasetError, ModelError
from sevis.models.checkpoint import check_state_fits, load_state_into, read_card, read_state_dict
from sevis.models.families import FAMILY_ARCHITECTURES, FamilyConfig, FamilyNet, build_family, is_family_config
from sevis.models.resnet import ResNetConfig, SEResNet, architecture_config

# The model names live in sevis.names (no torch there, so `sevis models` starts fast); re-exported here.
from sevis.names import (  # noqa: F401
    DEFAULT_SPEC,
    EMBEDDED,
    PRETRAINED_DIR,  # noqa: E402
    TIMM_SE_MODELS,
    TORCHVISION_SE_MODELS,
    list_se_models,
)


@dataclass
class LoadedModel:
    """A model ready for sevis: eval-mode network, its preprocessing and its class names."""

    model: nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    classes: list[str]
    name: str
    spec: str
    source: str  # embedded | sevis | timm | torchvision | checkpoint
    card: dict = field(default_factory=dict)
    random_weights: bool = False  # loaded with pretrained=False: nothing was learned

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def shown_name(self) -> str:
        """Return the one name the app, the exports and the README call this model by: a shipped model's spec
        ("embedded", "embedded-plain", …), else its own name."""
        return self.spec if self.spec in EMBEDDED else self.name

    @property
    def dataset(self) -> str:
        return "fashion-mnist" if len(self.classes) == 10 and self.classes[0] == "T-shirt/top" else "imagenet"

    @property
    def data_variant(self) -> str | None:
        """Return how a Fashion-MNIST model saw its data ("centred" or "context"); None for ImageNet models."""
        if self.dataset != "fashion-mnist":
            return None
        return str((self.card.get("dataset") or {}).get("variant", "centred"))

    def reference_set(self):
        """Return the bundled reference set (100 test images per class) as this model saw its data."""
        from sevis.data.fashion_mnist import load_reference_set
        if self.data_variant is None:
            raise DatasetError(f"{self.spec} is not a Fashion-MNIST model: it has no bundled reference set")
        return load_reference_set(variant=self.data_variant)

    @property
    def normalisation(self) -> tuple[float, float]:
        """Return the (mean, std) a grayscale model normalises pixel values in [0, 1] with."""
        pp = self.card.get("preprocessing") or {}
        return float(pp.get("mean", [0.2860])[0]), float(pp.get("std", [0.3530])[0])

    @property
    def input_size(self) -> int:
        """Return the side of the square image the model takes (a canvas for in-context models)."""
        pp = self.card.get("preprocessing") or {}
        return int(pp.get("canvas") or pp.get("resize") or 224)


def _offline_hint(spec: str, err: BaseException) -> ModelError:
    # The cause is said in words ("offline"): an exception's class name means nothing to a student.
    return ModelError(
        f"weights for {spec} cannot be had: they are not in the local cache and this computer is offline (their "
        f"host cannot be reached). Connect to the internet once to cache them, or load a local weights file "
        f"(safetensors) with the architecture named",
        cli_hint=f", e.g. `--model FILE.safetensors --arch {spec}`.")


# ---------------------------------------------------------------------------- offline: fail fast
HUB_PROBE_TIMEOUT_S = 2.0  # how long a connection to the weights' host may take before sevis calls it offline


def _unreachable(url: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> OSError | None:
    """Return why `url`'s host (or the configured proxy) takes no TCP connection within `timeout` s; None if it does.

    One cheap probe before a download, so that offline the hub clients' retries (tens of seconds of warnings)
    never start; online it costs one round trip and the download then runs exactly as before."""
    import socket
    import threading
    from urllib.parse import urlparse
    from urllib.request import getproxies

    target = urlparse(url)
    proxy = getproxies().get(target.scheme)
    hop = urlparse(proxy if "://" in (proxy or "") else f"http://{proxy}") if proxy else target
    host, port = hop.hostname, hop.port or (443 if hop.scheme == "https" else 80)
    if not host:
        return OSError(f"no host in {url!r}")
    outcome: list[OSError | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    worker = threading.Thread(target=connect, daemon=True)  # getaddrinfo has no timeout of its own
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else TimeoutError(f"no answer from {host}:{port} within {timeout:g} s")


def _torch_hub_file(url: str) -> str | None:
    """Return the file torch.hub (and timm's URL weights) cached `url` to, if it is there."""
    from urllib.parse import urlparse
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    return str(path) if path.is_file() else None


def _timm_weights_source(name: str) -> tuple[str | None, str, bool]:
    """Return (the locally cached weights file of timm model `name` or None, the URL they download from,
    whether the Hugging Face hub is switched off by HF_HUB_OFFLINE)."""
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(name)
    if cfg is not None and cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache
        repo, _, revision = cfg.hf_hub_id.partition("@")
        for filename in [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]:
            hit = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(hit, str):
                return hit, constants.ENDPOINT, bool(constants.HF_HUB_OFFLINE)
        return None, constants.ENDPOINT, bool(constants.HF_HUB_OFFLINE)
    if cfg is not None and cfg.url:
        return _torch_hub_file(cfg.url), cfg.url, False
    return None, "", False


# ---------------------------------------------------------------------------- embedded (ours)
def _card_preprocess(card: dict) -> Callable:
    pp = card.get("preprocessing", {})
    if pp.get("canvas") and (card.get("dataset") or {}).get("variant") == "context":
        # In context: a scene stays a scene, an isolated garment is fitted like a training garment (sevis.data.framing).
        return SceneTransform(int(pp["canvas"]), pp.get("mean", [0.3571]), pp.get("std", [0.2322]))
    return grayscale_transform(int(pp.get("resize", 28)), pp.get("mean", [0.2860]), pp.get("std", [0.3530]),
                               auto_invert=bool(pp.get("auto_invert", True)),
                               canvas=int(pp["canvas"]) if pp.get("canvas") else None)


def _load_sevis_checkpoint(path: Path, spec: str, card: dict | None = None) -> LoadedModel:
    card = card if card is not None else read_card(path)
    arch = card.get("architecture")
    if not arch:
        raise ModelError(f"{path.name} has no sevis model card ({path.with_suffix('.json').name}); "
                         "name its architecture, e.g. --arch timm:seresnet50 or --arch sevis:se_resnet50")
    state = read_state_dict(path)
    model = _build_family_for_state(arch, state, path.name) if is_family_config(arch) else \
        _build_for_state(arch, state, path.name)
    try:
        classes = [str(c) for c in (card.get("classes") or range(model.cfg.num_classes))]
        preprocess = _card_preprocess(card) if model.cfg.in_chans == 1 else _imagenet_preprocess()
    except Exception as e:  # the card is untrusted: a malformed preprocessing block or class list
        raise ModelError(f"{path.name}: its model card is malformed ({type(e).__name__}: {e})") from None
    if len(classes) != model.cfg.num_classes:
        raise ModelError(f"{path.name}: its model card names {len(classes)} classes, the model has "
                         f"{model.cfg.num_classes} outputs")
    return LoadedModel(model.eval(), preprocess, classes, card.get("name", path.stem), spec,
                       "embedded" if spec in EMBEDDED else "checkpoint", card)


MAX_CARD_BLOCKS = 512  # residual blocks a model card may ask for (ResNet-1001 has 333)


def _build_for_state(arch: dict, state: dict[str, torch.Tensor], source: str) -> SEResNet:
    """Build the SE-ResNet a model card describes and load `state` into it.

    The card is untrusted input: it is first built on the meta device (no memory), so a card that asks for
    absurd widths, or one that does not match the weights, fails with a ModelError before anything is
    allocated; a card sevis cannot build at all (unknown block, bad types) fails the same way.
    """
    try:
        cfg = ResNetConfig.from_dict(arch)
        if sum(int(n) for n in cfg.layers) > MAX_CARD_BLOCKS:
            raise ValueError(f"{sum(cfg.layers)} residual blocks (at most {MAX_CARD_BLOCKS})")
        with torch.device("meta"):
            skeleton = SEResNet(cfg)
    except ModelError:
        raise
    except Exception as e:  # KeyError, TypeError, ValueError, ZeroDivisionError, RuntimeError… from the card
        raise ModelError(f"{source}: its model card describes an architecture sevis cannot build "
                         f"({type(e).__name__}: {e})") from None
    check_state_fits(skeleton, state, source)
    return load_state_into(SEResNet(cfg), state, source)


MAX_CARD_CLASSES = 100_000  # outputs a family card may ask for (its head is the only size it can set)


def _build_family_for_state(arch: dict, state: dict[str, torch.Tensor], source: str) -> FamilyNet:
    """Build the family network (sevis.models.families) a model card describes and load `state`: first on the meta
    device, so an untrusted card fails with a ModelError before anything is allocated."""
    try:
        cfg = FamilyConfig.from_dict(arch)
        if not 0 < int(cfg.num_classes) <= MAX_CARD_CLASSES or not 0 < int(cfg.reduction) <= 1024:
            raise ValueError(f"{cfg.num_classes} classes, reduction {cfg.reduction}")
        with torch.device("meta"):
            skeleton = build_family(cfg)
    except Exception as e:  # unknown family, bad types or sizes from the card
        raise ModelError(f"{source}: its model card describes an architecture sevis cannot build "
                         f"({type(e).__name__}: {e})") from None
    check_state_fits(skeleton, state, source)
    return load_state_into(build_family(cfg), state, source)


def _imagenet_preprocess() -> Callable:
    from torchvision import transforms as T
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def _load_sevis_arch(arch: str, spec: str, pretrained: bool) -> LoadedModel:
    try:
        cfg = architecture_config(arch)
    except KeyError as e:
        raise ModelError(str(e.args[0])) from None
    weights = PRETRAINED_DIR / f"{arch}.safetensors"
    if pretrained:
        if not weights.exists():
            raise ModelError(f"sevis:{arch} has no pretrained weights; use pretrained=False for random weights "
                             f"(architecture views), or an ImageNet model such as timm:legacy_seresnet50")
        return _load_sevis_checkpoint(weights, spec)
    model = SEResNet(cfg).eval()
    card: dict = {"architecture": cfg.to_dict()}
    if cfg.in_chans == 1:
        from sevis.data.fashion_mnist import FASHION_MNIST_CLASSES, fmnist_preprocessing
        classes = list(FASHION_MNIST_CLASSES) if cfg.num_classes == 10 else [str(i) for i in range(cfg.num_classes)]
        # A small-s2 stem is the in-context layout (36 px canvases); the others take the centred 28 px images.
        variant = "context" if cfg.stem == "small-s2" else "centred"
        card.update(preprocessing=fmnist_preprocessing(variant), dataset={"variant": variant})
        preprocess = _card_preprocess(card)
    else:
        classes, preprocess = imagenet_classes(), _imagenet_preprocess()
    return LoadedModel(model, preprocess, classes, arch, spec, "sevis", card)


# ---------------------------------------------------------------------------- timm
@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """Return the 1000 ImageNet class names as shipped inside timm (no download)."""
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def _create_timm(name: str, pretrained: bool) -> nn.Module:
    import timm
    if name not in timm.list_models(pretrained=False) and name not in timm.list_models(pretrained=True):
        raise ModelError(f"unknown timm model {name!r}; `sevis models` lists SE-bearing ones")
    if not pretrained:
        try:
            # timm zero-inits the last BN of each residual block: with random weights every image
            # would then get the same s. zero_init_last=False keeps random excitations informative.
            return timm.create_model(name, pretrained=False, zero_init_last=False)
        except TypeError:
            return timm.create_model(name, pretrained=False)
    cached, url, hub_off = _timm_weights_source(name)
    if not url:  # timm has no weights for it anywhere: say so before building it (not "offline" after)
        raise ModelError(f"timm:{name} has no pretrained weights to download; only its architecture can be shown, "
                         "with random weights")
    problem = (OSError("HF_HUB_OFFLINE is set") if hub_off else _unreachable(url)) if url else None
    if problem is not None:
        if cached is None:  # offline and not cached: say so now, before the hub client's retries
            raise _offline_hint(f"timm:{name}", problem)
        # Offline but cached: load the cached file directly, so the hub client never tries the network.
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": cached})
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as e:  # hub errors come in many types (OSError, LocalEntryNotFoundError, HTTPError…)
        raise _offline_hint(f"timm:{name}", e) from None


def _load_timm(name: str, spec: str, pretrained: bool, checkpoint: str | None = None) -> LoadedModel:
    from timm.data import create_transform, resolve_data_config
    model = _create_timm(name, pretrained and checkpoint is None)
    if checkpoint:
        load_state_into(model, read_state_dict(checkpoint), Path(checkpoint).name)
    cfg = resolve_data_config({}, model=model)
    classes = imagenet_classes() if getattr(model, "num_classes", 1000) == 1000 else \
        [str(i) for i in range(model.num_classes)]
    return LoadedModel(model.eval(), create_transform(**cfg), classes, name, spec, "timm",
                       {"preprocessing": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}})


# ---------------------------------------------------------------------------- torchvision
def _load_torchvision(name: str, spec: str, pretrained: bool, checkpoint: str | None = None) -> LoadedModel:
    import torchvision
    if name not in torchvision.models.list_models():
        raise ModelError(f"unknown torchvision model {name!r}; `sevis models` lists SE-bearing ones")
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        weights = None
    use_weights = weights if (pretrained and checkpoint is None) else None
    if use_weights is not None and _torch_hub_file(use_weights.url) is None:
        problem = _unreachable(use_weights.url)  # not cached: fail fast when the download cannot work
        if problem is not None:
            raise _offline_hint(f"torchvision:{name}", problem)
    try:
        model = torchvision.models.get_model(name, weights=use_weights)
    except Exception as e:  # URLError, HTTPError, RuntimeError on a broken partial download…
        raise _offline_hint(f"torchvision:{name}", e) from None
    if checkpoint:
        load_state_into(model, read_state_dict(checkpoint), Path(checkpoint).name)
    # The weights' transforms and class names ship with torchvision itself; no download needed.
    preprocess = weights.transforms() if weights is not None else _imagenet_preprocess()
    classes = list(weights.meta["categories"]) if weights is not None else imagenet_classes()
    return LoadedModel(model.eval(), preprocess, classes, name, spec, "torchvision")


# ---------------------------------------------------------------------------- entry point
def load_model(spec: str | os.PathLike = DEFAULT_SPEC, pretrained: bool = True, arch: str | None = None) -> LoadedModel:
    """Return the model named by `spec`.

    spec: "embedded" (our SE-ResNet), "embedded-plain" (its no-SE twin), "sevis:<arch>", "ablation:<variant>",
    "family:<name>" (SE-Inception, SE-ResNeXt, SE-MobileNet, SE-VGG and their plain twins), "timm:<name>",
    "torchvision:<name>", or a checkpoint path (.safetensors, or .pt/.pth read with weights_only=True).
    For a checkpoint without a sevis model card, `arch` names the architecture ("timm:seresnet50").
    pretrained=False gives random weights.
    """
    loaded = _load_model(spec, pretrained, arch)
    loaded.random_weights = not pretrained
    return loaded


def _load_model(spec: str | os.PathLike, pretrained: bool, arch: str | None) -> LoadedModel:
    spec = (os.fspath(spec) if isinstance(spec, os.PathLike) else (spec or DEFAULT_SPEC)).strip()
    base, at, epoch = spec.partition("@")
    if at and base in EMBEDDED:
        return _load_snapshot(base, epoch, spec)
    if spec in EMBEDDED:
        path = PRETRAINED_DIR / f"{EMBEDDED[spec]}.safetensors"
        if not pretrained:
            return _load_sevis_arch(EMBEDDED[spec], spec, pretrained=False)
        if not path.exists():
            raise ModelError(f"the embedded weights {path} are missing; reinstall sevis or run `sevis train`")
        return _load_sevis_checkpoint(path, spec)
    prefix, _, name = spec.partition(":")
    if prefix == "ablation":
        return _load_ablation(name, spec, pretrained)
    if prefix == "family":
        return _load_family(name, spec, pretrained)
    if name and prefix == "sevis":
        return _load_sevis_arch(name, spec, pretrained)
    if name and prefix == "timm":
        return _load_timm(name, spec, pretrained)
    if name and prefix == "torchvision":
        return _load_torchvision(name, spec, pretrained)
    path = Path(spec).expanduser()
    if path.suffix.lower() in (".safetensors", ".pt", ".pth", ".bin", ".ckpt") or path.exists():
        if not path.exists():
            raise ModelError(f"checkpoint not found: {path}")
        return load_checkpoint(path, arch)
    raise ModelError(f"unknown model {spec!r}: use {', '.join(EMBEDDED)}, sevis:<arch>, ablation:<variant>, "
                     "family:<name>, timm:<name>, torchvision:<name> or a .safetensors/.pt file")


def _load_snapshot(base: str, epoch: str, spec: str) -> LoadedModel:
    """Return embedded model `base` as it was after `epoch` epochs of training (0: its initialisation), from the
    fp16 snapshot `sevis train --snapshots` kept; its card is the final model's, less the final evaluation."""
    from safetensors import safe_open

    from sevis.names import snapshot_dir, snapshot_epochs
    epochs = snapshot_epochs(base)
    available = f"available: {', '.join(f'{base}@{e}' for e in epochs)}" if epochs else \
        f"{base} has no training snapshots (train it with `sevis train --snapshots ...`)"
    if not epoch.isdigit():
        raise ModelError(f"{spec}: the part after @ must be an epoch number, e.g. {base}@0; {available}")
    path = snapshot_dir(base) / f"epoch_{int(epoch):03d}.safetensors"
    if not path.is_file():
        raise ModelError(f"{spec}: no snapshot after epoch {int(epoch)}; {available}")
    card = {k: v for k, v in read_card(PRETRAINED_DIR / f"{EMBEDDED[base]}.safetensors").items()
            if k not in ("evaluation", "parameters")}
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        accuracy = float(meta["test_accuracy"]) if "test_accuracy" in meta else None
    except Exception:  # unreadable metadata: read_state_dict below says what is wrong with the file
        accuracy = None
    card.update(name=f"{base}@{int(epoch)}", snapshot={"epoch": int(epoch), "test_accuracy": accuracy, "of": base})
    loaded = _load_sevis_checkpoint(path, spec, card)
    loaded.model.float()  # the snapshot is fp16; the network computes in fp32 as the final model does
    loaded.source = "snapshot"
    return loaded


def _load_ablation(name: str, spec: str, pretrained: bool) -> LoadedModel:
    """Return ablation variant `name` (sevis.names.ABLATIONS): its trained weights, or with pretrained=False the
    variant's architecture with random weights."""
    from sevis.names import ABLATIONS, ablation_dir
    if name not in ABLATIONS:
        raise ModelError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    path = ablation_dir() / f"{name}.safetensors"
    if not pretrained:
        base = _load_sevis_arch(EMBEDDED[DEFAULT_SPEC], spec, pretrained=False)
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in ABLATIONS[name]["overrides"].items()}
        model = SEResNet(replace(base.model.cfg, **overrides)).eval()
        return LoadedModel(model, base.preprocess, base.classes, f"ablation:{name}", spec, "sevis",
                           {**base.card, "architecture": model.cfg.to_dict()})
    if not path.exists():
        raise ModelError(f"the ablation {name} is not trained yet ({path} is missing): run "
                         f"`sevis ablate --variants {name}`")
    loaded = _load_sevis_checkpoint(path, spec)
    loaded.source = "ablation"
    return loaded


def _load_family(name: str, spec: str, pretrained: bool) -> LoadedModel:
    """Return family run `name` (sevis.names.FAMILY_RUNS: se-inception, inception-seed1, ...): its trained weights,
    or with pretrained=False its architecture with random weights."""
    from sevis.data.fashion_mnist import FASHION_MNIST_CLASSES, fmnist_preprocessing
    from sevis.names import FAMILY_RUNS, family_dir
    if name not in FAMILY_RUNS:
        raise ModelError(f"unknown architecture model {name!r}; known: {', '.join(FAMILY_RUNS)}")
    if not pretrained:
        model = build_family(FAMILY_ARCHITECTURES[FAMILY_RUNS[name]["arch"]]).eval()
        card = {"architecture": model.cfg.to_dict(), "preprocessing": fmnist_preprocessing("context"),
                "dataset": {"variant": "context"}}
        return LoadedModel(model, _card_preprocess(card), list(FASHION_MNIST_CLASSES), f"family:{name}", spec,
                           "sevis", card)
    path = family_dir() / f"{name}.safetensors"
    if not path.exists():
        raise ModelError(f"the architecture model {name} is not trained yet ({path} is missing): run "
                         f"`sevis family --models {name}`")
    loaded = _load_sevis_checkpoint(path, spec)
    loaded.source = "family"
    return loaded


def load_checkpoint(path: str | os.PathLike, arch: str | None = None) -> LoadedModel:
    """Return a model built from a weights file: its sevis card, or the architecture `arch` names."""
    path = Path(path)
    if arch is None:
        return _load_sevis_checkpoint(path, str(path))
    prefix, _, name = arch.partition(":")
    if prefix == "timm" and name:
        return _load_timm(name, str(path), pretrained=False, checkpoint=str(path))
    if prefix == "torchvision" and name:
        return _load_torchvision(name, str(path), pretrained=False, checkpoint=str(path))
    if prefix == "sevis" and name:
        try:
            cfg = architecture_config(name)
        except KeyError as e:
            raise ModelError(str(e.args[0])) from None
        return _load_sevis_checkpoint(path, str(path), {"architecture": cfg.to_dict(), "name": path.stem})
    raise ModelError(f"unknown architecture {arch!r}: use timm:<name>, torchvision:<name> or sevis:<arch>")


def weights_path(spec: str) -> Path | None:
    """Return the weights file behind a model spec (embedded models, checkpoint paths), else None."""
    from sevis.names import ablation_dir, family_dir
    if spec in EMBEDDED:
        return PRETRAINED_DIR / f"{EMBEDDED[spec]}.safetensors"
    prefix, _, name = spec.partition(":")
    if prefix == "ablation":
        return ablation_dir() / f"{name}.safetensors"
    if prefix == "family":
        return family_dir() / f"{name}.safetensors"
    if name and prefix in ("sevis", "timm", "torchvision"):
        return None
    return Path(spec).expanduser()
