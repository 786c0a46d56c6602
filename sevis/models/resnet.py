"""SE-ResNet family: basic and bottleneck blocks, five SE positions, SE in all or some stages, small and ImageNet stems.

The module layout follows torchvision/timm (conv1, bn1, maxpool, layer1..layer4, fc) so that the paper's
block names map directly: SE_2_b = layer1[b-1], ..., SE_5_b = layer4[b-1]. `se=False` gives the plain
ResNet with the identical layout.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch
from torch import nn

from sevis.core.se import SqueezeExcite

Integration = Literal["standard", "pre", "post", "identity", "3x3"]
# Where SE sits in a residual unit (the paper's Fig. 5 and Table 16): "standard" on the residual branch before the
# addition, "pre" before the unit, "post" after the addition, "identity" on the shortcut in parallel with the
# branch, "3x3" inside the branch right after the 3×3 convolution (on its narrower width).
INTEGRATIONS = ("standard", "pre", "post", "identity", "3x3")


@dataclass(frozen=True)
class ResNetConfig:
    """Everything needed to rebuild a model; stored in model cards."""

    block: Literal["basic", "bottleneck"] = "bottleneck"
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: Literal["imagenet", "small", "small-s2"] = "imagenet"
    stem_width: int = 64
    in_chans: int = 3
    num_classes: int = 1000
    se: bool = True
    reduction: int = 16
    se_divisor: int = 1
    squeeze: Literal["avg", "max"] = "avg"
    gate: str = "sigmoid"
    integration: Integration = "standard"
    se_stages: tuple[int, ...] | None = None  # the paper's stages (2-5) that get SE; None: every stage

    def has_se(self, stage: int) -> bool:
        """Return whether blocks of paper stage `stage` (2 = layer1) carry an SE layer."""
        return self.se and (self.se_stages is None or stage in self.se_stages)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ResNetConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("layers", "widths", "se_stages"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)


def _se(channels: int, cfg: ResNetConfig, stage: int) -> nn.Module:
    if not cfg.has_se(stage):
        return nn.Identity()
    return SqueezeExcite(channels, cfg.reduction, divisor=cfg.se_divisor, squeeze=cfg.squeeze, gate=cfg.gate)


class _ResidualBlock(nn.Module):
    """Shared forward for both block types: where SE sits depends on `integration`."""

    expansion = 1
    residual: nn.Sequential
    downsample: nn.Module
    after_3x3: int  # index in `residual` of the first layer after the (first) 3×3 convolution's BN and ReLU

    def _place_se(self, in_ch: int, width: int, out_ch: int, cfg: ResNetConfig, stage: int) -> None:
        self.integration = cfg.integration
        if cfg.integration not in INTEGRATIONS:
            raise ValueError(f"unknown SE integration {cfg.integration!r}; choose one of {', '.join(INTEGRATIONS)}")
        # PRE sees the block input, 3x3 the branch's inner width; the other three the block's output channels.
        channels = {"pre": in_ch, "3x3": width}.get(cfg.integration, out_ch)
        self.se = _se(channels, cfg, stage)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        if self.integration == "standard":  # SE on the residual branch, before the addition
            out = self.se(self.residual(x)) + shortcut
        elif self.integration == "pre":  # SE before the residual unit
            out = self.residual(self.se(x)) + shortcut
        elif self.integration == "post":  # SE after the addition
            out = self.se(self.residual(x) + shortcut)
        elif self.integration == "identity":  # SE on the identity path, in parallel with the branch
            out = self.residual(x) + self.se(shortcut)
        else:  # "3x3": SE inside the branch, after the 3×3 convolution
            out = x
            for i, layer in enumerate(self.residual):
                out = layer(self.se(out) if i == self.after_3x3 else out)
            out = out + shortcut
        return self.act(out)


def _downsample(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(_ResidualBlock):
    """Two 3×3 convolutions (ResNet-18/34)."""

    expansion = 1
    after_3x3 = 3

    def __init__(self, in_ch: int, width: int, stride: int, cfg: ResNetConfig, stage: int = 2) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.residual = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.downsample = _downsample(in_ch, out_ch, stride)
        self._place_se(in_ch, width, out_ch, cfg, stage)


class Bottleneck(_ResidualBlock):
    """1×1 reduce, 3×3 (stride here, as torchvision's v1.5), 1×1 expand ×4 (ResNet-50/101)."""

    expansion = 4
    after_3x3 = 6

    def __init__(self, in_ch: int, width: int, stride: int, cfg: ResNetConfig, stage: int = 2) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.residual = nn.Sequential(
            nn.Conv2d(in_ch, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.downsample = _downsample(in_ch, out_ch, stride)
        self._place_se(in_ch, width, out_ch, cfg, stage)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class SEResNet(nn.Module):
    """ResNet with an SE layer in every residual block of the stages cfg.se_stages names (or none, with
    cfg.se=False)."""

    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        block = BLOCKS[cfg.block]
        if cfg.stem == "imagenet":
            self.conv1 = nn.Conv2d(cfg.in_chans, cfg.stem_width, 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        elif cfg.stem in ("small", "small-s2"):
            # 28-40 px inputs: one 3×3 convolution and no pooling keeps enough resolution for four stages;
            # stride 2 on 36-40 px canvases costs a third of stride 1 (18×18 at stage 2, 3×3 at stage 5).
            self.conv1 = nn.Conv2d(cfg.in_chans, cfg.stem_width, 3, 2 if cfg.stem == "small-s2" else 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            raise ValueError(f"unknown stem {cfg.stem!r}; choose imagenet, small or small-s2")
        self.bn1 = nn.BatchNorm2d(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        in_ch = cfg.stem_width
        for i, (n_blocks, width) in enumerate(zip(cfg.layers, cfg.widths)):
            blocks = []
            for b in range(n_blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(block(in_ch, width, stride, cfg, stage=i + 2))  # layer1 is the paper's stage 2
                in_ch = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = in_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, cfg.num_classes)
        self._init_weights()

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.cfg.layers))]

    def _init_weights(self) -> None:
        # Kaiming (He) initialisation, as in the paper's recipe.
        # a shape-only skeleton (sevis.models.zoo); init on meta imports torch._dynamo
        if next(self.parameters()).is_meta:
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def blocks(self) -> list[nn.Module]:
        """Return the residual blocks in depth order."""
        return [blk for stage in self.stages for blk in stage]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Return logits from the input of residual block `start` (0-based, depth order) onwards."""
        for blk in self.blocks()[start:]:
            x = blk(x)
        return self.forward_head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.forward_stem(x), 0)


# ---------------------------------------------------------------- registry of named architectures
_REGISTRY: dict[str, ResNetConfig] = {}


def register(name: str, cfg: ResNetConfig) -> ResNetConfig:
    _REGISTRY[name] = cfg
    return cfg


# The default embedded model: SE-ResNet-50's layout (bottleneck blocks 3-4-6-3, so the paper's block names
# SE_2_1 … SE_5_3) at 1/8 width (stage outputs 32-256 channels), r = 16, for 36×36 in-context Fashion-MNIST.
FMNIST_SE_RESNET50 = register("fmnist_se_resnet50", ResNetConfig(
    block="bottleneck", layers=(3, 4, 6, 3), widths=(8, 16, 32, 64), stem="small-s2", stem_width=16,
    in_chans=1, num_classes=10, se=True, reduction=16,
))
register("fmnist_resnet50", replace(FMNIST_SE_RESNET50, se=False))
# The first embedded model (now `embedded-centred`): ResNet-18 layout for the centred 28×28 images.
FMNIST_SE_RESNET = register("fmnist_se_resnet", ResNetConfig(
    block="basic", layers=(2, 2, 2, 2), widths=(16, 32, 64, 128), stem="small", stem_width=16,
    in_chans=1, num_classes=10, se=True, reduction=4, se_divisor=8,
))
register("fmnist_resnet", replace(FMNIST_SE_RESNET, se=False))
register("se_resnet50", ResNetConfig())
register("resnet50", ResNetConfig(se=False))
register("se_resnet18", ResNetConfig(block="basic", layers=(2, 2, 2, 2)))
register("resnet18", ResNetConfig(block="basic", layers=(2, 2, 2, 2), se=False))
register("se_resnet101", ResNetConfig(layers=(3, 4, 23, 3)))
register("resnet101", ResNetConfig(layers=(3, 4, 23, 3), se=False))


def list_architectures() -> list[str]:
    """Return the names of the registered architectures."""
    return sorted(_REGISTRY)


def architecture_config(name: str, **overrides) -> ResNetConfig:
    """Return the config registered as `name`, with `overrides` applied."""
    try:
        cfg = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown sevis architecture {name!r}; known: {', '.join(list_architectures())}") from None
    return replace(cfg, **overrides)


def create_resnet(name_or_cfg: str | ResNetConfig, **overrides) -> SEResNet:
    """Return a freshly initialised SEResNet from a registered name or a config."""
    cfg = (architecture_config(name_or_cfg, **overrides) if isinstance(name_or_cfg, str)
           else replace(name_or_cfg, **overrides))
    return SEResNet(cfg)
