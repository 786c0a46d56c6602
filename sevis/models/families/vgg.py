"""SE-VGG: a plain stack of 3×3 convolutions (BN, ReLU), no shortcuts, SE after each convolution block; max
pooling opens stages 3-5."""
from __future__ import annotations

import torch
from torch import nn

from sevis.models.families.base import FamilyNet, conv_bn, se_layer

# Per stage: width and convolutions (VGG-16 has 2-2-3-3-3; its first two stages run here at the stem's 18 px).
VGG_STAGES = ((32, 2), (64, 2), (96, 3), (128, 2))


class VGGBlock(nn.Module):
    """[3×3/2 max pool] → 3×3 conv → BN → ReLU → SE."""

    def __init__(self, in_ch: int, out_ch: int, pool: bool, cfg) -> None:
        super().__init__()
        self.pool: nn.Module = nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()
        self.conv = conv_bn(in_ch, out_ch, 3)
        self.se = se_layer(out_ch, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.conv(self.pool(x)))


class SEVGG(FamilyNet):
    """Small SE-VGG: 2 + 2 + 3 + 2 convolution blocks."""

    def build_stages(self, in_ch: int) -> tuple[list[list[nn.Module]], int]:
        stages = []
        for i, (out_ch, n) in enumerate(VGG_STAGES):
            blocks = []
            for b in range(n):
                blocks.append(VGGBlock(in_ch, out_ch, i > 0 and b == 0, self.cfg))
                in_ch = out_ch
            stages.append(blocks)
        return stages, in_ch
