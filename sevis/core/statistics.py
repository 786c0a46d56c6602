"""Analysis of excitations: streaming per-class statistics, class specificity, saturation, similarity.

Everything here is pure (tensors/arrays in, arrays/frames out) and needs no model or Streamlit.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

SUMMARY_COLUMNS = ["block", "depth", "channels", "images", "mean_s", "spread", "min_s", "max_s", "class_specificity",
                   "decorrelation", "between_class_spread", "near_all_share", "saturation"]
SATURATION_THRESHOLD = 0.9  # a channel whose mean s exceeds this is "saturated": the block nearly passes it through


@dataclass
class _BlockAccumulator:
    count: np.ndarray  # K
    total: np.ndarray  # K×C sum of s
    total_sq: np.ndarray  # K×C sum of s²
    lo: float = np.inf
    hi: float = -np.inf
    # How many values of s fell below 0, exactly at 0 and above 1: what a gate other than the sigmoid lets s do.
    outside: np.ndarray = field(default_factory=lambda: np.zeros(3))


class ExcitationStats:
    """Per-class running sums of s for every block: memory is O(classes × channels), not O(images).

    Update with each batch's excitations and labels; read means, stds, the "all" mean, class specificity
    and saturation at any time. Sums are kept in float64, so E[s²] − E[s]² is exact enough for s ∈ [0, 1].
    """

    def __init__(self, classes: Sequence[str], channels: Mapping[str, int]) -> None:
        self.classes = list(classes)
        k = len(self.classes)
        self._acc: "OrderedDict[str, _BlockAccumulator]" = OrderedDict(
            (name, _BlockAccumulator(np.zeros(k), np.zeros((k, c)), np.zeros((k, c)))) for name, c in channels.items()
        )

    @property
    def blocks(self) -> list[str]:
        return list(self._acc)

    @property
    def count(self) -> np.ndarray:
        """Return the number of images seen per class."""
        first = next(iter(self._acc.values()), None)
        return first.count.copy() if first is not None else np.zeros(len(self.classes))

    def update(self, excitations: Mapping[str, torch.Tensor], labels: torch.Tensor | np.ndarray) -> None:
        """Add one batch: excitations name -> N×C, labels N class indices."""
        labels = np.asarray(labels, dtype=np.int64)
        k = len(self.classes)
        onehot = None
        for name, s in excitations.items():
            acc = self._acc[name]
            s = s.detach().double().cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s, np.float64)
            if len(s) != len(labels):
                raise ValueError(f"{name}: {len(s)} excitation rows for {len(labels)} labels")
            if onehot is None:
                # Per-class sums as one K×N one-hot matrix product per block: ~7× faster than np.add.at,
                # which cost ~8% of a forward pass of the embedded model when streaming a dataset.
                onehot = np.zeros((k, len(labels)))
                onehot[labels, np.arange(len(labels))] = 1.0
                counts = np.bincount(labels, minlength=k)[:k]
            acc.count += counts
            if s.ndim == 2:
                acc.total += onehot @ s
                acc.total_sq += onehot @ (s * s)
            else:
                np.add.at(acc.total, labels, s)
                np.add.at(acc.total_sq, labels, s * s)
            if s.size:
                acc.lo, acc.hi = min(acc.lo, float(s.min())), max(acc.hi, float(s.max()))
                if acc.lo <= 0 or acc.hi > 1:  # a sigmoid gate never gets here: no counting on the common path
                    acc.outside += [(s < 0).sum(), (s == 0).sum(), (s > 1).sum()]

    # ----------------------------------------------------------------- per class
    def mean(self, block: str) -> np.ndarray:
        """Return the K×C per-class mean of s (NaN for classes with no images)."""
        acc = self._acc[block]
        with np.errstate(invalid="ignore", divide="ignore"):
            return acc.total / acc.count[:, None]

    def std(self, block: str) -> np.ndarray:
        """Return the K×C per-class standard deviation of s (population std)."""
        acc = self._acc[block]
        with np.errstate(invalid="ignore", divide="ignore"):
            m = acc.total / acc.count[:, None]
            return np.sqrt(np.maximum(acc.total_sq / acc.count[:, None] - m * m, 0.0))

    def overall_mean(self, block: str) -> np.ndarray:
        """Return the C-vector mean of s over all images (the paper's "all" line)."""
        acc = self._acc[block]
        return acc.total.sum(0) / max(acc.count.sum(), 1)

    def overall_std(self, block: str) -> np.ndarray:
        """Return the C-vector std of s across all images."""
        acc = self._acc[block]
        n = max(acc.count.sum(), 1)
        m = acc.total.sum(0) / n
        return np.sqrt(np.maximum(acc.total_sq.sum(0) / n - m * m, 0.0))

    # ----------------------------------------------------------------- per block
    def class_specificity(self, block: str | Sequence[str]) -> float:
        """Return the share of the variance of s that lies between class means (0 = class-agnostic, 1 = s is
        fully determined by the class), pooled over channels: Σ_c SS_between / Σ_c SS_total.

        Given several blocks (e.g. all blocks of a stage), the sums run over all their channels: the same
        index for the stage's excitations taken together.
        """
        names = [block] if isinstance(block, str) else list(block)
        ss_between = ss_total = 0.0
        for name in names:
            acc = self._acc[name]
            present = acc.count > 0
            n = acc.count[present].sum()
            if n == 0:
                continue
            grand = acc.total[present].sum(0) / n
            class_means = acc.total[present] / acc.count[present][:, None]
            ss_between += float((acc.count[present][:, None] * (class_means - grand) ** 2).sum())
            ss_total += float((acc.total_sq[present].sum(0) - n * grand * grand).sum())
        # No images, or s constant over every image (0/0): undefined, never 0 or 1.
        return float(ss_between / ss_total) if ss_total > 1e-12 else float("nan")

    def saturation(self, block: str, threshold: float = SATURATION_THRESHOLD) -> float:
        """Return the paper's saturation: the share of channels whose mean s over all images exceeds
        `threshold` (0.9), i.e. channels the block passes nearly unchanged (SE_5_2 in Fig. 6)."""
        if self._acc[block].count.sum() == 0:
            return float("nan")
        return float((self.overall_mean(block) > threshold).mean())

    def spread(self, block: str) -> float:
        """Return the std of s across images, averaged over channels (how much s varies with the input)."""
        return float(self.overall_std(block).mean())

    def _class_means(self, block: str) -> np.ndarray:
        """Return the K'×C means of the classes that have images."""
        acc = self._acc[block]
        present = acc.count > 0
        return acc.total[present] / acc.count[present][:, None]

    def decorrelation(self, block: str) -> float:
        """Return 1 − the mean pairwise Pearson r between class-mean profiles (vectors over channels).

        0: every class has the same pattern up to scale and offset (the paper's SE_5_3); 1: unrelated
        patterns. Undefined (NaN) with fewer than two classes or a class whose mean profile is flat."""
        means = self._class_means(block)
        if len(means) < 2 or means.shape[1] < 2 or (means.std(1) < 1e-12).any():
            return float("nan")
        r = np.corrcoef(means)
        return float(1.0 - r[np.triu_indices(len(means), 1)].mean())

    def between_class_spread(self, block: str) -> float:
        """Return the std over classes of the class mean of s, averaged over channels (in units of s)."""
        means = self._class_means(block)
        return float(means.std(0).mean()) if len(means) >= 2 else float("nan")

    def near_all_share(self, block: str, tolerance: float = 0.05) -> float:
        """Return the share of (class, channel) means within `tolerance` of the "all" curve (1 = class-agnostic)."""
        means = self._class_means(block)
        if not len(means):
            return float("nan")
        return float((np.abs(means - self.overall_mean(block)) <= tolerance).mean())

    def outside_shares(self, block: str) -> dict[str, float]:
        """Return the shares of all values of s seen at `block` that were below 0, exactly 0 and above 1 (a sigmoid
        gate: all three 0; tanh can go negative, ReLU can be 0 or exceed 1)."""
        acc = self._acc[block]
        values = max(acc.count.sum() * acc.total.shape[1], 1)
        below, zero, above = acc.outside / values
        return {"below_zero": float(below), "zero": float(zero), "above_one": float(above)}

    def min_class_count(self) -> int:
        """Return the number of images of the rarest class (0 when a class has none)."""
        return int(self.count.min()) if len(self.classes) else 0

    def summary(self) -> pd.DataFrame:
        """Return one row per block: depth, s statistics, and the measures of how s depends on the class."""
        rows = []
        for depth, (name, acc) in enumerate(self._acc.items()):
            mean = self.overall_mean(name)
            rows.append({
                "block": name, "depth": depth, "channels": acc.total.shape[1], "images": int(acc.count.sum()),
                "mean_s": float(mean.mean()), "spread": self.spread(name),
                "min_s": acc.lo, "max_s": acc.hi,
                "class_specificity": self.class_specificity(name), "decorrelation": self.decorrelation(name),
                "between_class_spread": self.between_class_spread(name),
                "near_all_share": self.near_all_share(name), "saturation": self.saturation(name),
            })
        # A model without SE blocks gets an empty frame with the same columns.
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def class_means_frame(self, block: str) -> pd.DataFrame:
        """Return a long frame (class, channel, mean, std) for one block, with an "all" class."""
        mean, std = self.mean(block), self.std(block)
        frames = [pd.DataFrame({"class": cls, "channel": np.arange(mean.shape[1]), "mean": mean[k], "std": std[k]})
                  for k, cls in enumerate(self.classes)]
        frames.append(pd.DataFrame({"class": "all", "channel": np.arange(mean.shape[1]),
                                    "mean": self.overall_mean(block), "std": self.overall_std(block)}))
        return pd.concat(frames, ignore_index=True)

    # ----------------------------------------------------------------- files (sevis stats)
    def to_dict(self) -> dict:
        """Return the running sums as JSON-ready data: classes, and per block channels, count (K), total and
        total_sq (K×C), min and max of s (None before any image), the counts of s below 0, at 0 and above 1;
        from_dict reads it back exactly."""
        return {"classes": list(self.classes), "blocks": {
            name: {"channels": int(acc.total.shape[1]), "count": acc.count.tolist(), "total": acc.total.tolist(),
                   "total_sq": acc.total_sq.tolist(), "min": None if np.isinf(acc.lo) else float(acc.lo),
                   "max": None if np.isinf(acc.hi) else float(acc.hi), "outside": acc.outside.tolist()}
            for name, acc in self._acc.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ExcitationStats":
        """Return the statistics `to_dict` wrote (raises KeyError/ValueError on malformed data)."""
        blocks = data["blocks"]
        stats = cls(data["classes"], OrderedDict((name, int(b["channels"])) for name, b in blocks.items()))
        k = len(stats.classes)
        for name, b in blocks.items():
            acc = stats._acc[name]
            c = acc.total.shape[1]
            acc.count = np.asarray(b["count"], np.float64).reshape(k)
            acc.total = np.asarray(b["total"], np.float64).reshape(k, c)
            acc.total_sq = np.asarray(b["total_sq"], np.float64).reshape(k, c)
            acc.lo = np.inf if b.get("min") is None else float(b["min"])
            acc.hi = -np.inf if b.get("max") is None else float(b["max"])
            if "outside" in b:  # files from before the counts leave them at 0
                acc.outside = np.asarray(b["outside"], np.float64).reshape(3)
        return stats


def sample_channels(channels: int, n: int | None, mode: str = "uniform", seed: int = 0) -> np.ndarray:
    """Return channel indices to plot: all, the first n, or n evenly spaced from the first to the last channel
    ("uniform", as the paper's 50 uniformly sampled channels; `seed` is kept for callers and unused)."""
    if n is None or n >= channels or mode == "all":
        return np.arange(channels)
    if mode == "first":
        return np.arange(n)
    if mode == "uniform":
        return np.unique(np.linspace(0, channels - 1, max(n, 1)).round().astype(int))
    raise ValueError(f"unknown channel selection {mode!r}; use all, first or uniform")


def cosine_similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Return the cosine similarity of two excitation vectors."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else float("nan")


def similarity_by_depth(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Return per-block cosine similarity, Pearson correlation and mean |Δs| of two excitation sets."""
    rows = []
    for depth, name in enumerate(a):
        x, y = np.asarray(a[name], np.float64).ravel(), np.asarray(b[name], np.float64).ravel()
        corr = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
        rows.append({"block": name, "depth": depth, "cosine": cosine_similarity(x, y), "pearson": corr,
                     "mean_abs_diff": float(np.abs(x - y).mean())})
    return pd.DataFrame(rows)


# Measures of the depth profile, what each means (figure legends, tables and model cards use these words).
MEASURES: "OrderedDict[str, str]" = OrderedDict([
    ("class_specificity", "between-class share of the variance of s (0 = same s for every class, 1 = s is the class)"),
    ("learned_specificity", "class specificity minus the untrained control's: what training added"),
    ("decorrelation", "1 − mean Pearson r between class-mean profiles (0 = one pattern for all classes)"),
    ("between_class_spread", "std over classes of the class mean of s, averaged over channels (units of s)"),
    ("saturation", "share of channels whose mean s exceeds 0.9 (the block passes them nearly unchanged)"),
    ("mean_s", "mean s over all images and channels"),
])


def depth_measures(stats: ExcitationStats, control: "ExcitationStats | Sequence[ExcitationStats] | None" = None,
                   stages: Mapping[str, int | None] | None = None) -> pd.DataFrame:
    """Return one row per block with the measures of MEASURES (and near_all_share, images per class),
    plus `control_<measure>` columns and learned_specificity when the untrained control's statistics are given.
    `control` may be several controls (one per seed): then `control_<measure>` is their mean (NaN seeds left
    out), `control_<measure>_min` / `_max` their range, `control_seeds` their number, and the learned part uses
    the mean. `stages` maps block → stage (from the recorder's blocks)."""
    frame = stats.summary()
    frame.insert(1, "stage", [(stages or {}).get(b) for b in frame["block"]])
    frame["min_class_images"] = stats.min_class_count()
    controls = [] if control is None else [control] if isinstance(control, ExcitationStats) else list(control)
    if controls:
        summaries = [c.summary().set_index("block") for c in controls]
        for col in CONTROL_MEASURES:
            values = np.array([frame["block"].map(s[col]).to_numpy(np.float64) for s in summaries])
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a block undefined in every seed stays NaN
                frame[f"control_{col}"] = np.nanmean(values, 0)
                if len(controls) > 1:
                    frame[f"control_{col}_min"] = np.nanmin(values, 0)
                    frame[f"control_{col}_max"] = np.nanmax(values, 0)
        frame["control_seeds"] = len(controls)
        frame["learned_specificity"] = frame["class_specificity"] - frame["control_class_specificity"]
    return frame


# The measures the untrained control is summarised by (per seed, then their mean and range).
CONTROL_MEASURES = ("class_specificity", "decorrelation", "between_class_spread", "saturation", "mean_s",
                    "near_all_share")
