"""Intervals for differences between paired runs: the paired bootstrap, one definition for every table.

Seed k of an SE model is paired with seed k of its plain twin (the same data order and initial draws where the
networks share layers), so the difference per seed is the unit that is resampled: the seed pairs are drawn with
replacement, the mean difference of each resample is kept, and the 2.5th and 97.5th percentiles of those means are
the 95% interval. The generator is seeded, so the same numbers give the same interval every time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
MIN_PAIRS = 3  # a bootstrap of two pairs is only their range, not a 95% interval: fewer is "too few seeds"

NO_DIFFERENCE = "no difference shown"
TOO_FEW = "too few seeds"


@dataclass(frozen=True)
class PairedInterval:
    """The mean paired difference, its bootstrap interval (None with fewer than MIN_PAIRS pairs) and the pairs."""

    mean: float | None
    low: float | None
    high: float | None
    pairs: int

    @property
    def verdict(self) -> str:
        """Return "higher", "lower", NO_DIFFERENCE (the interval spans 0) or TOO_FEW."""
        if self.low is None or self.high is None:
            return TOO_FEW
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return NO_DIFFERENCE


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, level: float = LEVEL) -> PairedInterval:
    """Return the mean of a − b over the pairs (a[k], b[k]) and its paired bootstrap `level` interval: the pairs'
    differences resampled with replacement `resamples` times by a generator seeded with `seed`, the interval the
    central `level` share of the resampled means (percentiles, numpy's linear method). Pairs with a missing value
    (None or NaN) are left out; with fewer than MIN_PAIRS pairs left the interval is None."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None], np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return PairedInterval(None, None, None, 0)
    mean = float(d.mean())
    if len(d) < MIN_PAIRS:
        return PairedInterval(mean, None, None, len(d))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return PairedInterval(mean, float(low), float(high), len(d))
