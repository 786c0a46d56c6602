"""What every small family network shares: its config, a 3×3 stride-2 stem for 36 px canvases, four stages exposed
as layer1..layer4 (nn.Sequential of blocks), and a pooled linear head.

The layout mirrors sevis.models.resnet.SEResNet on purpose: the recorder names an SE module under layer<i>[<b>]
SE_<i+1>_<b+1> (the paper's stages 2-5), and the knock-out sweep splits any model with forward_stem / layer1..4 /
forward_head into stem, blocks and head. So Fig. 6, the depth profile and the sweeps work on every family unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from sevis.core.se import SqueezeExcite

FamilyName = Literal["inception", "resnext", "mobilenet", "vgg"]
FAMILY_TITLES = {"inception": "Inception", "resnext": "ResNeXt", "mobilenet": "MobileNet", "vgg": "VGG"}


@dataclass(frozen=True)
class FamilyConfig:
    """Everything needed to rebuild a family network; stored in model cards under "architecture"."""

    family: FamilyName = "inception"
    se: bool = True
    reduction: int = 16
    stem_width: int = 16
    in_chans: int = 1
    num_classes: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FamilyConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def se_layer(channels: int, cfg: FamilyConfig) -> nn.Module:
    """Return sevis's SE layer on `channels` (r = cfg.reduction), or an identity in the plain twin."""
    return SqueezeExcite(channels, cfg.reduction) if cfg.se else nn.Identity()


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Return conv (no bias) → BatchNorm → ReLU (without the ReLU when act is False)."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out_ch)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FamilyNet(nn.Module):
    """Stem → layer1..layer4 (the paper's stages 2-5, at 18, 9, 5 and 3 px on a 36 px canvas) → pool → linear.

    Subclasses implement `build_stages(in_ch)`, returning the blocks of each stage and the last stage's width."""

    def __init__(self, cfg: FamilyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv2d(cfg.in_chans, cfg.stem_width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        stages, out_ch = self.build_stages(cfg.stem_width)
        for i, blocks in enumerate(stages):
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = out_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(out_ch, cfg.num_classes)
        self._init_weights()

    def build_stages(self, in_ch: int) -> tuple[list[list[nn.Module]], int]:
        raise NotImplementedError

    @property
    def title(self) -> str:
        """Return e.g. "SE-Inception" or "Inception (no SE)"."""
        name = FAMILY_TITLES[self.cfg.family]
        return f"SE-{name}" if self.cfg.se else f"{name} (no SE)"

    @property
    def stages(self) -> list[nn.Sequential]:
        return [m for n, m in self.named_children() if n.startswith("layer")]

    def blocks(self) -> list[nn.Module]:
        """Return the blocks in depth order."""
        return [blk for stage in self.stages for blk in stage]

    def _init_weights(self) -> None:
        # Kaiming (He) initialisation, as in the paper's recipe (and sevis.models.resnet).
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

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Return logits from the input of block `start` (0-based, depth order) onwards."""
        for blk in self.blocks()[start:]:
            x = blk(x)
        return self.forward_head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.forward_stem(x), 0)
