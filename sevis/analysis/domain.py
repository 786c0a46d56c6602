"""Domain verdict: whether an image looks to the model itself like the garments it was trained on.

The network's own features decide: at the end of the stem and of every stage, each channel's mean, spread and
peak over positions (signed square roots, so no one stage dominates) form one vector per image. A logistic
regression separates the model's training distribution from images that are not garments:

- garments: the bundled reference set, its garments rendered RENDERS_PER_GARMENT times each as the model was
  trained (sizes, flips and backgrounds from its model card's training context, fixed seed), and the same garments
  as the upload path frames them when sent centred on black (uploaded_garments);
- not garments: sevis.data.outofdomain.calibration_negatives() (noise, stripes, words and photographs, each sent
  through the upload path). The sets docs/UPLOAD_ACCURACY.md checks the verdict on are drawn apart from these:
  other seeds, other words, other photographs, and faces, which calibration never sees.

The garments' scores are cross-fitted (each fifth scored by a fit on the other four fifths), so a held-out garment
and a calibration garment are scored alike. The cut is set per garment size: within every SIZE_BINS bin of the
training sizes at most OUT_OF_DOMAIN_PERCENTILE percent of the garments fall below it, so large garments cropped
at the canvas edge are not flagged more than small ones (issue 25). Fitting takes some seconds, so `sevis prepare`
stores a shipped model's fit beside its weights (<weights stem>.domain.npz, tied to VERSION and the SHA-256 of the
weights and the reference set; a stale file is refitted). Calibrations are cached per model object.

Only sevis's own Fashion-MNIST networks (SEResNet and the family networks: forward_stem and stages, and a bundled
reference set) get a verdict; others get None.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

OUT_OF_DOMAIN_PERCENTILE = 2.0  # at most this share (%) of each size bin of the training garments is flagged
SIZE_BINS = (0.7, 0.8, 0.9, 1.1, 1.2, 1.3)  # edges of the garment-size bins (× 28 px) the cut is checked in
RENDERS_PER_GARMENT = 3
RENDER_SEED = 23_000
REGULARISATION = 0.1  # inverse strength (scikit-learn's C) of the logistic regression's L2 penalty
FOLDS = 5
VERSION = 2  # bump when the features, the calibration sets or the fit change
SUFFIX = ".domain.npz"


@dataclass(frozen=True)
class DomainVerdict:
    """Whether one image lies in the model's domain: its score and where that falls among its calibration garments."""

    in_domain: bool
    score: float  # higher = more garment-like; the cut between in and out of domain is at 0
    percentile: float  # share of the calibration garments (0-100) that score lower, i.e. are less garment-like

    def to_dict(self) -> dict:
        # a score of -inf (the network's features overflowed) is written as null: JSON has no infinity
        score = round(self.score, 4) if np.isfinite(self.score) else None
        return {"in_domain": self.in_domain, "score": score, "percentile": round(self.percentile, 2)}

    def note(self) -> str:
        """Return one sentence saying what was measured."""
        if self.in_domain:
            return (f"In domain: the model's features for this image are more garment-like than {self.percentile:.0f}% "
                    "of its reference garments at the sizes and on the backgrounds it was trained with.")
        more = 100.0 - self.percentile
        share = f"{more:.1f}" if more < 100 else "100"
        # Not "the prediction says little": garments flagged at unusual sizes are mostly still classified right
        # (issue 25), so the note says what was measured and leaves the prediction to be read with care.
        return (f"Out of domain: the model's features for this image are less garment-like than {share}% of its "
                "reference garments at the sizes and on the backgrounds it was trained with, so the prediction rests "
                "on features unlike the garments it was checked on; read it with care.")


@dataclass
class DomainCalibration:
    """A fitted verdict: the features' standardisation, the logistic regression's weights, and the calibration
    garments' cross-fitted scores (sorted; the cut is 0)."""

    centre: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    reference_scores: np.ndarray

    def scores(self, features: torch.Tensor | np.ndarray) -> np.ndarray:
        """Return every image's score (higher = more garment-like; below 0: out of domain) from domain_features;
        -inf where a feature is not finite (the network's activations overflowed: nothing like a garment)."""
        f = np.asarray(features, dtype=np.float64)
        finite = np.isfinite(f).all(1)
        with np.errstate(invalid="ignore", over="ignore"):
            raw = ((np.where(finite[:, None], f, 0.0) - self.centre) / self.scale) @ self.weights + self.bias
        return np.where(finite, raw, -np.inf)

    def verdicts(self, features: torch.Tensor | np.ndarray) -> list[DomainVerdict]:
        """Return one verdict per image."""
        out = []
        for s in self.scores(features):
            pct = 100.0 * float(np.searchsorted(self.reference_scores, s, side="left")) / len(self.reference_scores)
            out.append(DomainVerdict(bool(s >= 0.0), float(s), pct))
        return out


