"""The domain verdict's flag rates (docs/upload_accuracy.py --domain): the same as verdict by verdict, and the
recalibration code reproduces the shipped calibration when fitted on the same reference set."""
from __future__ import annotations

import numpy as np
import pytest

from sevis.analysis.domain import OUT_OF_DOMAIN_PERCENTILE, calibrate, domain_verdicts
from sevis.analysis.domain_rates import (
    flag_rates,
    pooled_features,
    recalibrate,
    scaled_garments,
    training_renders,
    upload_inputs,
)
from sevis.analysis.inference import split_batches
from sevis.data import outofdomain
from sevis.data.heldout import heldout_split


def test_flag_rates_match_the_verdicts_one_by_one(embedded):
    garments = heldout_split(10)
    sets = {"1.4": scaled_garments(garments.images, 1.4), "1.0": scaled_garments(garments.images, 1.0),
            "stripes": outofdomain.stripes(sizes=(96,))[::8], "text": outofdomain.text()[::20], "none": []}
    rates = flag_rates(embedded, sets, with_recalibrations=False)["shipped"]
    for name, images in sets.items():
        if not images:
            assert rates[name] != rates[name]  # NaN: nothing measured, said as "–" in the table
            continue
        x = upload_inputs(embedded, images)
        direct = [not v.in_domain for batch in x for v in domain_verdicts(embedded, batch)]
        assert rates[name] == pytest.approx(np.mean(direct)), name
    assert rates["stripes"] == 1.0  # stripes stay out (tests/test_domain.py: every stripe image)
    assert rates["1.4"] > rates["1.0"]  # the shipped verdict's known bias against large garments (issue 25)


def test_recalibration_on_the_reference_set_is_the_shipped_calibration(embedded):
    # a fifth of the reference set (20 garments per class) keeps it cheap; calibrate() is what the verdict runs
    ref = embedded.reference_set()
    pick = np.concatenate([np.flatnonzero(ref.labels == c)[:20] for c in range(len(ref.classes))])
    x = next(split_batches(embedded, ref, batch_size=len(ref)))[0][pick]
    labels = ref.labels[pick]
    features = pooled_features(embedded.model, [x])
    cal = calibrate(features[1:], labels, len(embedded.classes))
    recal = recalibrate(features, labels, len(embedded.classes), "sum", tuple(range(1, len(features))))
    for (_, _, centre, spread), stage in zip(recal.fits, cal.stages):
        assert centre == pytest.approx(stage.centre) and spread == pytest.approx(stage.spread)
    # the cut sits where the shipped verdict's does: OUT_OF_DOMAIN_PERCENTILE % of the cross-fitted scores beyond it
    assert recal.cut == pytest.approx(-np.percentile(cal.reference_scores, OUT_OF_DOMAIN_PERCENTILE), rel=1e-9)
    # and the fitted distances are the shipped scores with the sign turned
    assert np.allclose(recal.distances(features), -cal.scores(features[1:]), rtol=1e-9, atol=1e-9)


def test_training_renders_follow_the_model_card(embedded):
    x, labels = training_renders(embedded, per_garment=1)
    ref = embedded.reference_set()
    assert x.shape == (len(ref), 1, embedded.input_size, embedded.input_size)
    assert np.array_equal(labels, ref.labels)
    again, _ = training_renders(embedded, per_garment=1)
    assert bool((x == again).all())  # seeded
    # rendered at random sizes 0.6-1.4, not copied from the scale-1 reference set
    ref_x = next(split_batches(embedded, ref, batch_size=len(ref)))[0]
    assert not bool((x - ref_x).abs().lt(1e-4).all())


def test_the_non_garment_sets_are_fixed():
    assert len(outofdomain.stripes(sizes=(36,))) == 8 * 4 * 2  # periods × orientations × polarities
    a, b = outofdomain.noise(6), outofdomain.noise(6)
    assert all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(a, b))
    texts = outofdomain.text(words=("hello",), sizes=(16, 40))
    assert [im.size[1] > 12 for im in texts] == [True, True] and texts[0].size[0] < texts[1].size[0]
    with pytest.raises(KeyError):
        outofdomain.render_kind("clouds")
