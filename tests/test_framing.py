"""Uploads to in-context models: scenes stay scenes, isolated garments are fitted like training garments."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sevis.data.fashion_mnist import data_normalisation, load_reference_set
from sevis.data.framing import SceneTransform, describe_preprocessing, frame
from sevis.data.preprocess import GrayscaleTransform
from sevis.models.zoo import load_model


@pytest.fixture(scope="module")
def context_ref():
    return load_reference_set(variant="context")


@pytest.fixture(scope="module")
def centred_ref():
    return load_reference_set(variant="centred")


def _scene(context_ref) -> np.ndarray:
    """A reference scene whose background is not flat (so it reads as a scene)."""
    for a in context_ref.images:
        if frame(Image.fromarray(a, "L"))[0].kind == "scene":
            return a
    raise AssertionError("no scene in the reference set")


def test_in_context_models_use_the_scene_transform_and_centred_ones_keep_theirs():
    assert isinstance(load_model("embedded", pretrained=False).preprocess, SceneTransform)
    assert isinstance(load_model("embedded-centred", pretrained=False).preprocess, GrayscaleTransform)


@pytest.mark.parametrize("size", [(36, 36), (40, 30), (30, 40), (144, 144), (1, 5), (640, 480), (3, 200)])
def test_every_upload_becomes_one_canvas(size):
    t = SceneTransform(36, [0.0], [1.0])
    rng = np.random.default_rng(0)
    x = t(Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB"))
    assert x.shape == (1, 36, 36) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_a_scene_on_the_training_canvas_reaches_the_model_untouched(context_ref):
    mean, std = data_normalisation("context")
    t = SceneTransform(36, [mean], [std])
    a = _scene(context_ref)
    x = t(Image.fromarray(a, "L").convert("RGB"))
    torch.testing.assert_close(x, (torch.from_numpy(a).float()[None] / 255 - mean) / std)


def test_a_scene_at_photo_size_is_resized_whole(context_ref):
    a = _scene(context_ref)
    big = Image.fromarray(a, "L").resize((144, 144), Image.BILINEAR)
    framing, seen = frame(big)
    assert framing.kind == "scene" and framing.content_size == (36, 36) and not framing.inverted
    # the whole scene, back at its own size: close to what training saw, not a shrunken framed square
    assert np.abs(np.asarray(seen, np.float32) - a).mean() < 6
    wide = Image.fromarray(a, "L").resize((144, 72), Image.BILINEAR)
    framing, seen = frame(wide)
    assert framing.kind == "scene" and framing.content_size == (36, 18)
    border = np.asarray(seen)[:9]  # the padding above the scene: the image's own border level
    assert border.std() == 0 and border[0, 0] == framing.background


def test_isolated_garment_is_cropped_and_fitted_to_28_px_in_both_polarities(centred_ref):
    a = centred_ref.images[0]
    photo = np.zeros((300, 400), np.uint8)  # a product photo: a small garment in a wide black frame
    photo[100:156, 150:206] = np.asarray(Image.fromarray(a).resize((56, 56), Image.BILINEAR))
    on_black, seen_black = frame(Image.fromarray(photo, "L").convert("RGB"))
    on_white, seen_white = frame(Image.fromarray(255 - photo, "L").convert("RGB"))
    assert on_black.kind == on_white.kind == "garment"
    assert not on_black.inverted and on_white.inverted
    assert max(on_black.content_size) == 28  # fitted like a training garment
    assert np.array_equal(np.asarray(seen_black), np.asarray(seen_white))  # polarity handled
    ink = np.asarray(seen_black) > 24
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 26  # the garment now spans ~28 px of the canvas
    assert abs((rows[0] + rows[-1]) / 2 - 17.5) <= 2 and abs((cols[0] + cols[-1]) / 2 - 17.5) <= 2  # centred


def test_a_fashion_mnist_upload_lands_where_training_put_it(centred_ref):
    for a in centred_ref.images[::100]:
        framing, seen = frame(Image.fromarray(a, "L"))
        canvas = np.zeros((36, 36), np.uint8)
        canvas[4:32, 4:32] = a
        assert framing.kind == "garment" and np.array_equal(np.asarray(seen), canvas)


def test_descriptions_say_what_was_done(context_ref, centred_ref):
    t = SceneTransform(36, [0.0], [1.0])
    scene = t.describe(Image.fromarray(_scene(context_ref), "L").resize((144, 96)))
    assert scene.startswith("Read as a scene") and "144×96" in scene and "36×24" in scene
    scan = t.describe(Image.fromarray(255 - centred_ref.images[0], "L").resize((112, 112)))
    assert "garment on white" in scan and "inverted" in scan and "28 px" in scan
    centred = load_model("embedded-centred", pretrained=False)
    assert "28×28" in describe_preprocessing(centred.preprocess, Image.new("RGB", (50, 40)))
    imagenet = describe_preprocessing(load_model("timm:seresnet18", pretrained=False).preprocess,
                                      Image.new("RGB", (300, 200)))
    assert "300×200" in imagenet and "224×224" in imagenet
    for text in (scene, scan, imagenet):
        assert "nan" not in text and "None" not in text and text.endswith(".")


@pytest.mark.parametrize("spec", ["torchvision:efficientnet_b0", "torchvision:mobilenet_v3_large"])
def test_torchvision_presets_are_described_by_what_they_do(spec):
    """Issue 28: torchvision's preset transforms have a describe() of another meaning (no image argument); the
    Live view crashed on it for every torchvision model."""
    preprocess = load_model(spec, pretrained=False).preprocess
    assert callable(getattr(preprocess, "describe", None))  # the attribute that was taken for ours
    img = Image.new("RGB", (300, 200), (120, 60, 30))
    text = describe_preprocessing(preprocess, img)
    shape = tuple(preprocess(img).shape)
    assert "300×200" in text and f"{shape[-1]}×{shape[-2]}" in text and text.endswith(".")
    assert text.startswith("The 300×200 image resized and centre-cropped")


def test_our_transforms_describe_themselves_through_describe_preprocessing(context_ref):
    img = Image.fromarray(_scene(context_ref), "L").resize((144, 96))
    scene = SceneTransform(36, [0.0], [1.0])
    assert describe_preprocessing(scene, img) == scene.describe(img)
    grey = load_model("embedded-centred", pretrained=False).preprocess
    assert isinstance(grey, GrayscaleTransform)
    assert describe_preprocessing(grey, img) == grey.describe(img)
