"""The SE-ResNet we ship in pretrained/: accuracy, preprocessing as trained, and what its gates do.

These tests need pretrained/fmnist_se_resnet.safetensors (+ .json), which `sevis train` writes.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from sevis.cli import main
from sevis.data import load_reference_set
from sevis.inference import collect_statistics, split_batches
from sevis.recorder import find_se_blocks
from sevis.train import normalise

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def reference_stats(embedded):
    stats, figures = collect_statistics(embedded, split_batches(embedded, load_reference_set()))
    return stats, figures, [b for b, _ in find_se_blocks(embedded.model)]


def test_class_specificity_of_the_last_stage_is_higher_than_the_first(reference_stats):
    # The paper's Fig. 6 finding: early SE blocks are class-agnostic, late ones class-specific. A stage's
    # index is the block index applied to all of the stage's excitations at once (pooled over its channels).
    stats, _, blocks = reference_stats
    stages = sorted({b.stage for b in blocks})
    assert (stages[0], stages[-1]) == (2, 5)
    first = stats.class_specificity([b.name for b in blocks if b.stage == stages[0]])
    last = stats.class_specificity([b.name for b in blocks if b.stage == stages[-1]])
    assert last > first


def test_the_gates_do_visible_work(reference_stats):
    # the target: the std of s across images, averaged over channels, ≥ 0.05 in the last stage
    stats, _, blocks = reference_stats
    assert np.mean([stats.spread(b.name) for b in blocks if b.stage == 5]) >= 0.05


def test_reference_set_accuracy_and_sane_excitations(reference_stats):
    stats, figures, blocks = reference_stats
    assert figures["images"] == len(load_reference_set())
    assert figures["accuracy"] >= 0.90
    summary = stats.summary()
    assert len(summary) == len(blocks) == 8
    assert ((summary["min_s"] >= 0) & (summary["max_s"] <= 1)).all()
    assert (summary["spread"] > 0).all()


def test_preprocessing_is_exactly_what_training_used(embedded):
    # An image of the dataset, as a user would upload it (PNG → RGB PIL), must reach the network as the
    # same tensor the training loop fed it.
    ref = load_reference_set()
    for a in ref.images[::25]:
        via_upload = embedded.preprocess(Image.fromarray(a, "L").convert("RGB"))
        as_trained = normalise(torch.from_numpy(a.copy())[None])[0]
        torch.testing.assert_close(via_upload, as_trained, atol=1e-5, rtol=0)


def test_sevis_evaluate_reaches_the_target_accuracy(embedded, capsys):
    assert main(["evaluate"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"^accuracy: (\d+\.\d\d)% \(10000 test images\)$", out, re.M)
    assert m, out
    assert float(m.group(1)) >= 93.0
    ev = embedded.card.get("evaluation")
    assert ev, "the model card has no evaluation: run `sevis evaluate --write-card`"
    assert ev["command"].startswith("sevis evaluate") and ev["split"] == "test" and ev["images"] == 10000
    assert f"{100 * ev['accuracy']:.2f}" == m.group(1)  # the card says what evaluate measures
    assert len(ev["per_class_accuracy"]) == 10
