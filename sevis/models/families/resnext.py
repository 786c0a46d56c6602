"""SE-ResNeXt: bottleneck blocks whose 3×3 convolution is grouped (cardinality 8), SE on the residual branch
(after the grouped 3×3 and the last 1×1) before the addition, as in SE-ResNeXt-50."""
from __future__ import annotations

import torch
from torch import nn

from sevis.models.families.base import FamilyNet, conv_bn, se_layer

CARDINALITY = 8
# ResNeXt-50's layout (3-4-6-3 blocks) at 1/8 width: stage outputs 32-256 like the default SE-ResNet, each branch
# twice as wide inside (ResNeXt-50 32×4d: 128 vs ResNet-50's 64) and split into CARDINALITY groups.
RESNEXT_LAYERS = (3, 4, 6, 3)
RESNEXT_WIDTHS = (16, 32, 64, 128)  # grouped 3×3 width per stage
RESNEXT_OUTPUTS = (32, 64, 128, 256)


class ResNeXtBlock(nn.Module):
    """1×1 → grouped 3×3 (stride here) → 1×1, SE on this branch, then the shortcut is added."""

    def __init__(self, in_ch: int, width: int, out_ch: int, stride: int, groups: int, cfg) -> None:
        super().__init__()
        self.residual = nn.Sequential(conv_bn(in_ch, width, 1), conv_bn(width, width, 3, stride, groups=groups),
                                      conv_bn(width, out_ch, 1, act=False))
        self.se = se_layer(out_ch, cfg)
        self.downsample: nn.Module = nn.Identity() if stride == 1 and in_ch == out_ch else \
            conv_bn(in_ch, out_ch, 1, stride, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.residual(x)) + self.downsample(x))


class SEResNeXt(FamilyNet):
    """Small SE-ResNeXt-50 (8 groups)."""

    def build_stages(self, in_ch: int) -> tuple[list[list[nn.Module]], int]:
        stages = []
        for i, (n, width, out_ch) in enumerate(zip(RESNEXT_LAYERS, RESNEXT_WIDTHS, RESNEXT_OUTPUTS)):
            blocks = []
            for b in range(n):
                blocks.append(ResNeXtBlock(in_ch, width, out_ch, 2 if i > 0 and b == 0 else 1, CARDINALITY, self.cfg))
                in_ch = out_ch
            stages.append(blocks)
        return stages, in_ch
