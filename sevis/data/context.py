"""Fashion-MNIST in context: each garment at a random position on a larger canvas over a random smooth background.

Why: Fashion-MNIST garments are centred on black, so a global average pool of early features already encodes
the class (ink coverage, outline), and an untrained network's early SE blocks are as class-specific as a
trained one's. Random positions and backgrounds remove that artefact; the paper's early-vs-late pattern shows.

Everything is deterministic: `sample_params(n, generator)` draws every random choice for n images up front
(position, scale, flip, background level, amplitude and noise grid), and `compose` renders images from them,
so a split is the same whatever batch size renders it. Output pixels are 8-bit, like an uploaded image.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

GARMENT = 28  # Fashion-MNIST images are 28×28


@dataclass(frozen=True)
class ContextConfig:
    """How garments are put in context; stored in model cards."""

    canvas: int = 36
    scale: tuple[float, float] = (1.0, 1.0)  # garment size relative to 28 px, drawn uniformly
    background_level: tuple[float, float] = (0.0, 0.3)  # a flat level…
    background_amplitude: tuple[float, float] = (0.0, 0.4)  # …plus this much of upsampled uniform noise
    noise_grid: int = 9  # the noise is drawn on a grid this size and bilinearly upsampled: smooth
    flip: bool = False  # random horizontal flip of the garment (training augmentation)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ContextConfig":
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class ContextParams:
    """Every random choice for n images (index with a tensor of positions to take a subset)."""

    offset: torch.Tensor  # n×2 top-left corner (y, x) of the garment on the canvas, in pixels
    scale: torch.Tensor  # n
    flip: torch.Tensor  # n bool
    level: torch.Tensor  # n
    amplitude: torch.Tensor  # n
    noise: torch.Tensor  # n×g×g in [0, 1)

    def __len__(self) -> int:
        return len(self.scale)

    def __getitem__(self, idx) -> "ContextParams":
        return ContextParams(self.offset[idx], self.scale[idx], self.flip[idx], self.level[idx],
                             self.amplitude[idx], self.noise[idx])


def _uniform(n: int, lo_hi: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def sample_params(n: int, gen: torch.Generator, cfg: ContextConfig = ContextConfig()) -> ContextParams:
    """Return the random choices for n images, drawn from `gen` in a fixed order."""
    scale = _uniform(n, cfg.scale, gen)
    size = (GARMENT * scale).round()
    room = (cfg.canvas - size).clamp(min=0)
    # Integer offsets: at scale 1 the garment's pixels are copied exactly, not resampled.
    offset = (torch.rand(n, 2, generator=gen) * (room[:, None] + 1)).floor()
    flip = torch.rand(n, generator=gen) < 0.5 if cfg.flip else torch.zeros(n, dtype=torch.bool)
    level = _uniform(n, cfg.background_level, gen)
    amplitude = _uniform(n, cfg.background_amplitude, gen)
    noise = torch.rand(n, cfg.noise_grid, cfg.noise_grid, generator=gen)
    return ContextParams(offset, scale, flip, level, amplitude, noise)


def backgrounds(params: ContextParams, canvas: int) -> torch.Tensor:
    """Return n×1×canvas×canvas smooth backgrounds in [0, 1]."""
    up = F.interpolate(params.noise[:, None], size=(canvas, canvas), mode="bilinear", align_corners=True)
    return (params.level[:, None, None, None] + params.amplitude[:, None, None, None] * up).clamp(0, 1)


def place(garments: torch.Tensor, params: ContextParams, canvas: int) -> torch.Tensor:
    """Return n×1×canvas×canvas: each n×1×28×28 garment (in [0, 1]) scaled and moved to its offset, 0 elsewhere."""
    n = len(garments)
    garments = torch.where(params.flip[:, None, None, None], garments.flip(3), garments)
    # Sample the garment at every canvas pixel centre: p = (u - offset) / scale in garment pixels,
    # in grid_sample's align_corners=False units (-1 and 1 are the outer edges of the garment).
    u = torch.arange(canvas, dtype=torch.float32) + 0.5
    py = (u[None] - params.offset[:, :1]) / params.scale[:, None]
    px = (u[None] - params.offset[:, 1:]) / params.scale[:, None]
    gy = (2 * py / GARMENT - 1)[:, :, None].expand(n, canvas, canvas)
    gx = (2 * px / GARMENT - 1)[:, None, :].expand(n, canvas, canvas)
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(garments, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def compose(images_u8: torch.Tensor | np.ndarray, params: ContextParams,
            cfg: ContextConfig = ContextConfig()) -> torch.Tensor:
    """Return n×canvas×canvas uint8 images: garments (n×28×28 uint8) over their backgrounds, composited with max."""
    x = torch.as_tensor(np.asarray(images_u8) if isinstance(images_u8, np.ndarray) else images_u8)
    g = x.float().div(255.0)[:, None]
    out = torch.maximum(backgrounds(params, cfg.canvas), place(g, params, cfg.canvas))
    return out[:, 0].mul(255.0).round().to(torch.uint8)


def render_split(images_u8: np.ndarray, seed: int, cfg: ContextConfig = ContextConfig(),
                 chunk: int = 5000) -> np.ndarray:
    """Return every image of a split put in context with a fixed seed (N×canvas×canvas uint8)."""
    params = sample_params(len(images_u8), torch.Generator().manual_seed(seed), cfg)
    out = [compose(images_u8[i:i + chunk], params[slice(i, i + chunk)], cfg) for i in range(0, len(images_u8), chunk)]
    return torch.cat(out).numpy() if out else np.zeros((0, cfg.canvas, cfg.canvas), np.uint8)
