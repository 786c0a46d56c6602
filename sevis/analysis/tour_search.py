"""Searches over a labelled reference set that the Tour shows: a knock-out that flips a prediction, and the images
that excite a channel most (the channel itself: sevis.analysis.selectivity.most_selective_channel); and the one
count of single-block knock-outs that flip a prediction (FlipCount), which the Tour and the Knock-out view both
state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from sevis.analysis.inference import run_batch
from sevis.analysis.knockout import Mode, knockout_overrides
from sevis.core.recorder import ExcitationRecorder, SEBlock
from sevis.models.zoo import LoadedModel

SEARCH_IMAGES = 200  # reference images a flip search looks at (the first ones of each batch, in order)


@dataclass(frozen=True)
class FlipCount:
    """How many predictions knocking out one SE block at a time flips (changes the top class of) over the same
    images: the one definition of "flips" that the Tour and the Knock-out view state."""

    per_block: dict  # block -> how many of the images its knock-out alone flips (every block, in depth order)
    images: int  # how many reference images were searched (the first ones of the reference set)
    mode: str = "identity"  # what s is replaced by: 1 ("identity") or the reference mean ("mean")

    @property
    def pairs(self) -> int:
        """Return the number of flipped (image, block) pairs."""
        return int(sum(self.per_block.values()))

    @property
    def most(self) -> str | None:
        """Return the block whose knock-out flips the most images (the shallower one on a tie), or None."""
        top = max(self.per_block.values(), default=0)
        return next((b for b, n in self.per_block.items() if n == top), None) if top else None

    def sentence(self) -> str:
        """Return the count in words, the same wherever it is shown: what was knocked out, how many image × block
        pairs flip out of how many, and the block that flips the most."""
        n, k = self.images, len(self.per_block)
        what = "s := 1" if self.mode == "identity" else "s := its reference-set mean"
        pairs = self.pairs
        text = (f"Knocking out one SE block at a time ({what}) changes the top class in {pairs} of the {n * k} "
                f"image × block pairs ({n} reference image{'s' if n != 1 else ''} × {k} block{'s' if k != 1 else ''})")
        b = self.most
        if b is None:
            return text + "."
        m = self.per_block[b]
        return text + f"; {b} alone flips the most: {m} of the {n} image{'s' if n != 1 else ''}."

    def numbers(self) -> dict:
        """Return the count as named numbers (a view's ViewResult.numbers): flips, flips/images, flips/blocks,
        and flips/<block> for every block."""
        return {"flips": self.pairs, "flips/images": self.images, "flips/blocks": len(self.per_block),
                **{f"flips/{b}": int(v) for b, v in self.per_block.items()}}


@dataclass
class Flip:
    """One knock-out that changes one image's top class."""

    blocks: list[str]  # what was knocked out (s := 1)
    image: int  # index among the searched images
    label: str | None  # the image's class in the reference set
    before: tuple[str, float]  # top class and probability, intact
    after: tuple[str, float]  # top class and probability, knocked out
    before_probs: np.ndarray  # K, intact
    after_probs: np.ndarray  # K, knocked out
    pixels: torch.Tensor  # the preprocessed image, C×H×W
    searched_images: int


def _take(batches: Iterable[tuple[torch.Tensor, np.ndarray]], limit: int) -> tuple[torch.Tensor, np.ndarray]:
    xs, ys, n = [], [], 0
    for x, y in batches:
        xs.append(x[: limit - n])
        ys.append(np.asarray(y)[: limit - n])
        n += len(xs[-1])
        if n >= limit:
            break
    if not xs:
        return torch.zeros(0), np.zeros(0, np.int64)
    return torch.cat(xs), np.concatenate(ys)


def _phases(blocks: Sequence[SEBlock]) -> list[list[list[str]]]:
    """Return what to knock out, phase by phase: each block alone, then each stage, then every block at once."""
    stages: dict = {}
    for b in blocks:
        stages.setdefault(b.stage, []).append(b.name)
    return [[[b.name] for b in blocks], [names for names in stages.values() if len(names) > 1],
            [[b.name for b in blocks]]]


def _probs(loaded: LoadedModel, x: torch.Tensor, overrides=None, chunk: int = 50) -> torch.Tensor:
    return torch.cat([run_batch(loaded, x[i:i + chunk], overrides=overrides).probs for i in range(0, len(x), chunk)])


def _flip_count(base: torch.Tensor, after: Mapping[str, torch.Tensor], images: int, mode: str) -> FlipCount:
    """Return the FlipCount of single-block knock-outs (block -> probabilities after) against `base`."""
    top = base.argmax(1)
    return FlipCount({b: int((p.argmax(1) != top).sum()) for b, p in after.items()}, images, mode)


@torch.inference_mode()
def count_flips(loaded: LoadedModel, batches, blocks: Sequence[SEBlock] | Sequence[str], mode: Mode = "identity",
                means: Mapping[str, np.ndarray] | None = None, limit: int = SEARCH_IMAGES) -> FlipCount:
    """Return how many of the first `limit` reference images each SE block, knocked out alone (s := 1, or s := the
    reference mean with mode "mean"), flips: the count the Knock-out view states (the Tour's find_flip counts the
    same way, over the same images)."""
    x, _ = _take(batches, limit)
    names = [getattr(b, "name", b) for b in blocks]
    if not len(x):
        return FlipCount({b: 0 for b in names}, 0, mode)
    base = _probs(loaded, x)
    return _flip_count(base, {b: _probs(loaded, x, knockout_overrides([b], mode, means)) for b in names}, len(x), mode)


@torch.inference_mode()
def find_flip(loaded: LoadedModel, batches, blocks: Sequence[SEBlock], classes: Sequence[str] | None = None,
              limit: int = SEARCH_IMAGES, chunk: int = 50) -> tuple[Flip | None, FlipCount]:
    """Return (the most convincing knock-out that flips a prediction among the first `limit` reference images
    (labels index `classes`), or None when nothing flips; how many of those images each block alone flips, counted
    as count_flips counts them). Single blocks are tried first, then whole stages, then
    every block; among the flips of the first group that has any, an image the intact model got right and the
    largest drop of its original class's probability win."""
    x, y = _take(batches, limit)
    if not len(x) or not blocks:
        return None, FlipCount({b.name: 0 for b in blocks}, len(x))
    base = _probs(loaded, x, chunk=chunk)
    top = base.argmax(1)
    truth = None
    if classes is not None and all(c in loaded.classes for c in classes):
        truth = torch.as_tensor([loaded.classes.index(classes[k]) for k in y])
    singles: dict[str, torch.Tensor] = {}
    best = None
    for phase in _phases(blocks):
        for group in phase:
            after = _probs(loaded, x, knockout_overrides(group), chunk)
            if len(group) == 1:
                singles[group[0]] = after
            flipped = (after.argmax(1) != top).nonzero().flatten().tolist()
            for i in flipped:
                right = truth is not None and int(truth[i]) == int(top[i])
                score = (right, float(base[i, top[i]] - after[i, top[i]]))
                if best is None or score > best[1]:
                    best = (group, score, i, after[i])
        if best is not None:
            break
    counts = _flip_count(base, singles, len(x), "identity")  # phase 1 always runs: every block alone
    if best is None:
        return None, counts
    group, _, i, after_i = best
    label = classes[int(y[i])] if classes is not None else None
    c0, c1 = int(top[i]), int(after_i.argmax())
    return Flip(group, i, label, (loaded.classes[c0], float(base[i, c0])), (loaded.classes[c1], float(after_i[c1])),
                base[i].numpy(), after_i.numpy(), x[i], len(x)), counts


@torch.inference_mode()
def top_images(loaded: LoadedModel, batches, block: str, channel: int, n: int = 8,
               limit: int = 2000) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Return the `n` reference images (preprocessed, N×C×H×W) that excite `channel` of `block` most, their s and
    their labels, over at most `limit` images."""
    keep_x, keep_s, keep_y, seen = None, None, None, 0
    with ExcitationRecorder(loaded.model, blocks=[block]) as rec:
        for x, y in batches:
            loaded.model(x)
            s = rec.pop()[block][:, channel].double().numpy()
            xs = x if keep_x is None else torch.cat([keep_x, x])
            ss = s if keep_s is None else np.concatenate([keep_s, s])
            ys = np.asarray(y) if keep_y is None else np.concatenate([keep_y, np.asarray(y)])
            order = np.argsort(-ss, kind="stable")[:n]
            keep_x, keep_s, keep_y = xs[torch.as_tensor(order)], ss[order], ys[order]
            seen += len(y)
            if seen >= limit:
                break
    if keep_x is None:
        return torch.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return keep_x, keep_s, keep_y
