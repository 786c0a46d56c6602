"""Fashion-MNIST in context: each garment at a random position on a larger canvas over a random smooth background.

Why: Fashion-MNIST garments are centred on black, so a global average pool of early features already encodes
the class (ink coverage, outline), and an untrained network's early SE blocks are as class-specific as a
trained one's. Random positions and backgrounds remove that artefact; the paper's early-vs-late pattern shows.

Everything is deterministic: `sample_params(n, generator)` draws every random choice for n images up front
(position, scale, flip, background level, amplitude and noise grid), and `compose` renders images from them,
so a split is the same whatever batch size renders it. Output pixels are 8-bit, like an uploaded image.

Two background families (ContextConfig.backgrounds). "smooth", the default and every shipped model's: a flat level
plus bilinearly upsampled 9×9 uniform noise. "rich" draws per image one of RICH_KINDS: that smooth background, soft
to hard stripes, a linear gradient, a noise texture on a coarser or finer grid (NOISE_GRIDS), or a grey crop of a
training photo (sevis.data.photos.TRAINING_PHOTOS), each as level + amplitude × a pattern in [0, 1] with the smooth
recipe's level and amplitude ranges, so no background is brighter than the smooth recipe's (0.7 by default) and
garments stay visible under the max composite. The rich draws come after the smooth ones from the same generator,
so a smooth recipe draws exactly what it drew before the family existed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sevis.data.photos import CROP_SIDE, TRAINING_PHOTOS, photo_crops

GARMENT = 28  # Fashion-MNIST images are 28×28
BACKGROUND_FAMILIES = ("smooth", "rich")
# kind -> what it is; the rich family draws one per image, uniformly
RICH_KINDS = {
    "smooth": "the smooth recipe's background (a flat level plus upsampled 9×9 noise)",
    "stripes": "stripes (period 4-14 px, any angle, soft to hard edges)",
    "gradient": "a linear gradient across the canvas (any direction)",
    "noise": "a noise texture (a 4×4, 6×6 or 12×12 grid, bilinearly upsampled)",
    "photo": "a grey crop of a training photo",
}
NOISE_GRIDS = (4, 6, 12)
STRIPE_PERIOD = (4.0, 14.0)
STRIPE_HARDNESS = (0.5, 4.0)  # tanh gain: 0.5 nearly sinusoidal, 4 nearly square


@dataclass(frozen=True)
class ContextConfig:
    """How garments are put in context; stored in model cards."""

    canvas: int = 36
    scale: tuple[float, float] = (1.0, 1.0)  # garment size relative to 28 px, drawn uniformly
    background_level: tuple[float, float] = (0.0, 0.3)  # a flat level…
    background_amplitude: tuple[float, float] = (0.0, 0.4)  # …plus this much of upsampled uniform noise
    noise_grid: int = 9  # the noise is drawn on a grid this size and bilinearly upsampled: smooth
    flip: bool = False  # random horizontal flip of the garment (training augmentation)
    backgrounds: str = "smooth"  # or "rich" (BACKGROUND_FAMILIES; see the module docstring)

    def __post_init__(self) -> None:
        if self.backgrounds not in BACKGROUND_FAMILIES:
            raise ValueError(f"unknown background family {self.backgrounds!r}; known: {', '.join(BACKGROUND_FAMILIES)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ContextConfig":
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class RichParams:
    """The rich family's choices for n images, every one drawn for every image whatever its kind."""

    kind: torch.Tensor  # n, an index into RICH_KINDS
    angle: torch.Tensor  # n, radians: the stripes' or gradient's normal
    period: torch.Tensor  # n, stripe period in pixels
    phase: torch.Tensor  # n
    hardness: torch.Tensor  # n, tanh gain of the stripes
    grid: torch.Tensor  # n, an index into NOISE_GRIDS
    texture: torch.Tensor  # n×12×12 in [0, 1): a grid g uses its top-left g×g
    photo: torch.Tensor  # n, an index into TRAINING_PHOTOS
    corner: torch.Tensor  # n×2 in [0, 1): the crop's top-left corner within the room the photo leaves
    side: torch.Tensor  # n, crop side in working pixels (sevis.data.photos)

    def __getitem__(self, idx) -> "RichParams":
        return RichParams(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


@dataclass
class ContextParams:
    """Every random choice for n images (index with a tensor of positions to take a subset)."""

    offset: torch.Tensor  # n×2 top-left corner (y, x) of the garment on the canvas, in pixels
    scale: torch.Tensor  # n
    flip: torch.Tensor  # n bool
    level: torch.Tensor  # n
    amplitude: torch.Tensor  # n
    noise: torch.Tensor  # n×g×g in [0, 1)
    rich: RichParams | None = None  # the rich family's extra choices (None: smooth backgrounds)

    def __len__(self) -> int:
        return len(self.scale)

    def __getitem__(self, idx) -> "ContextParams":
        return ContextParams(self.offset[idx], self.scale[idx], self.flip[idx], self.level[idx],
                             self.amplitude[idx], self.noise[idx], None if self.rich is None else self.rich[idx])


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
    rich = _sample_rich(n, gen) if cfg.backgrounds == "rich" else None
    return ContextParams(offset, scale, flip, level, amplitude, noise, rich)


def _sample_rich(n: int, gen: torch.Generator) -> RichParams:
    """Return the rich family's choices for n images, drawn from `gen` in a fixed order."""
    kind = torch.randint(len(RICH_KINDS), (n,), generator=gen)
    angle = _uniform(n, (0.0, math.pi), gen)
    period, phase = _uniform(n, STRIPE_PERIOD, gen), _uniform(n, (0.0, 2 * math.pi), gen)
    hardness = _uniform(n, STRIPE_HARDNESS, gen)
    grid = torch.randint(len(NOISE_GRIDS), (n,), generator=gen)
    texture = torch.rand(n, max(NOISE_GRIDS), max(NOISE_GRIDS), generator=gen)
    photo = torch.randint(len(TRAINING_PHOTOS), (n,), generator=gen)
    corner, side = torch.rand(n, 2, generator=gen), _uniform(n, CROP_SIDE, gen)
    return RichParams(kind, angle, period, phase, hardness, grid, texture, photo, corner, side)


def rich_patterns(rich: RichParams, noise: torch.Tensor, canvas: int) -> torch.Tensor:
    """Return n×canvas×canvas patterns in [0, 1], each of its image's kind (RICH_KINDS); `noise` is the smooth
    recipe's n×g×g grid, the pattern of the "smooth" kind."""
    n = len(rich.kind)
    out = torch.empty(n, canvas, canvas)
    kinds = list(RICH_KINDS)
    u = torch.arange(canvas, dtype=torch.float32)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    for k, name in enumerate(kinds):
        idx = torch.nonzero(rich.kind == k)[:, 0]
        if not len(idx):
            continue
        a = rich.angle[idx][:, None, None]
        t = xx[None] * torch.cos(a) + yy[None] * torch.sin(a)  # distance along the stripes' or gradient's normal
        if name == "smooth":
            pattern = _upsample(noise[idx], canvas)
        elif name == "stripes":
            gain = rich.hardness[idx][:, None, None]
            wave = torch.sin(2 * math.pi * t / rich.period[idx][:, None, None] + rich.phase[idx][:, None, None])
            pattern = 0.5 + 0.5 * torch.tanh(gain * wave) / torch.tanh(gain)
        elif name == "gradient":
            lo, hi = t.amin((1, 2), keepdim=True), t.amax((1, 2), keepdim=True)
            pattern = (t - lo) / (hi - lo).clamp(min=1e-6)
        elif name == "noise":
            pattern = torch.empty(len(idx), canvas, canvas)
            for gi, g in enumerate(NOISE_GRIDS):
                sub = torch.nonzero(rich.grid[idx] == gi)[:, 0]
                if len(sub):
                    pattern[sub] = _upsample(rich.texture[idx[sub], :g, :g], canvas)
        else:
            pattern = photo_crops(TRAINING_PHOTOS, rich.photo[idx], rich.corner[idx], rich.side[idx], canvas)
        out[idx] = pattern
    return out


def _upsample(grid: torch.Tensor, canvas: int) -> torch.Tensor:
    return F.interpolate(grid[:, None], size=(canvas, canvas), mode="bilinear", align_corners=True)[:, 0]


def backgrounds(params: ContextParams, canvas: int) -> torch.Tensor:
    """Return n×1×canvas×canvas backgrounds in [0, 1]: smooth ones, or the rich family's when params hold its
    choices."""
    if params.rich is None:
        up = F.interpolate(params.noise[:, None], size=(canvas, canvas), mode="bilinear", align_corners=True)
    else:
        up = rich_patterns(params.rich, params.noise, canvas)[:, None]
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
