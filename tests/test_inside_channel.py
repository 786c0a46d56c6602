"""The Inside a block and Channel views (sevis.inside, sevis.channel), their takeaways and `sevis export
block/channel`, on the shipped model and the bundled reference set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import garment_png_bytes
from sevis import ExcitationRecorder, SevisError, find_se_blocks
from sevis.analysis.anatomy import block_anatomy
from sevis.analysis.images import NamedImage, analyse_images, decode_uploads
from sevis.analysis.inference import run_batch
from sevis.views.architecture import architecture_takeaway
from sevis.views.channel import (
    channel_from_point,
    channel_panels,
    most_and_least,
    one_channel_knockout,
    reference_excitations,
)
from sevis.views.inside import anatomy_panels, anatomy_takeaway
from sevis.views.knockout import knockout_takeaway
from sevis.views.live import live_takeaway


@pytest.fixture(scope="module")
def image(embedded) -> NamedImage:
    good, errors = decode_uploads([("garment.png", garment_png_bytes())])
    assert not errors
    return good[0]


@pytest.fixture(scope="module")
def ref(embedded):
    return reference_excitations(embedded)


def _names(loaded) -> list[str]:
    return [b.name for b, _ in find_se_blocks(loaded.model)]


def test_u_times_s_is_the_blocks_scaled_output(embedded, image):
    """U·s of the view equals what the SE module really returns, captured here by our own hook."""
    for name in (_names(embedded)[0], _names(embedded)[-1]):
        block = next(b for b, _ in find_se_blocks(embedded.model) if b.name == name)
        module = embedded.model.get_submodule(block.path)
        seen = {}
        h = module.register_forward_hook(lambda m, a, o: seen.setdefault("out", o.detach().clone()))
        try:
            a = block_anatomy(embedded, image, name)
        finally:
            h.remove()
        np.testing.assert_allclose(a.scaled, seen["out"][0].double().numpy(), atol=1e-6, rtol=0)
        assert a.u.shape[0] == a.s.shape[0] == a.z.shape[0] == block.channels
        assert a.hidden is not None and len(a.hidden) == block.squeeze_channels
        np.testing.assert_allclose(a.z, a.u.mean((1, 2)), atol=1e-5)
        chain, maps, pred = anatomy_panels(a)
        assert set(chain.data["quantity"]) == {"z", "hidden", "s"}
        np.testing.assert_allclose(chain.data.loc[chain.data["quantity"] == "s", "value"], a.s)
        high, low = a.extremes()
        assert min(a.s[high]) >= max(np.delete(a.s, high)) and max(a.s[low]) <= min(np.delete(a.s, low))
        # The U·s rows of the feature-map data are the scaled output of those channels.
        us = maps.data[maps.data["row"].str.startswith("U·s")]
        for c in high + low:
            part = us[us["channel"] == c]
            np.testing.assert_allclose(part["value"], a.scaled[c].ravel())
        assert pred.data["class"].iloc[0] == a.topk[0][0]


def test_unknown_block_is_a_clear_error(embedded, image):
    with pytest.raises(SevisError, match="no SE block named 'SE_9_9'"):
        block_anatomy(embedded, image, "SE_9_9")


def test_the_nine_most_exciting_images_are_the_nine_highest_s(embedded, ref):
    """Independent of the view: record s of one channel over the reference set and sort it ourselves."""
    block, channel = _names(embedded)[-2], 7
    split = embedded.reference_set()  # the reference garments as the model was trained on them (in context)
    mean, std = embedded.normalisation
    x = ((torch.from_numpy(split.images).float() / 255 - mean) / std).unsqueeze(1)
    with torch.inference_mode(), ExcitationRecorder(embedded.model, blocks=[block]) as rec:
        for i in range(0, len(x), 250):
            embedded.model(x[i:i + 250])
    s = rec.excitations[block][:, channel].numpy()
    top, bottom = most_and_least(ref, block, channel)
    assert len(top) == len(bottom) == 9
    np.testing.assert_allclose(np.sort(s[top])[::-1], np.sort(s)[::-1][:9], atol=1e-6)
    np.testing.assert_allclose(np.sort(s[bottom]), np.sort(s)[:9], atol=1e-6)
    result = channel_panels(embedded, ref, block, channel)
    gallery = result.panels[1].data
    most = gallery[gallery["group"] == "most exciting"]
    np.testing.assert_allclose(most["s"], s[most["index"]], atol=1e-6)
    assert list(most["class"]) == [split.classes[split.labels[i]] for i in most["index"]]


def test_one_channel_knockout_equals_a_full_rerun(embedded, image, ref):
    """s[c] := 0 through the view equals a plain run with the whole vector overridden (s with c zeroed)."""
    block, channel = _names(embedded)[-1], 3
    ko = one_channel_knockout(embedded, image, block, channel)
    x = torch.stack([embedded.preprocess(image.image)])
    s = run_batch(embedded, x).excitations[block][0].clone()
    for value in (0.0, 1.0):
        vec = s.clone()
        vec[channel] = value
        full = run_batch(embedded, x, overrides={block: vec}).probs[0]
        part = ko[ko["when"] == f"s[{channel}] := {value:g}"]
        idx = [embedded.classes.index(c) for c in part["class"]]
        np.testing.assert_allclose(part["probability"], full[idx].numpy(), atol=1e-6)
    result = channel_panels(embedded, ref, block, channel, image)
    assert len(result.panels) == 4 and result.knockout.equals(ko)
    with pytest.raises(SevisError, match="no channel 100000"):
        channel_panels(embedded, ref, block, 100000, image)


def test_channel_from_point():
    blocks = ["SE_2_1", "SE_5_1"]
    assert channel_from_point({"customdata": ["SE_5_1", 7], "x": 7, "y": 0.3}, blocks) == ("SE_5_1", 7)
    assert channel_from_point({"x": 12, "y": "SE_2_1"}, blocks) == ("SE_2_1", 12)  # a heat-strip cell
    assert channel_from_point({"x": "Bag", "y": 0.4}, blocks) is None
    assert channel_from_point({"customdata": ["SE_9_9", 1]}, blocks) is None


def test_takeaways_are_computed_from_the_model(embedded, embedded_random, image):
    """The same view on a different model gives a different sentence: nothing is hard-coded."""
    a_text = anatomy_takeaway(block_anatomy(embedded, image, _names(embedded)[-1]))
    b_text = anatomy_takeaway(block_anatomy(embedded_random, image, _names(embedded_random)[-1]))
    assert a_text != b_text and _names(embedded)[-1] in a_text
    live_a = live_takeaway(analyse_images(embedded, [image])[0])
    live_b = live_takeaway(analyse_images(embedded_random, [image])[0])
    assert live_a != live_b
    ref_a, ref_b = reference_excitations(embedded), reference_excitations(embedded_random)
    block = _names(embedded)[-1]
    assert (channel_panels(embedded, ref_a, block, 0).takeaway
            != channel_panels(embedded_random, ref_b, block, 0).takeaway)
    assert architecture_takeaway(embedded).startswith("SE adds ")


def test_knockout_takeaway_names_the_costliest_block(embedded):
    import pandas as pd
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    sweep = pd.DataFrame({"block": ["none"] + [b.name for b in blocks], "depth": range(-1, len(blocks)),
                          "accuracy": 0.9,
                          "change": [0.0] + [-0.117 if i == 0 else -0.004 for i in range(len(blocks))]})
    text = knockout_takeaway(sweep, blocks)
    assert text.startswith(f"Knocking out {blocks[0].name} costs 11.7 points")
    # the last stage in the paper table's words (sevis.analysis.paper.late_se_removable)
    assert f"In the last stage, s := 1 costs 0.4 pts at {blocks[-3].name}" in text
    assert text.endswith("as the paper finds, late SE can be removed at little cost.")
    # Where the last stage costs more than the paper's 1 point, the sentence says it contradicts the paper.
    sweep.loc[sweep["block"] == blocks[-1].name, "change"] = -0.033
    text = knockout_takeaway(sweep, blocks)
    assert f"3.3 pts at {blocks[-1].name}" in text
    assert text.endswith("unlike the paper's finding that late SE can be removed at little cost.")


def test_export_block_and_channel(embedded, tmp_path, image):
    from sevis.cli.main import main
    path = tmp_path / "garment.png"
    image.image.save(path)
    block = _names(embedded)[-2]
    assert main(["export", "block", str(path), "--block", block, "--format", "csv", "--out", str(tmp_path / "b")]) == 0
    files = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert files == sorted([f"garment_{block}_{k}.csv" for k in ("chain", "feature_maps", "prediction", "overlay")]
                           + ["block_view.json"])
    assert main(["export", "channel", "--block", block, "--channel", "7", str(path), "--format", "csv", "json",
                 "--out", str(tmp_path / "c")]) == 0
    names = {p.name for p in (tmp_path / "c").iterdir()}
    assert {f"{block}_ch7_by_class.csv", f"{block}_ch7_gallery.json", f"garment_{block}_ch7_knockout.csv"} <= names
    # Without --channel: the block's most class-selective channel, the one the app opens on.
    from sevis.analysis.reference import reference_statistics
    from sevis.analysis.selectivity import most_selective_channel
    best = most_selective_channel(reference_statistics(embedded).stats, [block]).channel
    assert main(["export", "channel", "--block", block, "--format", "csv", "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / f"{block}_ch{best}_by_class.csv").is_file()
    assert main(["export", "block", "--block", block, "SE_2_1", "--out", str(tmp_path / "e")]) == 2


def test_channel_view_with_few_reference_images_never_shows_one_image_as_most_and_least(embedded):
    """Six reference images (as the sample photos give an ImageNet model): three most and three least, disjoint;
    the takeaway says what the class means and what the single images show, and they agree with the panels."""
    from collections import OrderedDict

    from sevis.views.channel import ReferenceExcitations, channel_panels, most_and_least
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, (6, 4))
    ref = ReferenceExcitations(["cat", "cup", "rocket"], np.array([0, 0, 1, 1, 2, 2]),
                               [np.zeros((8, 8, 3), np.uint8)] * 6, OrderedDict([("B", s)]), "six photos")
    top, bottom = most_and_least(ref, "B", 1)
    assert len(top) == len(bottom) == 3 and not set(top) & set(bottom)
    result = channel_panels(embedded, ref, "B", 1)
    gallery = result.panels[1].data
    assert set(gallery.loc[gallery["group"] == "most exciting", "index"]).isdisjoint(
        gallery.loc[gallery["group"] == "least exciting", "index"])
    means = {c: s[ref.labels == k, 1].mean() for k, c in enumerate(ref.classes)}
    best = max(means, key=means.get)
    assert f"excited most by {best} on average (mean s = {means[best]:.2f})" in result.takeaway
    most = gallery[gallery["group"] == "most exciting"]["class"].value_counts()
    assert "The 3 single images that excite it most are" in result.takeaway
    assert all(f"{n} {c}" in result.takeaway for c, n in most.items())
    assert "box" in result.panels[0].caption and "single images" in result.panels[1].caption
