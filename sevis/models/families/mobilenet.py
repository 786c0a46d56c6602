"""SE-MobileNet: MobileNet-v1 depthwise-separable blocks with SE after the depthwise stage, before the pointwise
convolution (the paper's Table 3 places SE in each block after the depthwise convolution)."""
from __future__ import annotations

import torch
from torch import nn

from sevis.models.families.base import FamilyNet, conv_bn, se_layer

# MobileNet-v1's 13 blocks at width ×0.375 (32 → 1024 becomes 24 → 384), grouped into four stages: per stage the
# output width and the number of blocks; the first block of stages 3-5 has stride 2.
MOBILENET_STAGES = ((48, 2), (96, 2), (192, 6), (384, 2))


class DepthwiseSeparable(nn.Module):
    """3×3 depthwise (stride here) → SE on its output → 1×1 pointwise."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, cfg) -> None:
        super().__init__()
        self.depthwise = conv_bn(in_ch, in_ch, 3, stride, groups=in_ch)
        self.se = se_layer(in_ch, cfg)
        self.pointwise = conv_bn(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.se(self.depthwise(x)))


class SEMobileNet(FamilyNet):
    """Small SE-MobileNet (v1): 2 + 2 + 6 + 2 depthwise-separable blocks."""

    def build_stages(self, in_ch: int) -> tuple[list[list[nn.Module]], int]:
        stages = []
        for i, (out_ch, n) in enumerate(MOBILENET_STAGES):
            blocks = []
            for b in range(n):
                blocks.append(DepthwiseSeparable(in_ch, out_ch, 2 if i > 0 and b == 0 else 1, self.cfg))
                in_ch = out_ch
            stages.append(blocks)
        return stages, in_ch
