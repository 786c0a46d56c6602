"""Fashion-MNIST in context: the generator is deterministic, garments move, backgrounds vary, nothing is lost."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sevis.data.context import ContextConfig, compose, place, render_split, sample_params
from sevis.data.fashion_mnist import CONTEXT_MEAN, CONTEXT_STD, load_fashion_mnist, load_reference_set, load_split


@pytest.fixture(scope="module")
def test_images():
    return load_fashion_mnist("test")


def test_the_same_seed_renders_the_same_split_whatever_the_chunk_size(test_images):
    a = render_split(test_images.images[:600], seed=3, chunk=600)
    b = render_split(test_images.images[:600], seed=3, chunk=77)
    c = render_split(test_images.images[:600], seed=4)
    assert a.dtype == np.uint8 and a.shape == (600, 36, 36)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_bundled_context_test_split_is_the_seeded_one(test_images):
    # load_split renders the 10k test split with a fixed seed: same pixels on every machine and every call.
    split = load_split("test", "context")
    assert split.images.shape == (10_000, 36, 36)
    assert np.array_equal(split.labels, test_images.labels)
    assert np.array_equal(split.images[:50], load_split("test", "context").images[:50])
    # The reference set holds the same garments as the centred one, rendered exactly as in the test split.
    ref, centred = load_reference_set(variant="context"), load_reference_set(variant="centred")
    idx = np.load("sevis/pretrained/fmnist_context_reference.npz")["test_indices"]
    assert np.array_equal(ref.images, split.images[idx]) and np.array_equal(ref.labels, centred.labels)
    assert np.bincount(ref.labels).tolist() == [100] * 10  # balanced


def test_garments_are_copied_exactly_at_their_offsets(test_images):
    # At scale 1 the garment's pixels land unchanged at integer offsets (no resampling blur).
    g = torch.from_numpy(test_images.images[:64].astype(np.float32) / 255)[:, None]
    params = sample_params(64, torch.Generator().manual_seed(0))
    placed = place(g, params, 36)[:, 0]
    for i in range(64):
        y, x = params.offset[i].long().tolist()
        assert 0 <= y <= 8 and 0 <= x <= 8
        # ≪ 1/255: exact once 8-bit
        torch.testing.assert_close(placed[i, y:y + 28, x:x + 28], g[i, 0], atol=1e-5, rtol=0)
        outside = placed[i].clone()
        outside[y:y + 28, x:x + 28] = 0
        assert outside.abs().max() < 1e-5  # float rounding only: 0 once stored as 8-bit


def test_positions_and_backgrounds_vary(test_images):
    n = 2000
    params = sample_params(n, torch.Generator().manual_seed(1))
    out = compose(test_images.images[:n], params).float() / 255
    # Every one of the 9×9 offsets occurs, and roughly uniformly.
    cells = params.offset[:, 0] * 9 + params.offset[:, 1]
    counts = torch.bincount(cells.long(), minlength=81)
    assert (counts > 0).all() and counts.max() < 3 * n / 81
    # Corner pixels (almost always background) span dark to bright, and vary within an image (smooth noise).
    corners = out[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.min() < 0.05 and corners.max() > 0.5
    assert (corners.std(1) > 0.02).float().mean() > 0.5
    # The garment stays visible: it is composited with max, so no garment pixel gets darker.
    g = torch.from_numpy(test_images.images[:n].astype(np.float32) / 255)[:, None]
    placed = place(g, params, 36)[:, 0]
    assert (out + 1 / 255 >= placed).all()
    # The measured normalisation constants are those of the rendered data.
    train = load_split("train", "context").images[:5000].astype(np.float32) / 255
    assert train.mean() == pytest.approx(CONTEXT_MEAN, abs=0.01) and train.std() == pytest.approx(CONTEXT_STD, abs=0.01)


def test_random_scale_and_flip(test_images):
    cfg = ContextConfig(scale=(0.6, 1.2), flip=True)
    params = sample_params(500, torch.Generator().manual_seed(2), cfg)
    assert params.scale.min() >= 0.6 and params.scale.max() <= 1.2 and params.scale.std() > 0.1
    assert 0.35 < params.flip.float().mean() < 0.65
    out = compose(test_images.images[:500], params, cfg)
    assert out.shape == (500, 36, 36)
    # A smaller garment has less ink: the bright-pixel count falls with the scale.
    ink = (place(torch.from_numpy(test_images.images[:500].astype(np.float32) / 255)[:, None], params, 36) > 0.3)
    r = np.corrcoef(params.scale.numpy(), ink.flatten(1).sum(1).numpy())[0, 1]
    assert r > 0.3
