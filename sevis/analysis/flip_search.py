"""Find a flip: the smallest SE knock-out that changes one image's prediction (the Knock-out view's search).

The search runs in phases, each bounded, and stops at the first phase that finds a flip:
1. every SE block alone, with s := the block's reference-set mean and with s := 1 (all images of a request in one
   batch per knock-out);
2. channels of the CHANNEL_BLOCKS blocks whose knock-out alone lowers the predicted class most;
3. channels of every block.
In phases 2 and 3 the channels are ranked by a first-order estimate of how much setting each one to its knock-out
value (its reference-set mean, or 1) lowers the margin of the predicted class over the runner-up (one backward pass
through the recorder's overrides); the first k ranked channels are knocked out for k = 1, 2, 4, … up to CHANNEL_CAP,
then bisected down to the fewest that flip. Every flip reported was re-run, never estimated.

The smallest change is the one that knocks out the fewest channels (a whole block counts all of its channels), then
the one that moves s least (the sum of |s_new − s| over the channels knocked out).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from sevis.analysis.images import NamedImage
from sevis.analysis.knockout import Mode, knockout_overrides, residual_pipeline
from sevis.core.recorder import ExcitationRecorder, Override, SEBlock, SetChannels, find_se_blocks
from sevis.models.zoo import LoadedModel

CHANNEL_BLOCKS = 3  # phase 2 searches the channels of this many blocks (those whose knock-out moves most)
CHANNEL_CAP = 64  # phases 2 and 3 knock out at most this many channels at once (the first ones ranked)
MODES: tuple[Mode, ...] = ("mean", "identity")  # what s is replaced by, in the order the search tries them


@dataclass(frozen=True)
class Knockout:
    """One knock-out: what s is replaced by, and either a whole block or some (block, channel) pairs."""

    mode: str  # "mean" (s := the reference-set mean) or "identity" (s := 1)
    block: str | None = None  # a whole block (phase 1)
    channels: tuple[tuple[str, int], ...] = ()  # else these channels (phases 2 and 3), in depth and channel order
    size: int = 0  # channels knocked out
    change: float = 0.0  # the sum of |s_new − s| over those channels, for this image

    @property
    def blocks(self) -> list[str]:
        """Return the blocks this knock-out touches, in depth order."""
        return [self.block] if self.block is not None else list(dict.fromkeys(b for b, _ in self.channels))

    def channels_of(self, block: str) -> list[int]:
        """Return the channels knocked out in `block` (phases 2 and 3)."""
        return [c for b, c in self.channels if b == block]

    def overrides(self, means: Mapping[str, np.ndarray] | None) -> dict[str, Override]:
        """Return the recorder overrides of this knock-out."""
        if self.block is not None:
            return knockout_overrides([self.block], self.mode, means)  # type: ignore[arg-type]
        out: dict[str, Override] = {}
        for b in self.blocks:
            target = _target(b, self.mode, means)
            out[b] = SetChannels({c: float(target[c]) if target is not None else 1.0 for c in self.channels_of(b)})
        return out


@dataclass
class FlipSearch:
    """What the search found for one image: the flip (None: none found), or the closest miss."""

    image: str
    before: tuple[str, float]  # the top class and its probability, intact
    before_probs: np.ndarray  # K, intact
    classes: Sequence[str]
    modes: tuple[str, ...] = MODES  # what s was replaced by
    flip: Knockout | None = None
    phase: int = 0  # the phase that found the flip (1: a block alone, 2: channels of the influential blocks, 3: any)
    after_probs: np.ndarray | None = None  # K, with the flip (or the nearest miss) knocked out
    nearest: Knockout | None = None  # when nothing flips: the knock-out that lowered the predicted class most
    blocks: int = 0  # blocks knocked out alone in phase 1
    block_flips: int = 0  # how many of phase 1's knock-outs flip the image
    channel_blocks: tuple[str, ...] = ()  # the blocks phase 2 searched
    phases: int = 1  # how many phases ran
    channels_tried: int = 0  # (block, channel) pairs knocked out in at least one attempt of phases 2 and 3
    knockouts: int = 0  # knock-outs run for this image, every phase
    cap: int = CHANNEL_CAP  # the most channels phases 2 and 3 knocked out at once

    @property
    def after(self) -> tuple[str, float] | None:
        """Return the top class and its probability with the flip (or the nearest miss) knocked out."""
        if self.after_probs is None:
            return None
        k = int(np.argmax(self.after_probs))
        return self.classes[k], float(self.after_probs[k])

    @property
    def original_after(self) -> float | None:
        """Return the probability of the intact top class with the flip (or nearest miss) knocked out."""
        if self.after_probs is None:
            return None
        return float(self.after_probs[int(np.argmax(self.before_probs))])


def _target(block: str, mode: str, means: Mapping[str, np.ndarray] | None) -> np.ndarray | None:
    """Return the values a knock-out puts in place of s (None: 1 everywhere)."""
    if mode == "identity":
        return None
    if means is None:
        raise ValueError("mode='mean' needs the reference-set mean excitation of each block")
    return np.asarray(means[block], np.float64).reshape(-1)


def _change(mode: str, s: Mapping[str, np.ndarray], means, block: str | None = None,
            channels: Sequence[tuple[str, int]] = ()) -> tuple[int, float]:
    """Return (channels knocked out, sum of |s_new − s| over them) for one image's s (block -> C-vector): a whole
    `block`, else `channels`."""
    pairs = [(block, c) for c in range(len(s[block]))] if block is not None else list(channels)
    total = 0.0
    for b in dict.fromkeys(b for b, _ in pairs):
        idx = np.asarray([c for bb, c in pairs if bb == b], np.int64)
        target = _target(b, mode, means)
        target = np.ones_like(s[b]) if target is None else target
        total += float(np.abs(target[idx] - s[b][idx]).sum())
    return len(pairs), total


class _Runner:
    """Runs knock-outs on a batch: from the first knocked-out block's residual block on when the model is
    ResNet-shaped (the prefix computed once, as knockout_sweep does), else the whole model."""

    def __init__(self, loaded: LoadedModel, x: torch.Tensor, blocks: Sequence[SEBlock]) -> None:
        self.loaded, self.x = loaded, x
        model = loaded.model
        self.pipe = residual_pipeline(model)
        self.start: dict[str, int] = {}
        self.depth = {b.name: b.index for b in blocks}
        if self.pipe is not None:
            for b in blocks:
                idx = [i for i, p in enumerate(self.pipe.block_paths) if b.path.startswith(p + ".")]
                if not idx:
                    self.pipe = None
                    break
                self.start[b.name] = idx[0]
        self.inputs: list[torch.Tensor] = []
        with ExcitationRecorder(model) as rec:
            if self.pipe is not None:
                h = self.pipe.stem(x)
                for blk in self.pipe.blocks:
                    self.inputs.append(h)
                    h = blk(h)
                logits = self.pipe.head(h)
            else:
                logits = model(x)
        self.probs = logits.float().softmax(1)
        self.s = {b: v.double().numpy() for b, v in rec.excitations.items()}  # block -> N×C, intact

    def run(self, overrides: Mapping[str, Override], rows: slice = slice(None)) -> np.ndarray:
        """Return the class probabilities (N×K) of images `rows` with `overrides` applied."""
        model = self.loaded.model
        with torch.inference_mode(), ExcitationRecorder(model, blocks=list(overrides), overrides=overrides,
                                                        record=False):
            if self.pipe is not None:
                k = min(self.start[b] for b in overrides)
                logits = self.pipe.run_from(self.inputs[k][rows], k)
            else:
                logits = model(self.x[rows])
        return logits.float().softmax(1).double().numpy()


def _margin_gradients(loaded: LoadedModel, x: torch.Tensor, top: int, s: Mapping[str, np.ndarray],
                      blocks: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Return, per block, the gradient of the predicted class's logit margin over the runner-up with respect to
    s (one image x, 1×C×H×W; s its intact excitations): s enters through the recorder's overrides, set to its own
    values, so the forward pass is the intact one. None where the model cannot be differentiated."""
    try:
        with torch.inference_mode(False), torch.enable_grad():
            leaves = {b: torch.tensor(s[b], dtype=torch.float32, requires_grad=True) for b in blocks}
            with ExcitationRecorder(loaded.model, blocks=list(blocks), overrides=leaves, record=False):
                logits = loaded.model(x.clone()).float()[0]
            others = torch.cat([logits[:top], logits[top + 1:]])
            margin = logits[top] - others.max()
            grads = torch.autograd.grad(margin, list(leaves.values()), allow_unused=True)
    except RuntimeError:  # a model that cannot be differentiated (e.g. built under inference mode)
        return None
    return {b: (g.double().numpy() if g is not None else np.zeros(len(s[b]))) for b, g in zip(blocks, grads)}


