"""How often the domain verdict flags each kind of image: held-out garments at each size, and non-garments.

Every image goes through the upload path (PNG bytes → open_image → the model's preprocess), as in the app. The
garments are test-split garments none of which is in the reference set the verdict is fitted on; the
non-garments are sevis.data.outofdomain's KINDS, drawn apart from the verdict's own calibration images.
docs/upload_accuracy.py --domain prints the table; tests/test_domain_rates.py checks it on a small sample.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from sevis.analysis.domain import domain_calibration, domain_features, upload_inputs
from sevis.data.context import ContextConfig, compose, sample_params
from sevis.data.heldout import HELDOUT_SEED, _in_context

SCALES = (0.6, 0.8, 1.0, 1.2, 1.25, 1.4)  # garment sizes (× 28 px) the held-out garments are rendered at
TRAINING_BACKGROUND_SCALES = (0.6, 1.0, 1.4)


def scaled_garments(images_u8: np.ndarray, scale: float, seed: int = HELDOUT_SEED) -> list[Image.Image]:
    """Return 28 px garments put in context on a 36 px canvas at `scale` × 28 px (the reference set's smooth
    backgrounds), as grey PIL images."""
    return [Image.fromarray(a, "L") for a in _in_context(images_u8, 36, scale, seed)]


def garments_on_training_backgrounds(loaded, images_u8: np.ndarray, scale: float, seed: int = HELDOUT_SEED
                                     ) -> list[Image.Image]:
    """Return 28 px garments at `scale` × 28 px on the backgrounds (and flips) of the model card's training
    context, as grey PIL images; the smooth recipe's when the card names none."""
    card = dict((loaded.card.get("dataset") or {}).get("training_context") or {"canvas": 36})
    cfg = ContextConfig.from_dict({**card, "scale": [scale, scale]})
    params = sample_params(len(images_u8), torch.Generator().manual_seed(seed), cfg)
    return [Image.fromarray(a, "L") for a in compose(images_u8, params, cfg).numpy().astype(np.uint8)]


def flag_rates(loaded, image_sets: dict[str, Sequence[Image.Image]]) -> dict[str, float]:
    """Return {set name: share of the set the model's domain verdict flags out of domain} (NaN for an empty set);
    every image goes through the upload path."""
    cal = domain_calibration(loaded)
    if cal is None:
        raise ValueError(f"{loaded.spec} has no domain verdict")
    out: dict[str, float] = {}
    for name, images in image_sets.items():
        if not len(images):
            out[name] = float("nan")
            continue
        features = torch.cat([domain_features(loaded.model, x) for x in upload_inputs(loaded, images)])
        out[name] = float(np.mean([not v.in_domain for v in cal.verdicts(features)]))
    return out
