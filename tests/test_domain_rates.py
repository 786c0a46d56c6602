"""The domain verdict's flag rates (docs/upload_accuracy.py --domain) equal the verdicts one by one; the renders it
is fitted on follow the model card; its calibration images are apart from the images it is checked on."""
from __future__ import annotations

import numpy as np
import pytest

from sevis.analysis.domain import domain_verdicts, training_renders, upload_inputs
from sevis.analysis.domain_rates import flag_rates, garments_on_training_backgrounds, scaled_garments
from sevis.analysis.inference import split_batches
from sevis.data import outofdomain
from sevis.data.heldout import heldout_split


def test_flag_rates_match_the_verdicts_one_by_one(embedded):
    garments = heldout_split(10)
    sets = {"1.4": scaled_garments(garments.images, 1.4), "1.0": scaled_garments(garments.images, 1.0),
            "1.4 trained": garments_on_training_backgrounds(embedded, garments.images, 1.4),
            "stripes": outofdomain.stripes(sizes=(96,))[::8], "text": outofdomain.text()[::20], "none": []}
    rates = flag_rates(embedded, sets)
    for name, images in sets.items():
        if not images:
            assert rates[name] != rates[name]  # NaN: nothing measured, said as "–" in the table
            continue
        x = upload_inputs(embedded, images)
        direct = [not v.in_domain for batch in x for v in domain_verdicts(embedded, batch)]
        assert rates[name] == pytest.approx(np.mean(direct)), name
    assert rates["stripes"] == 1.0  # stripes stay out (tests/test_domain.py: every stripe image)


def test_training_renders_follow_the_model_card(embedded):
    x, labels, sizes = training_renders(embedded, per_garment=1)
    ref = embedded.reference_set()
    assert x.shape == (len(ref), 1, embedded.input_size, embedded.input_size)
    assert np.array_equal(labels, ref.labels)
    lo, hi = embedded.card["dataset"]["training_context"]["scale"]
    assert sizes.min() >= lo and sizes.max() <= hi and sizes.max() - sizes.min() > 0.5 * (hi - lo)
    again, _, _ = training_renders(embedded, per_garment=1)
    assert bool((x == again).all())  # seeded
    # rendered at random sizes, not copied from the scale-1 reference set
    ref_x = next(split_batches(embedded, ref, batch_size=len(ref)))[0]
    assert not bool((x - ref_x).abs().lt(1e-4).all())


def test_garments_on_training_backgrounds_take_the_cards_size():
    from sevis.models.zoo import load_model
    loaded = load_model("embedded")
    garments = heldout_split(10)
    small, large = (np.asarray(garments_on_training_backgrounds(loaded, garments.images, s)[0]) for s in (0.6, 1.4))
    assert small.shape == large.shape == (36, 36)
    # the garment covers more of the canvas at 1.4×: the share of pixels brighter than the background's brightest
    assert (large > 200).mean() > (small > 200).mean()


def test_the_non_garment_sets_are_fixed_and_apart_from_the_calibration_images():
    assert len(outofdomain.stripes(sizes=(36,))) == 8 * 4 * 2  # periods × orientations × polarities
    a, b = outofdomain.noise(6), outofdomain.noise(6)
    assert all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(a, b))
    texts = outofdomain.text(words=("hello",), sizes=(16, 40))
    assert [im.size[1] > 12 for im in texts] == [True, True] and texts[0].size[0] < texts[1].size[0]
    with pytest.raises(KeyError):
        outofdomain.render_kind("clouds")
    # what the verdict is fitted on shares no word and no photograph with what it is checked on
    assert not set(outofdomain.WORDS) & set(outofdomain.CALIBRATION_WORDS)
    from sevis.data.photos import TRAINING_PHOTOS
    assert not {f.name for f in outofdomain.photo_files()} & {name for _, name in TRAINING_PHOTOS}
    fitted = outofdomain.calibration_negatives()
    checked = outofdomain.noise() + outofdomain.stripes() + outofdomain.text() + outofdomain.photos()
    pixels = {np.asarray(im).tobytes() for im in checked}
    assert not any(np.asarray(im).tobytes() in pixels for im in fitted)
