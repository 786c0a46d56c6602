"""The domain verdict: fitted on the training distribution against non-garments; garments in at every training size,
noise, stripes and photos out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sevis.analysis.domain import (
    OUT_OF_DOMAIN_PERCENTILE,
    RENDERS_PER_GARMENT,
    SIZE_BINS,
    calibrate,
    domain_calibration,
    domain_features,
    domain_verdicts,
)
from sevis.analysis.images import sample_photos
from sevis.analysis.inference import split_batches
from sevis.data.heldout import heldout_split, upload_batches
from sevis.data.preprocess import open_image
from sevis.models.zoo import load_model


def test_calibration_on_the_reference_set(embedded):
    cal = domain_calibration(embedded)
    assert domain_calibration(embedded) is cal  # cached per model
    ref = embedded.reference_set()
    # the reference set, its garments rendered as in training and as uploads frame them, cross-fitted; the cut (0)
    # lies where the stored scores put it: at most OUT_OF_DOMAIN_PERCENTILE % of the calibration garments below it
    assert len(cal.reference_scores) == len(ref) * (2 + RENDERS_PER_GARMENT)
    assert np.all(np.diff(cal.reference_scores) >= 0)
    assert np.mean(cal.reference_scores < 0) <= OUT_OF_DOMAIN_PERCENTILE / 100
    x, _ = next(split_batches(embedded, ref, batch_size=len(ref)))
    verdicts = cal.verdicts(domain_features(embedded.model, x))
    assert 0.95 <= np.mean([v.in_domain for v in verdicts]) <= 1.0
    # the percentile is the share of calibration scores below the image's score, and the cut is 0
    v = verdicts[0]
    assert v.percentile == pytest.approx(100 * np.mean(cal.reference_scores < v.score))
    assert v.in_domain == (v.score >= 0)
    # the score is the logistic regression's, recomputed by hand from the features
    f = domain_features(embedded.model, x[:3]).numpy()
    assert np.allclose(cal.scores(f), ((f - cal.centre) / cal.scale) @ cal.weights + cal.bias)


def test_the_cut_holds_in_every_size_bin():
    # two features: the first separates garments from the rest, the second shifts the largest garments towards them
    rng = np.random.default_rng(0)
    sizes = rng.uniform(0.6, 1.4, 2000)
    garments = np.c_[rng.normal(2.0 - 2.0 * (sizes > 1.3), 1.0), rng.normal(0, 1, 2000)]
    others = np.c_[rng.normal(-3.0, 1.0, 400), rng.normal(0, 1, 400)]
    cal = calibrate(garments, sizes, others)
    flagged = cal.scores(garments) < 0
    bins = np.digitize(sizes, SIZE_BINS)
    shares = [flagged[bins == b].mean() for b in np.unique(bins)]
    # in-sample the fit can only do better than its cross-fitted scores; the largest garments are not sacrificed
    assert max(shares) <= OUT_OF_DOMAIN_PERCENTILE / 100 + 0.02, shares
    assert (cal.scores(others) < 0).mean() >= 0.5


@pytest.mark.parametrize("condition", ["context-36", "photo-144", "black-112", "white-112"])
def test_held_out_garments_are_in_domain(embedded, condition):
    garments = heldout_split(200)
    verdicts = [v for x, _ in upload_batches(embedded, condition, garments) for v in domain_verdicts(embedded, x)]
    assert np.mean([v.in_domain for v in verdicts]) >= 0.9


def _noise() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    grey = [Image.fromarray(rng.integers(0, 256, (s, s), dtype=np.uint8)).convert("RGB") for s in (28, 36, 64, 300)]
    return grey + [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")]


def _stripes() -> list[Image.Image]:
    yy, xx = np.mgrid[:96, :96]
    return [Image.fromarray(((t // p) % 2 * 255).astype(np.uint8)).convert("RGB")
            for p in (1, 3, 6, 12) for t in (yy, xx, xx + yy)]


@pytest.mark.parametrize("images", [_noise, _stripes], ids=["noise", "stripes"])
def test_noise_and_stripes_are_out_of_domain(embedded, images):
    verdicts = domain_verdicts(embedded, images())
    assert not any(v.in_domain for v in verdicts)
    for v in verdicts:
        note = v.note()
        assert note.startswith("Out of domain") and "reference garments" in note and "nan" not in note


def test_photos_of_a_cat_a_person_and_coffee_are_out_of_domain(embedded):
    photos = sample_photos()
    wanted = [n for n in ("chelsea (cat)", "astronaut", "coffee (cup)") if n in photos]
    if not wanted:
        pytest.skip("scikit-image's sample photos are not installed")
    verdicts = domain_verdicts(embedded, [open_image(photos[n], n) for n in wanted])
    assert [v.in_domain for v in verdicts] == [False] * len(wanted), dict(zip(wanted, verdicts))


def test_models_without_a_reference_set_get_no_verdict():
    assert domain_verdicts(load_model("timm:seresnet18", pretrained=False), [Image.new("RGB", (64, 64))]) is None


def test_verdict_as_json_and_random_weights_read_as_sentences(embedded_random):
    torch.manual_seed(0)
    v = domain_verdicts(embedded_random, _noise()[:1])[0]
    d = v.to_dict()
    assert set(d) == {"in_domain", "score", "percentile"} and isinstance(d["in_domain"], bool)
    assert 0.0 <= d["percentile"] <= 100.0 and np.isfinite(d["score"])
    assert v.note().endswith(".") and "nan" not in v.note()


def test_predict_json_prints_top_classes_and_the_domain_verdict(tmp_path, capsys):
    import json

    from sevis.cli.main import main
    from sevis.data.heldout import png_bytes, render
    garment = tmp_path / "garment.png"
    garment.write_bytes(png_bytes(render("photo-144", heldout_split(10))[0]))
    stripes = tmp_path / "stripes.png"
    _stripes()[4].save(stripes)
    assert main(["predict", str(garment), str(stripes), "--json", "--top", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out] == [str(garment), str(stripes)]
    for r in out:
        assert set(r) == {"name", "top", "domain"} and len(r["top"]) == 3
        assert set(r["domain"]) == {"in_domain", "score", "percentile"}
    assert out[0]["domain"]["in_domain"] is True and out[1]["domain"]["in_domain"] is False


@pytest.mark.app
def test_the_live_view_says_what_was_done_and_what_was_measured(media):
    import io
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    buf = io.BytesIO()
    _stripes()[4].save(buf, "PNG")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=600)
    at.run(timeout=600)
    at.multiselect(key="samples_fashion-mnist").set_value([])
    at.file_uploader(key="uploads").set_value([("stripes.png", buf.getvalue(), "image/png")])
    at.session_state["view"] = "Live inference"
    at.run(timeout=600)
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Read as a scene") and "96×96" in c for c in captions)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Out of domain") and "reference garments" in w for w in warnings)


def test_the_shipped_fit_is_current_equals_a_fresh_fit_and_a_stale_one_is_refitted(embedded, tmp_path, monkeypatch):
    from sevis.analysis import domain, precomputed
    stored = domain._stored_calibration(embedded)
    assert stored is not None, "run `sevis prepare embedded`: the stored domain fit is missing or stale"
    fresh = domain._fit_calibration(embedded)
    assert np.allclose(stored.weights, fresh.weights, rtol=1e-6, atol=1e-9)
    assert stored.bias == pytest.approx(fresh.bias, rel=1e-6, abs=1e-9)
    assert np.allclose(stored.reference_scores, fresh.reference_scores, rtol=1e-6, atol=1e-6)
    # the file is read where precomputed.weights_file says; one that does not match the model, or a damaged one,
    # is not used
    shipped = domain.domain_path(precomputed.weights_file(embedded)).read_bytes()
    weights = tmp_path / "model.safetensors"
    copy = domain.domain_path(weights)
    copy.write_bytes(shipped)
    monkeypatch.setattr(precomputed, "weights_file", lambda loaded: weights)
    assert domain._stored_calibration(embedded) is not None
    real = domain._fingerprint
    monkeypatch.setattr(domain, "_fingerprint", lambda loaded: {**real(loaded), "weights_sha256": "0" * 64})
    assert domain._stored_calibration(embedded) is None
    monkeypatch.setattr(domain, "_fingerprint", real)
    copy.write_bytes(b"not an npz")
    assert domain._stored_calibration(embedded) is None


def test_overflowing_features_are_left_out_of_the_fit_and_out_of_domain():
    # ablation:gate-relu's unbounded gates overflow to inf on some stripe images: such rows cannot be fitted on,
    # and an image whose features overflow is nothing like a garment
    rng = np.random.default_rng(0)
    garments, others = rng.normal(2.0, 1.0, (300, 3)), rng.normal(-2.0, 1.0, (100, 3))
    sizes = np.ones(300)
    broken = others.copy()
    broken[:5, 1] = np.inf
    broken[5, 2] = np.nan
    cal = calibrate(garments, sizes, broken)
    clean = calibrate(garments, sizes, others[6:])
    assert np.allclose(cal.weights, clean.weights) and cal.bias == pytest.approx(clean.bias)
    scores = cal.scores(broken[:8])
    assert np.all(scores[:6] == -np.inf) and np.all(np.isfinite(scores[6:]))
    v = cal.verdicts(broken[:1])[0]
    assert not v.in_domain and v.percentile == 0.0 and v.to_dict()["score"] is None
    assert v.note().startswith("Out of domain") and "nan" not in v.note() and "inf" not in v.note()
