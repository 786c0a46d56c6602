"""The rich background family (issue 25): the default renders as before, the rich one is deterministic, draws every
kind within the smooth recipe's brightness, crops training photos only, and its held-out set shares no kind with it."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from sevis.data import photos
from sevis.data.context import NOISE_GRIDS, RICH_KINDS, ContextConfig, backgrounds, compose, render_split, sample_params
from sevis.data.fashion_mnist import CONTEXT_SEEDS, REFERENCE_PATHS, load_fashion_mnist
from sevis.data.unseen_backgrounds import (
    MAX_LEVEL,
    RICH_UNSEEN_KINDS,
    UNSEEN_KINDS,
    recipe_of,
    unseen_kinds,
    unseen_split,
    unseen_test_record,
)

RICH = ContextConfig(flip=True, scale=(0.6, 1.4), backgrounds="rich")
# sha256 of the 256 training-recipe images below, rendered by the code of commit ebd610c (before the family existed)
TRAINING_RECIPE_SHA256 = "94b14b6ceab37af9690e67038394a22474d67cc09e4ca2f26d6f43dbe2a03e9c"
TINY = dict(arch="fmnist_se_resnet", epochs=2, train_images=128, test_images=50, batch_size=64, threads=1,
            bn_images=0, backgrounds="rich", scale=(0.6, 1.4))


@pytest.fixture(scope="module")
def test_garments() -> np.ndarray:
    return load_fashion_mnist("test").images


def _photo_spy(monkeypatch) -> list[tuple[str, str]]:
    """Record every photo the renderers read."""
    seen: list[tuple[str, str]] = []
    real = photos.load_photo

    def spy(package: str, name: str) -> torch.Tensor:
        seen.append((package, name))
        return real(package, name)

    monkeypatch.setattr(photos, "load_photo", spy)
    return seen


def test_the_default_family_renders_todays_images(test_garments):
    # the test split: the shipped in-context reference set holds its seeded rendering
    with np.load(REFERENCE_PATHS["context"]) as ref:
        shipped, idx = ref["images"], ref["test_indices"]
    assert ContextConfig().backgrounds == "smooth"
    assert np.array_equal(render_split(test_garments, CONTEXT_SEEDS["test"])[idx], shipped)
    # the shipped models' training recipe (flip, scale 0.6-1.4), and what the generator draws next
    cfg = ContextConfig(flip=True, scale=(0.6, 1.4))
    gen = torch.Generator().manual_seed(12345)
    params = sample_params(256, gen, cfg)
    assert params.rich is None
    images = compose(test_garments[:256], params, cfg).numpy()
    assert hashlib.sha256(images.tobytes()).hexdigest() == TRAINING_RECIPE_SHA256
    again = torch.Generator().manual_seed(12345)
    torch.rand(256 * (1 + 2 + 1 + 1 + 1 + 81), generator=again)  # scale, offset, flip, level, amplitude, 9×9 noise
    assert torch.equal(torch.rand(5, generator=gen), torch.rand(5, generator=again))


def test_rich_rendering_is_deterministic_and_independent_of_the_batch_size(test_garments):
    a = test_garments[:300]
    whole = render_split(a, 7, RICH, chunk=300)
    assert np.array_equal(whole, render_split(a, 7, RICH, chunk=37))
    assert np.array_equal(whole, render_split(a, 7, RICH, chunk=300))
    params = sample_params(300, torch.Generator().manual_seed(7), RICH)
    picks = torch.tensor([299, 3, 150, 4])  # any subset, in any order, renders its images the same
    assert np.array_equal(compose(a[picks.numpy()], params[picks], RICH).numpy(), whole[picks.numpy()])
    assert not np.array_equal(whole, render_split(a, 8, RICH, chunk=300))
    # the rich family draws its positions exactly as the smooth one does (its own draws come after)
    smooth = sample_params(300, torch.Generator().manual_seed(7), ContextConfig(flip=True, scale=(0.6, 1.4)))
    assert torch.equal(smooth.offset, params.offset) and torch.equal(smooth.scale, params.scale)


def test_every_rich_kind_occurs_and_stays_within_the_smooth_brightness(test_garments):
    n = 1000
    params = sample_params(n, torch.Generator().manual_seed(3), RICH)
    back = backgrounds(params, RICH.canvas)[:, 0]
    kinds = params.rich.kind
    assert np.bincount(kinds.numpy(), minlength=len(RICH_KINDS)).min() > n // len(RICH_KINDS) // 2
    assert set(params.rich.grid.tolist()) == set(range(len(NOISE_GRIDS)))
    brightest = RICH.background_level[1] + RICH.background_amplitude[1]
    assert back.min() >= 0 and back.max() <= brightest + 1e-6
    for k, name in enumerate(RICH_KINDS):
        b = back[kinds == k]
        level, amp = params.level[kinds == k], params.amplitude[kinds == k]
        assert (b.amin((1, 2)) >= level - 1e-6).all() and (b.amax((1, 2)) <= level + amp + 1e-6).all(), name
        assert (b.std((1, 2)) > 0.01).float().mean() > 0.5, name  # a pattern, not a flat level
    # composited with max: every garment pixel is still there, whatever the background
    out = compose(test_garments[:n], params, RICH).float() / 255
    rich_free = sample_params(n, torch.Generator().manual_seed(3), ContextConfig(flip=True, scale=(0.6, 1.4)))
    rich_free.level.zero_(), rich_free.amplitude.zero_()
    garments_only = compose(test_garments[:n], rich_free, RICH).float() / 255
    assert (out >= garments_only - 1 / 255).all() and (out >= back - 1 / 255).all()


def test_training_renders_crop_training_photos_only(monkeypatch, test_garments):
    assert not set(photos.TRAINING_PHOTOS) & set(photos.HELDOUT_PHOTOS)
    digests = {hashlib.sha256(photos.photo_path(*p).read_bytes()).hexdigest()
               for p in photos.TRAINING_PHOTOS + photos.HELDOUT_PHOTOS}
    assert len(digests) == len(photos.TRAINING_PHOTOS) + len(photos.HELDOUT_PHOTOS)  # real, distinct files
    seen = _photo_spy(monkeypatch)
    render_split(test_garments[:2000], 11, RICH, chunk=500)
    assert set(seen) == set(photos.TRAINING_PHOTOS)
    # the held-out set of a rich-recipe model crops only held-out photos
    seen.clear()
    split, kinds = unseen_split(400, recipe="rich")
    assert set(seen) == set(photos.HELDOUT_PHOTOS) and "held-out-photo" in kinds


def test_the_held_out_set_of_a_rich_model_shares_no_kind_with_its_recipe():
    assert not set(RICH_UNSEEN_KINDS) & set(RICH_KINDS)
    assert set(UNSEEN_KINDS) & set(RICH_KINDS) == {"stripes", "gradient"}  # why the rich recipe needs its own set
    assert 18 > max(NOISE_GRIDS)  # "fine-noise" is finer than any training noise grid
    smooth, smooth_kinds = unseen_split(200)
    rich, rich_kinds = unseen_split(200, recipe="rich")
    assert list(dict.fromkeys(rich_kinds)) == list(RICH_UNSEEN_KINDS)
    assert list(dict.fromkeys(smooth_kinds)) == list(UNSEEN_KINDS)
    assert np.array_equal(rich.labels, smooth.labels) and not np.array_equal(rich.images, smooth.images)
    assert rich.images.max() > 0.9 * 255  # the garments are there…
    # …over backgrounds no brighter than the recipes' (where the garment is absent, the background shows)
    assert np.percentile(rich.images, 25) <= MAX_LEVEL * 255
    # the recipe is read from the card; every card written before the family existed is smooth, and the shipped
    # default and its twin are trained on the rich family
    from sevis.models.zoo import load_model
    family = load_model("family:se-resnext").card
    assert recipe_of(family) == "smooth" and unseen_kinds(recipe_of(family)) is UNSEEN_KINDS
    for spec in ("embedded", "embedded-plain"):
        card = load_model(spec).card
        assert recipe_of(card) == "rich" and unseen_kinds(recipe_of(card)) is RICH_UNSEEN_KINDS
        assert card["dataset"]["training_context"]["backgrounds"] == "rich"
    assert unseen_test_record("smooth") == {"images": 2000, "seed": 25_000, "kinds": list(UNSEEN_KINDS)}


def test_sevis_train_records_the_family_in_the_card():
    from sevis.cli.main import BACKGROUND_FAMILIES, build_parser
    from sevis.data.context import BACKGROUND_FAMILIES as FAMILIES
    from sevis.errors import SevisError
    from sevis.train.trainer import TrainConfig, _config_key, create_model, model_card, train
    assert BACKGROUND_FAMILIES == FAMILIES
    args = build_parser().parse_args(["train", "--backgrounds", "rich", "--scale", "0.6", "1.4"])
    assert args.backgrounds == "rich" and build_parser().parse_args(["train"]).backgrounds == "smooth"
    # a smooth run's resume key is the one it had before the option existed; a rich run's differs
    assert "backgrounds" not in _config_key(TrainConfig()) and "rich" in _config_key(TrainConfig(backgrounds="rich"))
    cfg = TrainConfig(**TINY)
    history = {"log": ["epoch 1/2"], "epoch_seconds": [1.0, 1.0], "test_accuracy": [0.1, 0.2]}
    card = model_card(create_model(cfg.arch), cfg, history, "rich", "sevis train --backgrounds rich")
    assert card["training"]["backgrounds"] == "rich" and card["dataset"]["training_context"]["backgrounds"] == "rich"
    assert card["dataset"]["context"]["backgrounds"] == "smooth"  # the test split stays the smooth rendering
    assert recipe_of(card) == "rich" and "photo crops" in card["description"]
    with pytest.raises(SevisError, match="centred data"):
        train(TrainConfig(**{**TINY, "data": "centred"}))


@pytest.mark.slow
def test_a_rich_run_resumed_equals_an_uninterrupted_one(tmp_path):
    from sevis.errors import SevisError
    from sevis.train.trainer import TrainConfig, train
    ck = tmp_path / "rich.resume.pt"
    train(TrainConfig(**TINY), checkpoint=ck, stop_after=1)
    resumed, history = train(TrainConfig(**TINY), checkpoint=ck)
    whole, whole_history = train(TrainConfig(**TINY))
    for k, v in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    assert history["test_accuracy"] == whole_history["test_accuracy"]
    with pytest.raises(SevisError, match="other settings"):
        train(TrainConfig(**{**TINY, "backgrounds": "smooth"}), checkpoint=ck)


def test_upload_path_accuracy_on_the_held_out_backgrounds_of_the_models_recipe():
    # What `docs/upload_accuracy.py --unseen` reports: each image as PNG bytes through open_image and the model's
    # preprocess, on the held-out set its card's recipe names. Recomputed here image by image, and checked against
    # the tensor path (the same pixels, normalised as in training), which it must nearly always agree with.
    import copy

    from PIL import Image

    from sevis import load_model
    from sevis.data.heldout import png_bytes
    from sevis.data.preprocess import open_image
    from sevis.data.unseen_backgrounds import RICH_UNSEEN_KINDS, UNSEEN_KINDS, unseen_split, unseen_upload_accuracy
    from sevis.train.family_evaluation import predictions

    model = load_model("embedded")
    copies = {}
    for recipe in ("smooth", "rich"):  # the same network, its card naming either family
        copies[recipe] = copy.copy(model)
        copies[recipe].card = copy.deepcopy(model.card)
        copies[recipe].card.setdefault("training", {})["backgrounds"] = recipe
    for recipe, kinds in (("smooth", UNSEEN_KINDS), ("rich", RICH_UNSEEN_KINDS)):
        loaded = copies[recipe]
        n = 2 * len(kinds)
        accuracy, by_kind = unseen_upload_accuracy(loaded, n=n)
        split, drawn = unseen_split(n, recipe=recipe)
        assert set(by_kind) == set(kinds) == set(drawn)
        with torch.inference_mode():
            upload = np.array([int(loaded.model(loaded.preprocess(open_image(png_bytes(Image.fromarray(a, "L"))))[None])
                                   .argmax(1)) for a in split.images])
        assert accuracy == pytest.approx(float((upload == split.labels).mean()))
        for kind in kinds:
            mine = [i for i, k in enumerate(drawn) if k == kind]
            assert by_kind[kind] == pytest.approx(float((upload[mine] == split.labels[mine]).mean()))
        assert (upload == predictions(loaded.model, split)).mean() >= 0.75
