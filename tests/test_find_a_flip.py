"""Find a flip in the Knock-out view and the domain verdict beside the Live view's prediction (issue 27); the
Knock-out view's finding read with s := the block's mean (issue 25).

On the shipped default model with real images: a T-shirt of the Fashion-MNIST test split and a photo shipped with
scikit-image, both written to files and read through the upload path."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sevis.analysis.flip_search import find_flips
from sevis.analysis.images import NamedImage, decode_uploads
from sevis.analysis.inference import predict_images
from sevis.analysis.knockout import knockout_overrides
from sevis.analysis.precomputed import load_precomputed
from sevis.analysis.reference import class_mean_excitations, reference_statistics
from sevis.core.recorder import SetChannels, find_se_blocks
from sevis.figures.sentences import broken, pct
from sevis.views import knockout as K
from sevis.views.base import ViewRequest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Real image files: the first T-shirt of the Fashion-MNIST test split, and scikit-image's astronaut photo."""
    from skimage import data as skdata

    from sevis.data.fashion_mnist import load_fashion_mnist
    folder = tmp_path_factory.mktemp("uploads")
    test = load_fashion_mnist("test")
    first = int(np.flatnonzero(test.labels == test.classes.index("T-shirt/top"))[0])
    Image.fromarray(test.images[first], "L").save(folder / "tshirt.png")
    Image.fromarray(skdata.astronaut()).save(folder / "astronaut.png")
    return {"tshirt": folder / "tshirt.png", "photo": folder / "astronaut.png"}


def same(a, b) -> bool:
    """Return True when two numbers of a view (or lists of them) agree to rounding."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6)
    return a == b


def uploaded(path: Path) -> NamedImage:
    """Return the file decoded as the app's sidebar decodes an upload."""
    images, errors = decode_uploads([(path.name, path.read_bytes())])
    assert not errors
    return images[0]


@pytest.fixture(scope="module")
def means(embedded) -> dict:
    """Block -> the reference-set mean of s: what s := its mean puts in."""
    return class_mean_excitations(reference_statistics(embedded).stats, "all")


@pytest.fixture(scope="module")
def flip_result(embedded, files):
    return K.compute(embedded, ViewRequest(images=(uploaded(files["tshirt"]),), find_flip=True), sweep=False)


def rerun(loaded, image: NamedImage, mode: str, blocks: list[str], channels: list, means) -> np.ndarray:
    """Return the class probabilities of `image` with the knock-out the view's numbers name, built here."""
    if not channels:
        overrides = knockout_overrides(blocks, mode, means)
    else:
        overrides = {b: SetChannels({c: 1.0 if mode == "identity" else float(means[b][c])
                                     for bb, c in channels if bb == b}) for b in blocks}
    with torch.inference_mode():
        return predict_images(loaded, [image.image], overrides).probs[0].double().numpy()


def test_the_found_flip_really_flips(embedded, files, flip_result, means):
    image = uploaded(files["tshirt"])
    n, name = flip_result.numbers, image.name
    before_class, before_p = n[f"flip_before/{name}"]
    assert before_class == "T-shirt/top" and n[f"flip/{name}"] is True
    probs = rerun(embedded, image, n[f"flip_mode/{name}"], n[f"flip_blocks/{name}"], n[f"flip_channels/{name}"],
                  means)
    after = embedded.classes[int(probs.argmax())]
    assert after != before_class and after == n[f"flip_after/{name}"][0]
    assert probs.max() == pytest.approx(n[f"flip_after/{name}"][1], abs=1e-4)
    assert probs[embedded.classes.index(before_class)] == pytest.approx(n[f"flip_original_after/{name}"], abs=1e-4)
    # the search is in order: a flip made of channels means no SE block alone flips this T-shirt, either way
    if n[f"flip_phase/{name}"] > 1:
        assert n[f"flip_block_flips/{name}"] == 0 and n[f"flip_size/{name}"] == len(n[f"flip_channels/{name}"])
        for block, _ in find_se_blocks(embedded.model):
            for mode in ("mean", "identity"):
                alone = rerun(embedded, image, mode, [block.name], [], means)
                assert embedded.classes[int(alone.argmax())] == before_class, (block.name, mode)
    # the panel and the sentence state the same flip
    panel = flip_result.panel("tshirt_flip")
    assert panel is not None and panel.title.startswith("A flip for tshirt.png")
    assert (f"T-shirt/top ({pct(before_p)})" in flip_result.takeaway
            and f"into {after} ({pct(probs.max())}" in flip_result.takeaway)
    assert not broken(flip_result.takeaway)


