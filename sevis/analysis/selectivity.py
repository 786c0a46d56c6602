"""Which channel of which SE block is the most class-selective, and how that is measured: one definition for every
place that names such a channel (the Tour's "most class-selective channel", the channel the Channel view opens on).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sevis.core.statistics import ExcitationStats

# Shares equal to this many decimals count as tied (float noise must not decide; see most_selective_channel).
TIE_DECIMALS = 6


@dataclass
class SelectiveChannel:
    """The channel whose s depends most on the class, and what shows it."""

    block: str
    channel: int
    share: float  # share of the channel's variance of s over the reference images that lies between class means
    top_class: str
    top_mean: float  # mean s over that class's images
    rest_mean: float  # mean s over the other classes' images
    class_means: np.ndarray  # K (NaN for a class without images)
    classes: list[str]


def _between_and_total(stats: ExcitationStats, block: str) -> tuple[np.ndarray, np.ndarray]:
    """Return, per channel of `block`, the image-weighted between-class variance of s and the total variance of s
    over the reference images (between + the image-weighted mean within-class variance); classes without images
    are left out."""
    counts = stats.count.astype(float)
    present = counts > 0
    w = counts[present] / counts[present].sum()
    mean, std = stats.mean(block)[present], stats.std(block)[present]  # K'×C
    grand = (w[:, None] * mean).sum(0)
    between = (w[:, None] * (mean - grand) ** 2).sum(0)
    within = (w[:, None] * std ** 2).sum(0)
    return between, between + within


def channel_selectivity(stats: ExcitationStats, block: str) -> np.ndarray:
    """Return, per channel of `block`, its class selectivity: the share of the variance of its s over the reference
    images that lies between class means (η², the per-channel form of ExcitationStats.class_specificity; 0 = every
    class has the same mean s, 1 = s is fixed by the class). NaN where s is the same for every image (0/0) or fewer
    than two classes have images."""
    if int((stats.count > 0).sum()) < 2:
        return np.full(stats.mean(block).shape[1], np.nan)
    between, total = _between_and_total(stats, block)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 1e-12, between / np.maximum(total, 1e-12), np.nan)


def most_selective_channel(stats: ExcitationStats, blocks: Sequence[str] | None = None) -> SelectiveChannel | None:
    """Return the most class-selective channel among `blocks` (default: every SE block), or None when no channel's
    s varies or fewer than two classes have images.

    How it is measured (the one definition the Tour and the Channel view share): per channel, over the reference
    images, the share of the variance of s that lies between class means (channel_selectivity, η²), computed from
    each image's s (the within-class spread counts), not from the class means alone: a channel whose class means lie
    far apart but whose images scatter widely within each class is less selective than one whose classes separate
    cleanly. Scale-free, so channels of blocks with different ranges of s compare fairly; every block is searched
    unless `blocks` restricts it (the Channel view asks one block at a time when a block is picked).
    Ties: shares equal to TIE_DECIMALS decimals go to the larger between-class variance (units of s²), then to the
    shallower block and the lower channel index. With one image per class (sample photos standing in for classes)
    every varying channel has share 1, so this picks the channel whose s varies most across those images.
    """
    best: tuple[tuple[float, float], str, int, float] | None = None
    for block in blocks if blocks is not None else stats.blocks:
        share = channel_selectivity(stats, block)
        if not np.isfinite(share).any():
            continue
        between, _ = _between_and_total(stats, block)
        for c in np.flatnonzero(np.isfinite(share)):
            key = (round(float(share[c]), TIE_DECIMALS), float(between[c]))
            if best is None or key > best[0]:
                best = (key, block, int(c), float(share[c]))
    if best is None:
        return None
    _, block, c, share = best
    return _selective_channel(stats, block, c, share)


def most_selective_channel_for(stats: ExcitationStats, cls: str,
                               blocks: Sequence[str] | None = None) -> SelectiveChannel | None:
    """Return the most class-selective channel (most_selective_channel's measure and ties) among the channels whose
    highest class mean is class `cls`'s: the channel that singles out `cls` best. None when no channel of `blocks`
    (default: every SE block) gets its highest mean s from `cls`, or none varies."""
    k = stats.classes.index(cls)
    best: tuple[tuple[float, float], str, int, float] | None = None
    for block in blocks if blocks is not None else stats.blocks:
        share = channel_selectivity(stats, block)
        means = stats.mean(block)
        if not np.isfinite(share).any() or np.isnan(means[k]).all():
            continue
        top = np.nanargmax(np.where(np.isnan(means), -np.inf, means), axis=0)
        between, _ = _between_and_total(stats, block)
        for c in np.flatnonzero(np.isfinite(share) & (top == k)):
            key = (round(float(share[c]), TIE_DECIMALS), float(between[c]))
            if best is None or key > best[0]:
                best = (key, block, int(c), float(share[c]))
    return None if best is None else _selective_channel(stats, best[1], best[2], best[3])


def _selective_channel(stats: ExcitationStats, block: str, c: int, share: float) -> SelectiveChannel:
    """Return channel `c` of `block` with its class means, the class it prefers and the other classes' mean."""
    means = stats.mean(block)[:, c]
    counts = stats.count.astype(float)
    k = int(np.nanargmax(means))
    rest = [j for j in range(len(means)) if j != k and counts[j] > 0]
    rest_mean = float(np.average(means[rest], weights=counts[rest])) if rest else float("nan")
    return SelectiveChannel(block, c, share, stats.classes[k], float(means[k]), rest_mean, means,
                            list(stats.classes))