def _signed_sqrt(t: torch.Tensor) -> torch.Tensor:
    return t.sign() * t.abs().sqrt()


@torch.inference_mode()
def domain_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return one row per image: for the stem's and every stage's output, each channel's mean, standard deviation
    and maximum over positions (signed square roots), concatenated.

    The stages are run one after the other rather than hooked, so a concurrent forward pass of the same model in
    another session can never leak into these features."""
    parts = []
    h = model.forward_stem(x)
    for stage in [None, *model.stages]:
        if stage is not None:
            h = stage(h)
        flat = h.float().flatten(2)
        mean = flat.mean(2)
        spread = (flat - mean[..., None]).square().mean(2).sqrt()  # over positions; 0 where there is one
        parts += [_signed_sqrt(mean), spread.sqrt(), _signed_sqrt(flat.amax(2))]
    return torch.cat(parts, 1)


def _fit(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=REGULARISATION, max_iter=3000, class_weight="balanced").fit(x, y)


def calibrate(garments: np.ndarray, sizes: np.ndarray, others: np.ndarray) -> DomainCalibration:
    """Return the verdict fitted on the features of garments (with their sizes, × 28 px) and of non-garments; the
    cut leaves at most OUT_OF_DOMAIN_PERCENTILE % of every size bin's cross-fitted garment scores below it."""
    # images whose features overflowed (a model whose gates are unbounded, on stripes or noise) cannot be fitted on
    keep_g, keep_o = np.isfinite(garments).all(1), np.isfinite(others).all(1)
    garments, sizes, others = garments[keep_g], np.asarray(sizes)[keep_g], others[keep_o]
    x = np.concatenate([garments, others]).astype(np.float64)
    y = np.r_[np.ones(len(garments)), np.zeros(len(others))]
    centre = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-9] = 1.0  # a constant feature (a dead channel, random weights) carries no information
    xs = (x - centre) / scale
    folds = np.arange(len(x)) % FOLDS
    held = np.empty(len(x))
    model = _fit(xs, y)
    for k in range(FOLDS):
        # each fold starts from the full fit (warm start): the same optimum, reached in a fifth of the iterations
        fold = copy.deepcopy(model).set_params(warm_start=True).fit(xs[folds != k], y[folds != k])
        held[folds == k] = fold.decision_function(xs[folds == k])
    g = held[:len(garments)]
    bins = np.digitize(np.asarray(sizes), SIZE_BINS)
    cut = min(float(np.percentile(g[bins == b], OUT_OF_DOMAIN_PERCENTILE)) for b in np.unique(bins))
    return DomainCalibration(centre, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]) - cut,
                             np.sort(g - cut))