def test_no_flip_found_is_said_with_what_was_searched(embedded, means):
    from sevis.analysis.images import default_sample_images
    trouser = default_sample_images(embedded)[0]  # a confident Trouser; one channel at a time cannot flip it
    found, = find_flips(embedded, [trouser], means, channel_blocks=1, cap=1)
    assert found.flip is None and found.nearest is not None
    blocks = len(find_se_blocks(embedded.model))
    assert found.blocks == blocks and found.knockouts > 2 * blocks
    text = K.flip_sentence(found)
    c, p = found.before
    assert text.startswith(f"Find a flip: no knock-out searched changes the top class {c} ({pct(p)})")
    assert f"{blocks} blocks alone, each with s := its mean and s := 1" in text
    tried = f"{found.channels_tried} channel{'s' if found.channels_tried != 1 else ''} tried)"
    assert f"{found.knockouts} knock-outs in all" in text and tried in text and "up to 1 channel at a time" in text
    # the closest miss, re-run, leaves the class where the sentence says
    ko = found.nearest
    probs = rerun(embedded, trouser, ko.mode, ko.blocks, [list(x) for x in ko.channels], means)
    assert int(probs.argmax()) == embedded.classes.index(c)
    assert text.endswith(f"leaves {c} at {pct(probs[embedded.classes.index(c)])}.")
    assert not broken(text)


def test_degenerate_models_get_sentences(embedded_random, files):
    """Random weights (no reference means: s := 1 only), and a model without SE blocks."""
    from sevis import load_model
    image = uploaded(files["photo"])
    found, = find_flips(embedded_random, [image], None, channel_blocks=1, cap=2)
    text = K.flip_sentence(found)
    assert "s := its mean" not in text and text.endswith(".") and not broken(text)
    plain = K.compute(load_model("embedded-plain"), ViewRequest(images=(image,), find_flip=True))
    assert plain.notes == ["This model has no SE blocks to knock out."]


def test_the_finding_reads_s_as_the_blocks_mean(embedded):
    """The takeaway's 'late SE removable' uses the sweep with s := its mean, s := 1 beside it, as the paper table."""
    from sevis.analysis.paper import LITTLE_COST_POINTS
    pre, _ = load_precomputed(embedded)
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    text = K.knockout_takeaway(pre.sweeps["identity"], blocks, pre.sweeps["mean"])
    last = [b.name for b in blocks if b.stage == blocks[-1].stage]
    mean = pre.sweeps["mean"].set_index("block")["change"]
    cost = [-100 * float(mean[b]) for b in last]
    assert f"each last-stage block costs < {LITTLE_COST_POINTS:g} point with s := its mean" in text
    assert "; s := its mean costs " + ", ".join(f"{c:.1f}" for c in cost) in text
    assert "s := 1 costs " in text  # beside it
    worst = (-100 * mean.drop("none")).idxmax()
    assert text.startswith(f"Knocking out {worst} (s := its mean) costs")
    shows = max(cost) < LITTLE_COST_POINTS
    assert text.endswith("as the paper finds, late SE can be removed at little cost." if shows else
                         "unlike the paper's finding that late SE can be removed at little cost.")


@pytest.mark.app
@pytest.mark.slow
def test_app_find_a_flip_and_export_agree_and_the_verdict_sits_beside_the_prediction(files, tmp_path):
    from streamlit.testing.v1 import AppTest

    from sevis.cli.main import main as sevis
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.multiselect(key="samples_fashion-mnist").set_value([])
    at.file_uploader(key="uploads").set_value([(p.name, p.read_bytes(), "image/png")
                                                for p in (files["tshirt"], files["photo"])])
    at.session_state["view"] = "Live inference"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # the domain verdict in the prediction's row, the same type; out of domain, the prediction says unreliable
    for lecture in (False, True):
        at.toggle(key="lecture").set_value(lecture)
        at.selectbox(key="live_pick").set_value("astronaut.png")
        at.run()
        row = at.get_by_key("live_verdict")
        prediction, verdict = row.columns
        line = prediction.markdown[0].value
        assert line.startswith("**Prediction:") and "unreliable: the image is out of the model's domain" in line
        assert verdict.warning[0].value.startswith("Out of domain")
        at.selectbox(key="live_pick").set_value("tshirt.png")
        at.run()
        prediction, verdict = at.get_by_key("live_verdict").columns
        assert "unreliable" not in prediction.markdown[0].value
        assert verdict.success[0].value.startswith("In domain")
    at.toggle(key="lecture").set_value(False)
    # Find a flip: the button runs the search for the picked images; the export writes the same result
    at.session_state["view"] = K.TITLE
    at.run()
    at.file_uploader(key="uploads").set_value([(files["tshirt"].name, files["tshirt"].read_bytes(), "image/png")])
    at.run()
    assert [b.key for b in at.button if b.key == "ko_find_flip"] == ["ko_find_flip"]
    at.button(key="ko_find_flip").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.session_state["view_results"][K.TITLE]
    assert shown.numbers["flip/tshirt.png"] is True
    assert any(m.value.startswith("Original: **T-shirt/top**") and "with the flip" in m.value for m in at.markdown)
    out = tmp_path / "out"
    assert sevis(["export", "knockout", str(files["tshirt"]), "--find-flip", "--out", str(out), "--format",
                  "csv"]) == 0
    exported = json.loads((out / "knockout_view.json").read_text())
    assert exported["panels"] == shown.panel_titles() and exported["takeaway"] == shown.takeaway
    assert set(exported["numbers"]) == set(shown.numbers)
    for name, value in json.loads(json.dumps(shown.numbers)).items():
        assert same(exported["numbers"][name], value), (name, exported["numbers"][name], value)
    assert (out / "tshirt_flip.csv").is_file()
