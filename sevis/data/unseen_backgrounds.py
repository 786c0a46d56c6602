"""A second test distribution: held-out garments in context on backgrounds the training recipe never used.

The in-context recipe (sevis.data.context) draws a flat level (0-0.3) plus bilinearly upsampled 9×9 uniform noise
(amplitude 0-0.4). The kinds here are none of those: soft sinusoidal stripes, linear gradients across the canvas, a
radial spot, and fine noise (a 18×18 grid: twice the recipe's frequency). Their brightness stays in the recipe's
range (at most 0.7), so what changes is the kind of background, not how bright it is. The garments are Fashion-MNIST
test garments outside the bundled reference sets (sevis.data.heldout), at scale 1 and random positions, composited
with max like the training images; everything is drawn from one fixed seed, so every model sees the same images.

A model trained on the rich background family (sevis.data.context, backgrounds="rich") has seen stripes, gradients and
coarse noise, so its held-out set is RICH_UNSEEN_KINDS instead, kinds that family never draws: the radial spot, the
fine 18×18 noise (finer than its 12×12 grid), a checkerboard (a two-dimensional periodic texture; the rich family only
has stripes) and grey crops of the HELD-OUT photos (sevis.data.photos.HELDOUT_PHOTOS). The garments and their
positions are the same in both sets; `recipe_of` reads a model's family from its card, so every model is measured on
the set its recipe never used (every model trained before the family existed: UNSEEN_KINDS, as before).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sevis.data.context import ContextConfig, place, sample_params
from sevis.data.fashion_mnist import Split
from sevis.data.photos import CROP_SIDE, HELDOUT_PHOTOS, photo_crops

UNSEEN_SEED = 25_000  # none of the train, test or held-out rendering seeds
UNSEEN_IMAGES = 2_000
# kind -> what it is (for captions and cards); every image gets one kind, in turn (500 of each of 2,000)
UNSEEN_KINDS = {
    "stripes": "soft sinusoidal stripes (period 5-12 px, any angle)",
    "gradient": "a linear gradient across the canvas (any direction)",
    "spot": "a radial spot (a bright Gaussian blob, 6-14 px wide)",
    "fine-noise": "fine noise (an 18×18 grid upsampled: twice the training noise's frequency)",
}
# the held-out set of a rich-recipe model: kinds the rich family never draws (500 of each of 2,000)
RICH_UNSEEN_KINDS = {
    "spot": UNSEEN_KINDS["spot"],
    "fine-noise": "fine noise (an 18×18 grid upsampled: finer than any training noise grid)",
    "checkerboard": "a checkerboard (cells 3-8 px, any angle)",
    "held-out-photo": "a grey crop of a photo no training image shows",
}
MAX_LEVEL = 0.7  # the training recipe's brightest background: level 0.3 + amplitude 0.4


def recipe_of(card: dict) -> str:
    """Return the background family a model was trained on, from its card ("smooth" for every card written before
    the family existed, and for models sevis did not train)."""
    training = card.get("training") or {}
    context = (card.get("dataset") or {}).get("training_context") or {}
    return str(training.get("backgrounds") or context.get("backgrounds") or "smooth")


def unseen_kinds(recipe: str = "smooth") -> dict[str, str]:
    """Return the held-out background kinds (kind -> what it is) of a model trained on background family `recipe`."""
    return RICH_UNSEEN_KINDS if recipe == "rich" else UNSEEN_KINDS


def unseen_test_record(recipe: str = "smooth") -> dict:
    """Return what a card says about the held-out set of a `recipe` model (the smooth one as cards always held it)."""
    record = {"images": UNSEEN_IMAGES, "seed": UNSEEN_SEED, "kinds": list(unseen_kinds(recipe))}
    return record if recipe != "rich" else {**record, "recipe": recipe}


def unseen_words(recipe: str = "smooth") -> str:
    """Return the held-out background kinds of a `recipe` model as one phrase."""
    kinds = list(unseen_kinds(recipe).values())
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


def rich_unseen_backgrounds(n: int, canvas: int, gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    """Return (n×1×canvas×canvas backgrounds in [0, MAX_LEVEL] of RICH_UNSEEN_KINDS, the kind of each), kinds in
    turn, drawn from `gen` in a fixed order."""
    kinds = list(RICH_UNSEEN_KINDS)
    kind_of = [kinds[i % len(kinds)] for i in range(n)]
    u = torch.arange(canvas, dtype=torch.float32)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    # Every random number is drawn for every image whatever its kind, so a subset renders the same.
    level, amp = _u(gen, n, 0.0, 0.3), _u(gen, n, 0.2, 0.4)
    cy, cx, width = _u(gen, n, 0.0, canvas - 1), _u(gen, n, 0.0, canvas - 1), _u(gen, n, 6.0, 14.0)
    fine = torch.rand(n, 18, 18, generator=gen)
    angle, cell, shift = _u(gen, n, 0.0, math.pi / 2), _u(gen, n, 3.0, 8.0), torch.rand(n, 2, generator=gen)
    photo = torch.randint(len(HELDOUT_PHOTOS), (n,), generator=gen)
    corner, side = torch.rand(n, 2, generator=gen), _u(gen, n, *CROP_SIDE)
    pattern = torch.zeros(n, canvas, canvas)
    for k in kinds:
        idx = torch.tensor([i for i, kk in enumerate(kind_of) if kk == k], dtype=torch.long)
        if not len(idx):
            continue
        if k == "spot":
            r2 = (yy[None] - cy[idx, None, None]) ** 2 + (xx[None] - cx[idx, None, None]) ** 2
            pattern[idx] = torch.exp(-r2 / (2 * (width[idx, None, None] / 2) ** 2))
        elif k == "fine-noise":
            pattern[idx] = F.interpolate(fine[idx, None], size=(canvas, canvas), mode="bilinear",
                                         align_corners=True)[:, 0]
        elif k == "checkerboard":
            a, c = angle[idx, None, None], cell[idx, None, None]
            p = (xx[None] * torch.cos(a) + yy[None] * torch.sin(a)) / c + shift[idx, :1, None]
            q = (yy[None] * torch.cos(a) - xx[None] * torch.sin(a)) / c + shift[idx, 1:, None]
            # soft-edged squares (tanh of a sine): no aliasing at any angle
            pattern[idx] = 0.5 + 0.5 * torch.tanh(4 * torch.sin(math.pi * p)) * torch.tanh(
                4 * torch.sin(math.pi * q)) / math.tanh(4) ** 2
        else:
            pattern[idx] = photo_crops(HELDOUT_PHOTOS, photo[idx], corner[idx], side[idx], canvas)
    out = (level[:, None, None] + amp[:, None, None] * pattern.clamp(0, 1)).clamp(0, MAX_LEVEL)
    return out[:, None], kind_of


def unseen_split(n: int = UNSEEN_IMAGES, seed: int = UNSEEN_SEED, canvas: int = ContextConfig().canvas,
                 recipe: str = "smooth") -> tuple[Split, list[str]]:
    """Return (n held-out test garments in context on backgrounds a `recipe` model never saw as an N×canvas×canvas
    uint8 Split, the background kind of each image)."""
    from sevis.data.heldout import heldout_split
    garments = heldout_split(n, seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = ContextConfig(canvas=canvas)
    params = sample_params(n, gen, cfg)  # positions at scale 1, as the families were trained
    back, kinds = (rich_unseen_backgrounds if recipe == "rich" else unseen_backgrounds)(n, canvas, gen)
    g = torch.from_numpy(garments.images).float().div(255.0)[:, None]
    out = torch.maximum(back, place(g, params, canvas))[:, 0].mul(255.0).round().to(torch.uint8)
    return Split(out.numpy(), garments.labels, garments.classes), kinds


def accuracy_by_kind(predictions: np.ndarray, labels: np.ndarray, kinds: list[str]) -> dict[str, float]:
    """Return the share of correct predictions per background kind."""
    kinds_a = np.asarray(kinds)
    return {k: float((predictions[kinds_a == k] == labels[kinds_a == k]).mean())
            for k in dict.fromkeys([*UNSEEN_KINDS, *RICH_UNSEEN_KINDS]) if (kinds_a == k).any()}


@torch.inference_mode()
def unseen_upload_accuracy(loaded, n: int = UNSEEN_IMAGES, seed: int = UNSEEN_SEED,
                           batch_size: int = 250) -> tuple[float, dict[str, float]]:
    """Return (accuracy, accuracy per kind) of a loaded model on the held-out backgrounds of its recipe (read from
    its card), each image sent as PNG bytes through open_image and the model's preprocess, as an upload is."""
    from PIL import Image

    from sevis.data.heldout import png_bytes
    from sevis.data.preprocess import open_image
    split, kinds = unseen_split(n, seed, recipe=recipe_of(loaded.card))
    pred = []
    for i in range(0, len(split), batch_size):
        x = torch.stack([loaded.preprocess(open_image(png_bytes(Image.fromarray(a, "L"))))
                         for a in split.images[i:i + batch_size]])
        with torch.inference_mode():  # no autograd graph for 250 images at a time
            pred.append(loaded.model(x).argmax(1))
    p = torch.cat(pred).numpy() if pred else np.zeros(0, np.int64)
    return float((p == split.labels).mean()) if len(p) else 0.0, accuracy_by_kind(p, split.labels, kinds)
