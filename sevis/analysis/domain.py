"""Domain verdict: how garment-like an image looks to the model itself, as a percentile of the reference set.

The score is computed from the network: at the end of every stage the features are averaged over positions,
and each stage's squared Mahalanobis distance to the nearest class mean of the reference set (tied covariance,
shrunk towards its diagonal level) is standardised by its spread over the reference set; the score is minus
the sum over stages (higher = more garment-like). The reference set's own scores are cross-fitted (each fifth
scored by means and covariances fitted on the other four fifths), so that a held-out garment and a reference
garment are scored alike. An image is out of domain when it scores below OUT_OF_DOMAIN_PERCENTILE percent of
the reference set. Calibrations are cached per model object.

Only sevis's own Fashion-MNIST networks (SEResNet and the family networks: forward_stem and stages, and a
bundled reference set) get a verdict; others get None.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

OUT_OF_DOMAIN_PERCENTILE = 1.0  # below this percentile of the reference set's scores: out of domain
SHRINKAGE = 0.1  # share of each covariance replaced by its mean variance times the identity
FOLDS = 5


@dataclass(frozen=True)
class DomainVerdict:
    """Whether one image lies in the model's domain: its score and where that falls in the reference set."""

    in_domain: bool
    score: float  # higher = more garment-like; the reference set's median is about 0
    percentile: float  # share of the reference set (0-100) that scores lower, i.e. is less garment-like

    def to_dict(self) -> dict:
        return {"in_domain": self.in_domain, "score": round(self.score, 4), "percentile": round(self.percentile, 2)}

    def note(self) -> str:
        """Return one sentence saying what was measured."""
        more = 100.0 - self.percentile
        if self.in_domain:
            return (f"In domain: the model's features for this image are more garment-like than {self.percentile:.0f}% "
                    "of its reference set.")
        share = f"{more:.1f}" if more < 100 else "100"
        # Not "the prediction says little": garments flagged at unusual sizes are mostly still classified right
        # (issue 25), so the note says what was measured and leaves the prediction to be read with care.
        return (f"Out of domain: the model's features for this image are less garment-like than {share}% of its "
                "reference set, so the prediction rests on features unlike the garments it was checked on; read it "
                "with care.")


@dataclass
class _Stage:
    means: torch.Tensor  # K×C class means
    precision: torch.Tensor  # C×C
    centre: float  # median and spread of this stage's (cross-fitted) reference scores
    spread: float


@dataclass
class DomainCalibration:
    """A model's per-stage class means and precisions, and its reference set's cross-fitted scores (sorted)."""

    stages: list[_Stage]
    reference_scores: np.ndarray

    def scores(self, features: Sequence[torch.Tensor]) -> np.ndarray:
        """Return the score of every image from its per-stage pooled features."""
        total = torch.zeros(len(features[0]), dtype=torch.float64)
        for stage, f in zip(self.stages, features):
            total += (_nearest_class(f, stage.means, stage.precision) - stage.centre) / stage.spread
        return total.numpy()

    def verdicts(self, features: Sequence[torch.Tensor]) -> list[DomainVerdict]:
        """Return one verdict per image."""
        out = []
        for s in self.scores(features):
            pct = 100.0 * float(np.searchsorted(self.reference_scores, s, side="left")) / len(self.reference_scores)
            out.append(DomainVerdict(pct >= OUT_OF_DOMAIN_PERCENTILE, float(s), pct))
        return out


def _nearest_class(f: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Return minus the squared Mahalanobis distance of each row of f to its nearest class mean."""
    d = f.double()[:, None, :] - means[None]  # N×K×C
    return -torch.einsum("nkc,cd,nkd->nk", d, precision, d).min(1).values


def _fit(f: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    f = f.double()
    present = [c for c in range(classes) if bool((labels == c).any())]
    means = torch.stack([f[labels == c].mean(0) for c in present])
    centred = f - means[torch.tensor([present.index(int(c)) for c in labels])]
    cov = centred.T @ centred / max(1, len(f))
    level = float(cov.diagonal().mean()) or 1.0
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * level * torch.eye(cov.shape[0], dtype=cov.dtype)
    return means, torch.linalg.pinv(cov, hermitian=True)


@torch.inference_mode()
def stage_features(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Return the output of every stage of an SEResNet, averaged over positions (one N×C tensor per stage).

    The stages are run one after the other rather than hooked, so a concurrent forward pass of the same
    model in another session can never leak into these features."""
    out: list[torch.Tensor] = []
    h = model.forward_stem(x)
    for stage in model.stages:
        h = stage(h)
        out.append(h.float().mean((2, 3)))
    return out


def calibrate(features: Sequence[torch.Tensor], labels: np.ndarray, classes: int) -> DomainCalibration:
    """Return the calibration from the reference set's per-stage features and labels."""
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    folds = torch.arange(len(y)) % FOLDS
    stages, total = [], torch.zeros(len(y), dtype=torch.float64)
    for f in features:
        held = torch.empty(len(y), dtype=torch.float64)
        for k in range(FOLDS):
            means, precision = _fit(f[folds != k], y[folds != k], classes)
            held[folds == k] = _nearest_class(f[folds == k], means, precision)
        means, precision = _fit(f, y, classes)
        centre = float(held.median())
        spread = float((held - centre).abs().median() * 1.4826) or 1.0  # robust: a few odd garments do not set it
        stages.append(_Stage(means, precision, centre, spread))
        total += (held - centre) / spread
    return DomainCalibration(stages, np.sort(total.numpy()))


_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, DomainCalibration]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def domain_calibration(loaded) -> DomainCalibration | None:
    """Return the model's calibration on its bundled reference set (computed once per model); None when sevis
    has no reference set for it or cannot split it into stages."""
    from sevis.analysis.inference import split_batches
    from sevis.errors import DatasetError
    if loaded.data_variant is None or not (hasattr(loaded.model, "stages") and hasattr(loaded.model, "forward_stem")):
        return None
    with _LOCK:
        if loaded.model in _CACHE:
            return _CACHE[loaded.model]
        try:
            ref = loaded.reference_set()
        except DatasetError:
            return None
        parts = [stage_features(loaded.model, x) for x, _ in split_batches(loaded, ref)]
        features = [torch.cat([p[s] for p in parts]) for s in range(len(parts[0]))]
        cal = calibrate(features, ref.labels, len(loaded.classes))
        _CACHE[loaded.model] = cal
        return cal


def domain_verdicts(loaded, images: Sequence[Image.Image] | torch.Tensor) -> list[DomainVerdict] | None:
    """Return a verdict per image (PIL images, or a batch already preprocessed); None for models without one."""
    cal = domain_calibration(loaded)
    if cal is None:
        return None
    x = images if isinstance(images, torch.Tensor) else torch.stack([loaded.preprocess(im) for im in images])
    return cal.verdicts(stage_features(loaded.model, x))


def domain_verdict(loaded, image: Image.Image) -> DomainVerdict | None:
    """Return the verdict on one image (for the Live view's note); None for models without one."""
    verdicts = domain_verdicts(loaded, [image])
    return verdicts[0] if verdicts else None
