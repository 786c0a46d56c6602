"""One definition of the most class-selective channel (issue 24): sevis.analysis.selectivity, the Channel view's
default and the channel the Tour names agree; the measure is the per-image share of variance between class means,
checked against a direct computation on the shipped model and the bundled reference set."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

from sevis.analysis.reference import reference_statistics
from sevis.analysis.selectivity import channel_selectivity, most_selective_channel
from sevis.core.recorder import ExcitationRecorder
from sevis.core.statistics import ExcitationStats
from sevis.views.base import ViewRequest
from sevis.views.registry import compute_view


@pytest.fixture(scope="module")
def per_image(embedded) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """s of every block for every bundled reference image, recorded here (block -> N×C), and the labels."""
    from sevis.analysis.inference import split_batches
    out: dict[str, list[np.ndarray]] = {}
    labels = []
    with torch.inference_mode(), ExcitationRecorder(embedded.model) as rec:
        for x, y in split_batches(embedded, embedded.reference_set(), 250):
            embedded.model(x)
            for name, s in rec.pop().items():
                out.setdefault(name, []).append(s.double().numpy())
            labels.append(np.asarray(y))
    return {k: np.concatenate(v) for k, v in out.items()}, np.concatenate(labels)


def eta_squared(s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The share of each channel's variance over images that lies between class means, from the images' s."""
    grand = s.mean(0)
    between = sum((labels == k).sum() * (s[labels == k].mean(0) - grand) ** 2 for k in np.unique(labels))
    return between / len(s) / s.var(0)


def test_selectivity_is_the_per_image_share_between_class_means(embedded, per_image):
    s, labels = per_image
    stats = reference_statistics(embedded).stats
    best = max(((b, int(np.argmax(eta_squared(v, labels))), float(np.max(eta_squared(v, labels))))
                for b, v in s.items()), key=lambda t: t[2])
    for block in (stats.blocks[0], stats.blocks[-1]):
        np.testing.assert_allclose(channel_selectivity(stats, block), eta_squared(s[block], labels), atol=1e-5)
    sel = most_selective_channel(stats)
    assert (sel.block, sel.channel) == best[:2]
    assert sel.share == pytest.approx(best[2], abs=1e-5)
    means = stats.mean(sel.block)[:, sel.channel]
    assert sel.top_class == stats.classes[int(np.argmax(means))]


def test_channel_view_opens_on_the_channel_the_tour_names(embedded, per_image):
    """The Channel view's default is most_selective_channel over every block; the old default (the last block's
    largest std of class means) is another channel of the same block: the two differ by statistic, not by block."""
    result = compute_view(embedded, "channel", ViewRequest(), prepared=False)
    sel = most_selective_channel(reference_statistics(embedded).stats)
    assert (result.numbers["block"], result.numbers["channel"]) == (sel.block, sel.channel)
    assert result.numbers["selectivity"] == pytest.approx(sel.share)
    assert f"The class explains {sel.share:.0%} of the variance of its s" in result.takeaway
    assert result.panel_titles()[0] == f"s of channel {sel.channel} at {sel.block} per class"
    s, labels = per_image
    class_means = np.stack([s[sel.block][labels == k].mean(0) for k in range(10)])
    assert int(np.argmax(class_means.std(0))) != sel.channel
    # A block given: that block's most selective channel; an unknown block or channel: one message.
    other = compute_view(embedded, "channel", ViewRequest(block="SE_4_2"), prepared=False)
    assert other.numbers["channel"] == int(np.argmax(eta_squared(s["SE_4_2"], labels)))
    from sevis.errors import SevisError
    with pytest.raises(SevisError, match="no SE block named 'SE_9_9'"):
        compute_view(embedded, "channel", ViewRequest(block="SE_9_9"), prepared=False)
    with pytest.raises(SevisError, match="there is no channel 999"):
        compute_view(embedded, "channel", ViewRequest(block="SE_2_1", channel=999), prepared=False)


def _stats(s: dict[str, np.ndarray], labels, classes=("a", "b", "c")) -> ExcitationStats:
    stats = ExcitationStats(list(classes), OrderedDict((b, v.shape[1]) for b, v in s.items()))
    stats.update({b: torch.as_tensor(v) for b, v in s.items()}, np.asarray(labels))
    return stats


def test_ties_go_to_the_larger_between_class_variance_then_the_first_channel():
    labels = [0, 0, 1, 1, 2, 2]
    base = np.array([0.1, 0.1, 0.5, 0.5, 0.9, 0.9])  # the class fixes s: share 1
    s = {"B1": np.stack([base * 0.5, base, np.full(6, 0.3)], 1),  # channels 0 and 1 both share 1; 1 spreads more
         "B2": np.stack([base], 1)}  # the same as B1's channel 1: a full tie, the shallower block wins
    sel = most_selective_channel(_stats(s, labels))
    assert (sel.block, sel.channel, sel.share) == ("B1", 1, pytest.approx(1.0))
    assert most_selective_channel(_stats(s, labels), ["B2"]).channel == 0
    # One image per class (sample photos standing in for classes): every varying channel has share 1, and the one
    # whose s varies most across the images wins.
    one = {"B": np.array([[0.2, 0.5, 0.4], [0.3, 0.5, 0.9], [0.25, 0.5, 0.1]])}
    sel = most_selective_channel(_stats(one, [0, 1, 2]))
    assert sel.channel == 2 and np.isnan(channel_selectivity(_stats(one, [0, 1, 2]), "B")[1])


def test_no_channel_is_selective_when_s_is_constant_or_one_class_has_images():
    flat = {"B": np.full((4, 3), 0.5)}
    assert most_selective_channel(_stats(flat, [0, 0, 1, 1])) is None
    varied = {"B": np.random.default_rng(0).uniform(size=(4, 3))}
    assert most_selective_channel(_stats(varied, [0, 0, 0, 0])) is None
