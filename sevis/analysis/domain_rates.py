"""How often the domain verdict flags each kind of image: held-out garments at each size, and non-garments.

Every image goes through the upload path (PNG bytes → open_image → the model's preprocess), as in the app.
Besides the shipped verdict (sevis.analysis.domain), two recalibrations over the training distribution are
measured for comparison (issue 25): the bundled reference garments rendered as the model was trained (random
size, flips and backgrounds from its model card, fixed seeds) join the reference set, and per-stage distances
are fitted and cross-fitted on all of them; the stages' standardised distances are then either summed (as the
shipped verdict does) or their largest is taken, with the stem's pooled output as one more stage.
docs/upload_accuracy.py --domain prints the table; tests/test_domain_rates.py checks it on a small sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from sevis.analysis.domain import FOLDS, OUT_OF_DOMAIN_PERCENTILE, _fit, _nearest_class, domain_calibration
from sevis.data.context import ContextConfig, compose, sample_params
from sevis.data.heldout import HELDOUT_SEED, _in_context, png_bytes
from sevis.data.preprocess import open_image

SCALES = (0.6, 0.8, 1.0, 1.2, 1.25, 1.4)  # garment sizes (× 28 px) the held-out garments are rendered at
RENDER_SEED = 23_000  # the training-distribution renders of the reference garments
RENDERS_PER_GARMENT = 3


def scaled_garments(images_u8: np.ndarray, scale: float, seed: int = HELDOUT_SEED) -> list[Image.Image]:
    """Return 28 px garments put in context on a 36 px canvas at `scale` × 28 px, as grey PIL images."""
    return [Image.fromarray(a, "L") for a in _in_context(images_u8, 36, scale, seed)]


def upload_inputs(loaded, images: Sequence[Image.Image], batch_size: int = 250) -> list[torch.Tensor]:
    """Return the model-input batches of `images`, each sent as PNG bytes through open_image and the preprocess."""
    return [torch.stack([loaded.preprocess(open_image(png_bytes(im))) for im in images[i:i + batch_size]])
            for i in range(0, len(images), batch_size)]


@torch.inference_mode()
def pooled_features(model: torch.nn.Module, batches: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Return the stem's and every stage's output averaged over positions (one N×C tensor each, stem first)."""
    parts = []
    for x in batches:
        h = model.forward_stem(x)
        out = [h.float().mean((2, 3))]
        for stage in model.stages:
            h = stage(h)
            out.append(h.float().mean((2, 3)))
        parts.append(out)
    return [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]


@dataclass
class Recalibration:
    """Per-stage class means and precisions fitted on reference + training-distribution renders, the median and
    spread of each stage's cross-fitted minus distances, and the cut: the (100 - OUT_OF_DOMAIN_PERCENTILE)-th
    percentile of the cross-fitted combined standardised distances (higher = less garment-like)."""

    fits: list[tuple[torch.Tensor, torch.Tensor, float, float]]
    how: str  # "sum" or "max" over stages
    stages: tuple[int, ...]  # indices into pooled_features' list
    cut: float

    def distances(self, features: Sequence[torch.Tensor]) -> np.ndarray:
        """Return each image's combined standardised distance (higher = less garment-like)."""
        z = torch.stack([(c - _nearest_class(features[s], mu, prec)) / sp
                         for s, (mu, prec, c, sp) in zip(self.stages, self.fits)])
        return (z.sum(0) if self.how == "sum" else z.max(0).values).numpy()

    def flagged(self, features: Sequence[torch.Tensor]) -> np.ndarray:
        """Return one bool per image: out of domain."""
        return self.distances(features) > self.cut


def training_renders(loaded, per_garment: int = RENDERS_PER_GARMENT, seed: int = RENDER_SEED
                     ) -> tuple[torch.Tensor, np.ndarray]:
    """Return (model inputs, labels): the bundled reference garments rendered per_garment times each as the model
    was trained (its card's training context: sizes, flips, backgrounds), normalised as in training."""
    from sevis.data.fashion_mnist import load_reference_set
    ref = load_reference_set(variant="centred")
    card = (loaded.card.get("dataset") or {}).get("training_context")
    if not card:
        raise ValueError(f"{loaded.spec}'s model card names no training context to render garments in")
    cfg = ContextConfig.from_dict(card)
    images = np.concatenate([ref.images] * per_garment)
    params = sample_params(len(images), torch.Generator().manual_seed(seed), cfg)
    mean, std = loaded.normalisation
    x = compose(images, params, cfg).float().div(255.0).sub(mean).div(std)[:, None]
    return x, np.concatenate([ref.labels] * per_garment)


def recalibrate(features: Sequence[torch.Tensor], labels: np.ndarray, classes: int, how: str,
                stages: tuple[int, ...]) -> Recalibration:
    """Return a Recalibration fitted on the given features (cross-fitted in FOLDS folds for the cut)."""
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    folds = torch.arange(len(y)) % FOLDS
    fits, held_z = [], []
    for s in stages:
        f = features[s]
        held = torch.empty(len(y), dtype=torch.float64)
        for k in range(FOLDS):
            mu, prec = _fit(f[folds != k], y[folds != k], classes)
            held[folds == k] = _nearest_class(f[folds == k], mu, prec)  # minus the distance, as the verdict does
        centre = float(held.median())
        spread = float((held - centre).abs().median() * 1.4826) or 1.0
        fits.append((*_fit(f, y, classes), centre, spread))
        held_z.append((centre - held) / spread)
    z = torch.stack(held_z)
    combined = (z.sum(0) if how == "sum" else z.max(0).values).numpy()
    return Recalibration(fits, how, stages, float(np.percentile(combined, 100 - OUT_OF_DOMAIN_PERCENTILE)))


def recalibrations(loaded) -> dict[str, Recalibration]:
    """Return the two recalibrations over the training distribution (label -> Recalibration), fitted on the
    reference set plus training_renders."""
    from sevis.analysis.inference import split_batches
    ref = loaded.reference_set()
    ref_batches = [x for x, _ in split_batches(loaded, ref)]
    renders, render_labels = training_renders(loaded)
    batches = ref_batches + list(renders.split(250))
    features = pooled_features(loaded.model, batches)
    labels = np.concatenate([ref.labels, render_labels])
    classes = len(loaded.classes)
    stages = tuple(range(1, len(features)))
    return {"recalibrated, sum over stages": recalibrate(features, labels, classes, "sum", stages),
            "recalibrated, largest over stem and stages": recalibrate(features, labels, classes, "max",
                                                                       (0,) + stages)}


def flag_rates(loaded, image_sets: dict[str, Sequence[Image.Image]], with_recalibrations: bool = True
               ) -> dict[str, dict[str, float]]:
    """Return {verdict: {set name: share of the set flagged out of domain}} for the shipped verdict ("shipped")
    and, with_recalibrations, the two recalibrations; every image goes through the upload path."""
    cal = domain_calibration(loaded)
    if cal is None:
        raise ValueError(f"{loaded.spec} has no domain verdict")
    verdicts = {"shipped": cal}
    if with_recalibrations:
        verdicts.update(recalibrations(loaded))
    out: dict[str, dict[str, float]] = {name: {} for name in verdicts}
    for set_name, images in image_sets.items():
        features = pooled_features(loaded.model, upload_inputs(loaded, images)) if len(images) else []
        for name, v in verdicts.items():
            if not features:
                out[name][set_name] = float("nan")
                continue
            flagged = (~np.array([d.in_domain for d in v.verdicts(features[1:])])
                       if name == "shipped" else v.flagged(features))
            out[name][set_name] = float(flagged.mean())
    return out
