"""A second test distribution: held-out garments in context on backgrounds the training recipe never used.

The in-context recipe (sevis.data.context) draws a flat level (0-0.3) plus bilinearly upsampled 9×9 uniform noise
(amplitude 0-0.4). The kinds here are none of those: soft sinusoidal stripes, linear gradients across the canvas, a
radial spot, and fine noise (a 18×18 grid: twice the recipe's frequency). Their brightness stays in the recipe's
range (at most 0.7), so what changes is the kind of background, not how bright it is. The garments are Fashion-MNIST
test garments outside the bundled reference sets (sevis.data.heldout), at scale 1 and random positions, composited
with max like the training images; everything is drawn from one fixed seed, so every model sees the same images.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sevis.data.context import ContextConfig, place, sample_params
from sevis.data.fashion_mnist import Split

UNSEEN_SEED = 25_000  # none of the train, test or held-out rendering seeds
UNSEEN_IMAGES = 2_000
# kind -> what it is (for captions and cards); every image gets one kind, in turn (500 of each of 2,000)
UNSEEN_KINDS = {
    "stripes": "soft sinusoidal stripes (period 5-12 px, any angle)",
    "gradient": "a linear gradient across the canvas (any direction)",
    "spot": "a radial spot (a bright Gaussian blob, 6-14 px wide)",
    "fine-noise": "fine noise (an 18×18 grid upsampled: twice the training noise's frequency)",
}
MAX_LEVEL = 0.7  # the training recipe's brightest background: level 0.3 + amplitude 0.4


def unseen_words() -> str:
    """Return the held-out background kinds as one phrase."""
    kinds = list(UNSEEN_KINDS.values())
    return ", ".join(kinds[:-1]) + " and " + kinds[-1]


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def unseen_backgrounds(n: int, canvas: int, gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    """Return (n×1×canvas×canvas backgrounds in [0, MAX_LEVEL], the kind of each), kinds in turn, drawn from `gen`
    in a fixed order."""
    kinds = list(UNSEEN_KINDS)
    kind_of = [kinds[i % len(kinds)] for i in range(n)]
    u = torch.arange(canvas, dtype=torch.float32)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    # Every random number is drawn for every image whatever its kind, so a subset renders the same.
    level, amp = _u(gen, n, 0.0, 0.3), _u(gen, n, 0.2, 0.4)
    angle, period, phase = _u(gen, n, 0.0, math.pi), _u(gen, n, 5.0, 12.0), _u(gen, n, 0.0, 2 * math.pi)
    cy, cx, width = _u(gen, n, 0.0, canvas - 1), _u(gen, n, 0.0, canvas - 1), _u(gen, n, 6.0, 14.0)
    fine = torch.rand(n, 18, 18, generator=gen)
    a, b = angle[:, None, None], phase[:, None, None]
    t = xx[None] * torch.cos(a) + yy[None] * torch.sin(a)  # distance along the stripes' normal / gradient direction
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * t / period[:, None, None] + b)
    lo, hi = t.amin((1, 2), keepdim=True), t.amax((1, 2), keepdim=True)
    ramp = (t - lo) / (hi - lo).clamp(min=1e-6)  # 0 at one corner, 1 at the opposite one
    spot = torch.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2)
                     / (2 * (width[:, None, None] / 2) ** 2))
    noise = F.interpolate(fine[:, None], size=(canvas, canvas), mode="bilinear", align_corners=True)[:, 0]
    pattern = torch.stack([{"stripes": stripes, "gradient": ramp, "spot": spot, "fine-noise": noise}[k][i]
                           for i, k in enumerate(kind_of)]) if n else torch.zeros(0, canvas, canvas)
    out = (level[:, None, None] + amp[:, None, None] * pattern).clamp(0, MAX_LEVEL)
    return out[:, None], kind_of


def unseen_split(n: int = UNSEEN_IMAGES, seed: int = UNSEEN_SEED, canvas: int = ContextConfig().canvas
                 ) -> tuple[Split, list[str]]:
    """Return (n held-out test garments in context on unseen backgrounds as an N×canvas×canvas uint8 Split, the
    background kind of each image)."""
    from sevis.data.heldout import heldout_split
    garments = heldout_split(n, seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = ContextConfig(canvas=canvas)
    params = sample_params(n, gen, cfg)  # positions at scale 1, as the families were trained
    back, kinds = unseen_backgrounds(n, canvas, gen)
    g = torch.from_numpy(garments.images).float().div(255.0)[:, None]
    out = torch.maximum(back, place(g, params, canvas))[:, 0].mul(255.0).round().to(torch.uint8)
    return Split(out.numpy(), garments.labels, garments.classes), kinds


def accuracy_by_kind(predictions: np.ndarray, labels: np.ndarray, kinds: list[str]) -> dict[str, float]:
    """Return the share of correct predictions per background kind."""
    kinds_a = np.asarray(kinds)
    return {k: float((predictions[kinds_a == k] == labels[kinds_a == k]).mean()) for k in UNSEEN_KINDS
            if (kinds_a == k).any()}
