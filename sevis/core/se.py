"""Squeeze-and-Excitation layer (Hu et al., "Squeeze-and-Excitation Networks").

squeeze  z = pool(U)                      (N×C)
excite   s = gate(W2 · δ(W1 · z))          (N×C)
scale    out = U · s  (per channel)
"""
from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import nn

SqueezeOp = Literal["avg", "max"]
GateName = Literal["sigmoid", "hardsigmoid", "tanh", "relu"]

GATES: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "hardsigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


def make_divisible(value: float, divisor: int = 1, min_value: int | None = None) -> int:
    """Return `value` rounded to the nearest multiple of `divisor` (never below `min_value` or 90% of value)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:  # rounding down must not remove more than 10%
        rounded += divisor
    return rounded


def make_gate(name: str) -> nn.Module:
    """Return a fresh gate module for `name` (one of GATES)."""
    try:
        return GATES[name]()
    except KeyError:
        raise ValueError(f"unknown SE gate {name!r}; choose one of {', '.join(GATES)}") from None


class SqueezeExcite(nn.Module):
    """SE layer: channel attention computed from a global squeeze of the input.

    Args:
        channels: C, the number of input (= output) channels.
        reduction: r; the bottleneck has C/r hidden units (rounded to `divisor`).
        squeeze_channels: explicit hidden width; overrides `reduction`.
        divisor: the hidden width is rounded to a multiple of this.
        squeeze: "avg" (the paper's default) or "max" global pooling.
        gate: the excitation non-linearity; "sigmoid" in the paper.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        squeeze_channels: int | None = None,
        divisor: int = 1,
        squeeze: SqueezeOp = "avg",
        gate: GateName = "sigmoid",
    ) -> None:
        super().__init__()
        if squeeze not in ("avg", "max"):
            raise ValueError(f"unknown squeeze op {squeeze!r}; choose avg or max")
        hidden = make_divisible(squeeze_channels or channels / reduction, divisor)
        self.channels = channels
        self.squeeze_channels = hidden
        self.squeeze = squeeze
        # 1×1 convolutions on the pooled N×C×1×1 tensor are the paper's two FC layers (W1, W2 with biases).
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.gate = make_gate(gate)

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """Return s (N×C×1×1) for input U (N×C×H×W)."""
        z = x.mean((2, 3), keepdim=True) if self.squeeze == "avg" else x.amax((2, 3), keepdim=True)
        return self.gate(self.fc2(self.act(self.fc1(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, squeeze_channels={self.squeeze_channels}, squeeze={self.squeeze}"
