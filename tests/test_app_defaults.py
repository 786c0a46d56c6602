"""Issue 17 in the app (streamlit.testing's AppTest): Fig. 6 as deviations equals a direct computation from the
reference statistics, and each view opens on a computed default that shows something: Inside a block on the first
block of stage 2, Channel on the most class-selective channel, SE knock-out on the block whose knock-out
changes the image's prediction most."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from sevis.core.recorder import ExcitationRecorder, find_se_blocks  # noqa: E402

pytestmark = pytest.mark.app

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 600  # seconds per script run: the machine may be busy


def _run(at: AppTest, view: str | None = None) -> AppTest:
    if view is not None:
        at.session_state["view"] = view
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _arr(value) -> np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        import base64
        shape = value.get("shape")
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return arr.reshape([int(n) for n in str(shape).split(",")]) if shape else arr
    return np.asarray(value, dtype=float)


@pytest.fixture(scope="module")
def app() -> AppTest:
    return _run(AppTest.from_file(APP, default_timeout=TIMEOUT))


def _reference_stats(embedded):
    """The per-class statistics of the bundled reference set, computed here with the recorder (not the app's)."""
    from collections import OrderedDict

    from sevis.analysis.inference import split_batches
    from sevis.core.statistics import ExcitationStats
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    ref = embedded.reference_set()
    stats = ExcitationStats(list(ref.classes), OrderedDict((b.name, b.channels) for b in blocks))
    with torch.inference_mode(), ExcitationRecorder(embedded.model) as rec:
        for x, y in split_batches(embedded, ref, 250):
            embedded.model(x)
            stats.update(rec.pop(), y)
    return stats


def test_fig6_deviations_equal_a_direct_computation(app, embedded):
    at = _run(app, "Class × depth")
    assert at.radio(key="cd_form").value == "deviation"
    classes = list(at.multiselect(key="cd_classes").value)
    blocks = list(at.multiselect(key="cd_blocks").value)
    stats = _reference_stats(embedded)
    fig6 = _charts(at)[0]
    heats = [t for t in fig6["data"] if t["type"] == "heatmap"]
    titles = [a["text"] for a in fig6["layout"]["annotations"]][:len(blocks)]
    assert len(heats) == len(blocks)
    scales = {(t.get("coloraxis") or "coloraxis") for t in heats}
    assert scales == {"coloraxis"}  # one colour scale for every panel
    for block, heat, title in zip(blocks, heats, titles):
        channels = np.asarray(heat["meta"]["channels"])
        n = stats.mean(block).shape[1]
        expected_channels = np.unique(np.linspace(0, n - 1, min(50, n)).round().astype(int))
        assert sorted(channels) == list(expected_channels)  # evenly spaced, not a random draw
        rows = [stats.classes.index(c) for c in heat["y"]]
        assert list(heat["y"]) == classes
        expected = stats.mean(block)[np.ix_(rows, channels)] - stats.overall_mean(block)[channels]
        np.testing.assert_allclose(_arr(heat["z"]), expected, atol=1e-9)
        spread = expected.std(0)
        assert np.all(np.diff(spread) <= 1e-12)  # columns sorted: most class-dependent first
        # the title states the block's share over every class and channel (one definition with the paper table),
        # computed here directly from the class means, not from the cells shown
        every = np.abs(stats.mean(block) - stats.overall_mean(block)) <= 0.05
        assert title == f"{block}: {100 * every.mean():.0f}% of class means within 0.05 of all"


def test_inside_a_block_opens_on_the_first_block_of_stage_2_with_its_formula(app, embedded):
    at = _run(app, "Inside a block")
    first_of_stage_2 = next(b.name for b, _ in find_se_blocks(embedded.model) if b.stage == 2)
    assert at.selectbox(key="in_block").value == first_of_stage_2 == "SE_2_1"
    assert any(c.value == "This block computes s = σ(W₂·ReLU(W₁·z))" for c in at.caption)
    # The header's formula is the model's own, and the model goes by one name: the README's and the picker's.
    header = next(c.value for c in at.caption if c.value.startswith("How SE blocks rescale channels"))
    assert "excitation s = σ(W₂·ReLU(W₁·z))" in header and "for **embedded**" in header
    assert "embedded: " in at.selectbox(key="model_kind").options[0]


def _selectivity(stats, block: str) -> np.ndarray:
    """The share of each channel's variance of s over the images that lies between class means (η²)."""
    n = stats.count[:, None]
    mean, std = stats.mean(block), stats.std(block)
    grand = (n * mean).sum(0) / n.sum()
    between = (n * (mean - grand) ** 2).sum(0)
    return between / (between + (n * std ** 2).sum(0))


def test_channel_opens_on_the_most_class_selective_channel(embedded):
    """The Channel view opens on the model's most class-selective channel (the Tour's), and on a block's own when
    the block changes (sevis.analysis.selectivity)."""
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT), "Channel")
    stats = _reference_stats(embedded)
    best = max(((b, int(np.argmax(_selectivity(stats, b))), float(np.max(_selectivity(stats, b))))
                for b in stats.blocks), key=lambda t: t[2])
    assert (at.selectbox(key="ch_block").value, at.number_input(key="ch_channel").value) == best[:2]
    block = best[0]
    other = [b for b in stats.blocks if b != block][3]
    at.selectbox(key="ch_block").set_value(other)  # a new block: its own most class-selective channel
    _run(at)
    assert at.number_input(key="ch_channel").value == int(np.argmax(_selectivity(stats, other)))
    at.number_input(key="ch_channel").set_value(3)  # a channel typed in stays
    _run(at)
    assert at.number_input(key="ch_channel").value == 3
    text = next(i.value for i in at.info if i.value.startswith("**Takeaway"))
    assert "on average" in text and "single images that excite it most" in text


def test_knockout_preselects_the_block_that_changes_the_prediction_most(app, embedded):
    from sevis.analysis.images import decode_uploads, sample_images
    at = _run(app, "SE knock-out")
    name = at.selectbox(key="ko_image").value
    samples = sample_images(embedded)
    image = decode_uploads([(name, samples[name])])[0][0]
    x = torch.stack([embedded.preprocess(image.image)])
    blocks = [b.name for b, _ in find_se_blocks(embedded.model)]
    with torch.inference_mode():
        base = embedded.model(x).softmax(1)[0].double()
        effect = {}
        for blk in blocks:
            with ExcitationRecorder(embedded.model, overrides={blk: 1.0}):
                p = embedded.model(x).softmax(1)[0].double()
            effect[blk] = (bool(p.argmax() != base.argmax()), float(0.5 * (p - base).abs().sum()))
    best = max(blocks, key=lambda b: effect[b])
    assert at.multiselect(key="ko_blocks").value == [best]
    assert any(c.value.startswith(("Preselected:", "Knocking out any single SE block")) for c in at.caption)
