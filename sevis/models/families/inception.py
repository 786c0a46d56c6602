"""SE-Inception (the paper's Fig. 2, SE-BN-Inception): BN-Inception-style modules of four parallel branches and
reduction modules of three, each followed by SE on the concatenated output of all its branches."""
from __future__ import annotations

import torch
from torch import nn

from sevis.models.families.base import FamilyConfig, FamilyNet, conv_bn, se_layer


class InceptionModule(nn.Module):
    """1×1 | 1×1→3×3 | 1×1→3×3→3×3 | 3×3 avg pool→1×1, concatenated, then SE on the concatenation."""

    def __init__(self, in_ch: int, b1: int, b3: tuple[int, int], bd: tuple[int, int], bp: int,
                 cfg: FamilyConfig) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            conv_bn(in_ch, b1, 1),
            nn.Sequential(conv_bn(in_ch, b3[0], 1), conv_bn(b3[0], b3[1], 3)),
            nn.Sequential(conv_bn(in_ch, bd[0], 1), conv_bn(bd[0], bd[1], 3), conv_bn(bd[1], bd[1], 3)),
            nn.Sequential(nn.AvgPool2d(3, 1, 1), conv_bn(in_ch, bp, 1)),
        ])
        self.out_channels = b1 + b3[1] + bd[1] + bp
        self.se = se_layer(self.out_channels, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat([branch(x) for branch in self.branches], 1))


class ReductionModule(nn.Module):
    """Stride 2: 1×1→3×3/2 | 1×1→3×3→3×3/2 | 3×3/2 max pool, concatenated, then SE (as in SE-BN-Inception, where
    the reduction modules get SE too)."""

    def __init__(self, in_ch: int, b3: tuple[int, int], bd: tuple[int, int], cfg: FamilyConfig) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(conv_bn(in_ch, b3[0], 1), conv_bn(b3[0], b3[1], 3, 2)),
            nn.Sequential(conv_bn(in_ch, bd[0], 1), conv_bn(bd[0], bd[1], 3), conv_bn(bd[1], bd[1], 3, 2)),
            nn.MaxPool2d(3, 2, 1),
        ])
        self.out_channels = b3[1] + bd[1] + in_ch
        self.se = se_layer(self.out_channels, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat([branch(x) for branch in self.branches], 1))


# Per stage: ("inc", b1, (b3 reduce, b3), (double-3×3 reduce, double-3×3), pool projection) or
# ("red", (b3 reduce, b3), (double reduce, double)). Widths are BN-Inception's at about 1/6.
INCEPTION_STAGES = (
    (("inc", 16, (16, 16), (8, 16), 16), ("inc", 16, (16, 16), (8, 16), 16)),
    (("red", (32, 32), (16, 32)), ("inc", 32, (32, 48), (16, 24), 24)),
    (("red", (48, 48), (24, 48)), ("inc", 64, (48, 80), (24, 32), 32)),
    (("red", (64, 64), (32, 64)), ("inc", 96, (64, 96), (32, 48), 48)),
)


class SEInception(FamilyNet):
    """Small SE-BN-Inception: 2 + 2 + 2 + 2 modules, the first of stages 3-5 a reduction module."""

    def build_stages(self, in_ch: int) -> tuple[list[list[nn.Module]], int]:
        stages = []
        for spec in INCEPTION_STAGES:
            blocks = []
            for kind, *widths in spec:
                block = InceptionModule(in_ch, *widths, cfg=self.cfg) if kind == "inc" else \
                    ReductionModule(in_ch, *widths, cfg=self.cfg)
                blocks.append(block)
                in_ch = block.out_channels
            stages.append(blocks)
        return stages, in_ch