def find_flips(loaded: LoadedModel, images: Sequence[NamedImage], means: Mapping[str, np.ndarray] | None,
               channel_blocks: int = CHANNEL_BLOCKS, cap: int = CHANNEL_CAP) -> list[FlipSearch]:
    """Return, for each image, the smallest knock-out that changes its top class (see the module's docstring), or
    what was searched and the closest miss. `means`: block -> the reference-set mean of s (None: only s := 1)."""
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    if not images:
        return []
    x = torch.stack([loaded.preprocess(im.image) for im in images])
    with torch.inference_mode():
        runner = _Runner(loaded, x, blocks)
    modes = tuple(m for m in MODES if m == "identity" or means is not None)
    # phase 1: every block alone, each mode, every image in one batch per knock-out
    after = {(b.name, m): runner.run(knockout_overrides([b.name], m, means)) for m in modes  # type: ignore[arg-type]
             for b in blocks}
    found = []
    for i, image in enumerate(images):
        base = runner.probs[i].double().numpy()
        top = int(base.argmax())
        res = FlipSearch(image.name, (loaded.classes[top], float(base[top])), base, loaded.classes, modes,
                         blocks=len(blocks), cap=cap)
        s_i = {b: v[i] for b, v in runner.s.items()}
        tried: list[tuple[Knockout, np.ndarray]] = []
        for (b, m), probs in after.items():
            tried.append((Knockout(m, b, (), *_change(m, s_i, means, block=b)), probs[i]))
        flips = [t for t in tried if int(t[1].argmax()) != top]
        res.block_flips = len(flips)
        if flips:
            res.phase = 1
        elif blocks:
            # phases 2 and 3: channels of the most influential blocks, then of every block
            drop = {}
            for ko, p in tried:
                drop[ko.block] = max(drop.get(ko.block, -np.inf), base[top] - p[top])
            res.channel_blocks = tuple(sorted(drop, key=lambda b: -drop[b])[:channel_blocks])
            grads = _margin_gradients(loaded, x[i:i + 1], top, s_i, [b.name for b in blocks])
            pairs: set[tuple[str, int]] = set()
            scopes = [list(res.channel_blocks)] + ([[b.name for b in blocks]] if len(blocks) > channel_blocks else [])
            for phase, scope in enumerate(scopes, start=2):
                res.phases = phase
                for m in modes:
                    order = _ranking(scope, m, s_i, grads, means, cap)
                    flips += _prefix_search(runner, i, top, order, m, s_i, means, tried, pairs,
                                            max((f[0].size for f in flips), default=None))
                if flips:
                    res.phase = phase
                    break
            res.channels_tried = len(pairs)
        res.knockouts = len(tried)
        if flips:
            res.flip, res.after_probs = min(flips, key=lambda f: (f[0].size, f[0].change))
        elif tried:
            res.nearest, res.after_probs = max(tried, key=lambda t: base[top] - t[1][top])
        found.append(res)
    return found