def training_renders(loaded, per_garment: int = RENDERS_PER_GARMENT, seed: int = RENDER_SEED
                     ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Return (model inputs, labels, sizes): the reference garments rendered per_garment times each as the model was
    trained (its card's training context: sizes, flips, backgrounds), normalised as in training; none (empty) when
    the card names no training context."""
    from sevis.data.context import ContextConfig, compose, sample_params
    from sevis.data.fashion_mnist import load_reference_set
    card = (loaded.card.get("dataset") or {}).get("training_context")
    if not card or per_garment < 1:
        return torch.empty(0, 1, loaded.input_size, loaded.input_size), np.empty(0, int), np.empty(0)
    ref = load_reference_set(variant="centred")
    cfg = ContextConfig.from_dict(card)
    images = np.concatenate([ref.images] * per_garment)
    params = sample_params(len(images), torch.Generator().manual_seed(seed), cfg)
    mean, std = loaded.normalisation
    x = compose(images, params, cfg).float().div(255.0).sub(mean).div(std)[:, None]
    return x, np.concatenate([ref.labels] * per_garment), params.scale.numpy().astype(np.float64)


def uploaded_garments(loaded) -> torch.Tensor:
    """Return the model inputs the upload path makes of the reference garments sent as a user might: each centred on
    black at 112 px (sevis.data.heldout's "black-112"), framed by the model's preprocess (cropped to the garment and
    fitted, for in-context models): garments too, though a little larger than most training garments."""
    from sevis.data.fashion_mnist import load_reference_set
    from sevis.data.heldout import render
    return torch.stack([loaded.preprocess(im.convert("RGB")) for im in render("black-112", load_reference_set(
        variant="centred"))])


def upload_inputs(loaded, images: Sequence[Image.Image], batch_size: int = 250) -> list[torch.Tensor]:
    """Return the model-input batches of `images`, each sent as PNG bytes through open_image and the preprocess."""
    from sevis.data.heldout import png_bytes
    from sevis.data.preprocess import open_image
    return [torch.stack([loaded.preprocess(open_image(png_bytes(im))) for im in images[i:i + batch_size]])
            for i in range(0, len(images), batch_size)]


def features_of(model: torch.nn.Module, batches: Sequence[torch.Tensor]) -> np.ndarray:
    """Return domain_features of every batch, stacked."""
    return torch.cat([domain_features(model, b) for b in batches]).numpy()


def domain_path(weights: Path) -> Path:
    """Return where the stored fit of `weights` lives: beside it and its model card."""
    return weights.with_name(weights.stem + SUFFIX)


def _fingerprint(loaded) -> dict:
    from sevis.analysis.precomputed import file_sha256, weights_sha256
    from sevis.data.fashion_mnist import REFERENCE_PATHS
    return {"version": VERSION, "weights_sha256": weights_sha256(loaded),
            "reference_sha256": file_sha256(REFERENCE_PATHS[loaded.data_variant])}


def store_calibration(loaded) -> Path | None:
    """Fit the verdict of a shipped model and write it beside its weights; return the file (None: nothing to store,
    the model has no verdict or no shipped weights file)."""
    from sevis.analysis.precomputed import weights_file
    weights = weights_file(loaded)
    cal = None if weights is None else _fit_calibration(loaded)  # no file to store beside: no fit
    if cal is None:
        return None
    path = domain_path(weights)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, fingerprint=np.asarray(json.dumps(_fingerprint(loaded))), centre=cal.centre,
                            scale=cal.scale, weights=cal.weights, bias=np.asarray(cal.bias),
                            reference_scores=cal.reference_scores)
    os.replace(tmp, path)
    return path


def _stored_calibration(loaded) -> DomainCalibration | None:
    """Return the stored fit when it exists and matches the model and the reference set; else None."""
    from sevis.analysis.precomputed import weights_file
    weights = weights_file(loaded)
    if weights is None or not domain_path(weights).is_file():
        return None
    try:
        with np.load(domain_path(weights), allow_pickle=False) as data:
            if json.loads(str(data["fingerprint"])) != _fingerprint(loaded):
                return None
            return DomainCalibration(data["centre"], data["scale"], data["weights"], float(data["bias"]),
                                     data["reference_scores"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged: fitted afresh


def _has_verdict(loaded) -> bool:
    """Return whether sevis gives the model a verdict: one of its own Fashion-MNIST networks (a reference set, and a
    stem and stages to read the features from)."""
    model = loaded.model
    return loaded.data_variant is not None and hasattr(model, "stages") and hasattr(model, "forward_stem")


def _fit_calibration(loaded) -> DomainCalibration | None:
    from sevis.analysis.inference import split_batches
    from sevis.data.outofdomain import calibration_negatives
    from sevis.errors import DatasetError
    if not _has_verdict(loaded):
        return None
    try:
        ref = loaded.reference_set()
    except DatasetError:
        return None
    renders, _, sizes = training_renders(loaded)
    framed = uploaded_garments(loaded)
    garments = features_of(loaded.model, [x for x, _ in split_batches(loaded, ref)] + list(renders.split(250))
                           + list(framed.split(250)))
    # The negatives are decoded images already: the preprocess is the whole upload path from here (a PNG round
    # trip is lossless, and encoding the large photos would take most of the fit's time).
    negatives = calibration_negatives()
    others = features_of(loaded.model, [torch.stack([loaded.preprocess(im) for im in negatives[i:i + 250]])
                                        for i in range(0, len(negatives), 250)])
    return calibrate(garments, np.r_[np.ones(len(ref)), sizes, np.ones(len(framed))], others)


_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, DomainCalibration]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def domain_calibration(loaded) -> DomainCalibration | None:
    """Return the model's verdict: its stored fit where current, else fitted (once per model) on its reference set,
    its training renders and the calibration non-garments; None when sevis has no reference set for it or cannot
    split it into stages."""
    if not _has_verdict(loaded):
        return None
    with _LOCK:
        if loaded.model in _CACHE:
            return _CACHE[loaded.model]
        cal = _stored_calibration(loaded) or _fit_calibration(loaded)
        if cal is not None:
            _CACHE[loaded.model] = cal
        return cal


def domain_verdicts(loaded, images: Sequence[Image.Image] | torch.Tensor) -> list[DomainVerdict] | None:
    """Return a verdict per image (PIL images, or a batch already preprocessed); None for models without one."""
    cal = domain_calibration(loaded)
    if cal is None:
        return None
    x = images if isinstance(images, torch.Tensor) else torch.stack([loaded.preprocess(im) for im in images])
    return cal.verdicts(domain_features(loaded.model, x))


def domain_verdict(loaded, image: Image.Image) -> DomainVerdict | None:
    """Return the verdict on one image (for the Live view's note); None for models without one."""
    verdicts = domain_verdicts(loaded, [image])
    return verdicts[0] if verdicts else None