def _ranking(scope: Sequence[str], mode: str, s: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray] | None,
             means, cap: int) -> list[tuple[str, int]]:
    """Return the (block, channel) pairs of `scope` whose knock-out (s := target) lowers the predicted class's margin
    to first order, largest estimated drop first, at most `cap` (without gradients: the largest changes of s)."""
    scored = []
    for b in scope:
        target = _target(b, mode, means)
        delta = (np.ones_like(s[b]) if target is None else target) - s[b]
        estimate = grads[b] * delta if grads is not None else -np.abs(delta)
        scored += [(float(estimate[c]), b, int(c)) for c in np.flatnonzero(estimate < 0)]
    scored.sort()
    return [(b, c) for _, b, c in scored[:cap]]


def _prefix_search(runner: _Runner, i: int, top: int, order: list[tuple[str, int]], mode: str, s, means,
                   tried: list, pairs: set, smaller_than: int | None) -> list[tuple[Knockout, np.ndarray]]:
    """Knock out the first k of `order` for k = 1, 2, 4, … (below `smaller_than`), then bisect down to the fewest that
    flip image i; append every attempt to `tried` and its channels to `pairs`; return the flip found, if any."""
    limit = len(order) if smaller_than is None else min(len(order), smaller_than - 1)

    def attempt(k: int) -> tuple[Knockout, np.ndarray]:
        chosen = tuple(sorted(order[:k], key=lambda p: (runner.depth[p[0]], p[1])))
        ko = Knockout(mode, None, chosen, *_change(mode, s, means, channels=chosen))
        out = (ko, runner.run(ko.overrides(means), slice(i, i + 1))[0])
        tried.append(out)
        pairs.update(chosen)
        return out

    lo, hi, hit, k = 0, None, None, 1
    while k <= limit:
        ko, p = attempt(k)
        if int(p.argmax()) != top:
            hi, hit = k, (ko, p)
            break
        lo = k
        k = limit if k < limit < 2 * k else 2 * k
    while hit is not None and hi - lo > 1:
        mid = (lo + hi) // 2
        ko, p = attempt(mid)
        if int(p.argmax()) != top:
            hi, hit = mid, (ko, p)
        else:
            lo = mid
    return [hit] if hit is not None else []
