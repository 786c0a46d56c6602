"""The Tour, Knock-out and Architecture views as ViewResults (issue 24): every Tour step is computed by tour.compute
(so `sevis prepare` can store it) and survives the prepared file's JSON; the flip count is one definition, stated
in the same words by the Tour and the Knock-out view and equal to a direct count; bad requests give one message."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sevis import ExcitationRecorder, find_se_blocks, load_model
from sevis.analysis.images import default_sample_images
from sevis.analysis.reference import reference_inputs
from sevis.analysis.tour_search import SEARCH_IMAGES, FlipCount
from sevis.errors import SevisError
from sevis.figures.handout import handout_html
from sevis.views import knockout as K
from sevis.views import tour as T
from sevis.views.base import ViewRequest
from sevis.views.prepared import result_from_json, result_to_json
from sevis.views.registry import compute_view


def _json_round_trip(result):
    """Return `result` as a prepared file stores and reads it (JSON text in between)."""
    return result_from_json(json.loads(json.dumps(result_to_json(result))))


def test_tour_prepares_one_request_per_step_with_the_image_only_where_shown(embedded):
    *requests, every = T.prepared_requests(embedded)
    image = default_sample_images(embedded)[0]
    assert [r.step for r in requests] == list(range(len(T.STEPS)))
    assert every == ViewRequest()  # every step at once: the Export view's pack and `sevis export tour`
    for r in requests:
        shows_image = T.STEPS[r.step] in T.IMAGE_STEPS
        assert r.images == ((image,) if shows_image else ())
        # what the app asks for with its preselected sidebar images is exactly the prepared request
        assert T.step_request(r.step, default_sample_images(embedded)).key() == r.key()


@pytest.mark.parametrize("step", [T.STEPS.index("block"), T.STEPS.index("cost")])
def test_a_tour_step_survives_the_prepared_file(embedded, step):
    result = compute_view(embedded, "tour", T.prepared_requests(embedded)[step], prepared=False)
    [shown] = T.steps_of(result)
    [stored] = T.steps_of(_json_round_trip(result))
    assert shown.key == stored.key == T.STEPS[step]
    assert (stored.title, stored.sentences, stored.formula, stored.needs) == \
        (shown.title, shown.sentences, shown.formula, shown.needs)
    assert [p.title for p in stored.panels] == [p.title for p in shown.panels] and stored.panels
    assert len(stored.sentences) == 2
    if T.STEPS[step] == "block":
        assert stored.formula and result.numbers["block"] in stored.panels[0].title
        assert T.formula_text(stored).startswith(T.FORMULA_TEXT)
    else:
        table = stored.panels[0].data
        assert result.numbers["se_parameters"] == int(table["parameters"].sum())
        assert f"SE adds {result.numbers['se_parameters']:,} parameters" in stored.sentences[0]
    page = handout_html("Tour", "intro", [T.handout_section(s) for s in T.steps_of(result)])
    assert f"1. {shown.title}" in page and shown.sentences[0].split("(")[0] in page


def test_tour_refuses_a_step_it_does_not_have(embedded):
    n = len(T.STEPS)
    with pytest.raises(SevisError, match=f"the Tour has steps 1 to {n}; there is no step {n + 1}"):
        compute_view(embedded, "tour", ViewRequest(step=n))


def test_views_without_se_blocks_say_so():
    plain = load_model("embedded-plain")
    tour = compute_view(plain, "tour", ViewRequest(step=0), prepared=False)
    knockout = compute_view(plain, "knockout", ViewRequest(), prepared=False)
    architecture = compute_view(plain, "architecture", prepared=False)
    assert tour.notes == [f"{plain.name} has no SE blocks, so there is no tour to give."] and not tour.panels
    assert knockout.notes == ["This model has no SE blocks to knock out."]
    assert architecture.notes == ["This model has no SE blocks."] and architecture.numbers["se_blocks"] == 0


def test_architecture_numbers_are_the_model_counts(embedded):
    result = compute_view(embedded, "architecture", prepared=False)
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    total = sum(p.numel() for p in embedded.model.parameters())
    se = sum(b.parameters for b in blocks)
    assert result.numbers["parameters"] == total and result.numbers["se_parameters"] == se
    assert result.numbers["se_share"] == pytest.approx(se / (total - se))
    assert result.takeaway.startswith(f"SE adds {se:,} parameters ({se / (total - se):.1%} of the plain model)")
    assert result.panel_titles()[0] == f"SE blocks of {embedded.name}"


def test_knockout_refuses_unknown_blocks_and_modes(embedded):
    with pytest.raises(SevisError, match="no SE block named SE_9_9 in .*; blocks: SE_2_1"):
        compute_view(embedded, "knockout", ViewRequest(knockout_blocks=("SE_9_9",)), prepared=False)
    with pytest.raises(SevisError, match="unknown knock-out mode 'zero'"):
        compute_view(embedded, "knockout", ViewRequest(mode="zero"), prepared=False)


def test_knockout_applies_the_requested_blocks_to_every_image(embedded):
    images = tuple(default_sample_images(embedded))
    result = K.compute(embedded, ViewRequest(images=images, knockout_blocks=("SE_5_3", "SE_2_1")), sweep=False)
    assert [p.title for p in result.panels] == [f"Prediction for {im.name} with SE_2_1, SE_5_3 knocked out"
                                                for im in images]
    for im in images:
        assert result.numbers[f"knocked_out/{im.name}"] == ["SE_2_1", "SE_5_3"]  # depth order
        assert f"preselected/{im.name}" not in result.numbers
        assert result.takeaway.count(f"{im.name}: ") == 1  # several images: each sentence names its image
    assert "flips" not in result.numbers and result.panel("knockout_sweep") is None  # sweep=False
    nothing = K.compute(embedded, ViewRequest(images=images[:1], knockout_blocks=()), sweep=False)
    assert nothing.numbers[f"knocked_out/{images[0].name}"] == []  # an emptied picker knocks out nothing
    assert nothing.takeaway.startswith("No block is knocked out, so the prediction stays")


@pytest.mark.slow
def test_the_tour_and_the_knockout_view_state_one_flip_count(embedded):
    """The Tour's step 5 and the Knock-out view count flips with one function, state them in the same sentence,
    and the count is what knocking each block out over the first 200 reference images does, counted directly."""
    tour = compute_view(embedded, "tour", ViewRequest(step=T.STEPS.index("knockout")), prepared=False)
    knockout = compute_view(embedded, "knockout", ViewRequest(images=tuple(default_sample_images(embedded))[:1]),
                            prepared=False)
    names = [b.name for b, _ in find_se_blocks(embedded.model)]
    flip_numbers = {k: v for k, v in tour.numbers.items() if k == "flips" or k.startswith("flips/")}
    assert flip_numbers == {k: knockout.numbers[k] for k in flip_numbers}
    counts = FlipCount({b: tour.numbers[f"flips/{b}"] for b in names}, tour.numbers["flips/images"])
    sentence = counts.sentence()
    assert sentence in T.steps_of(tour)[0].sentences and sentence in knockout.takeaway
    assert f"changes the top class in {tour.numbers['flips']} of the {SEARCH_IMAGES * len(names)} image × block " \
           f"pairs ({SEARCH_IMAGES} reference images × {len(names)} blocks)" in sentence
    # counted directly: the model with s := 1 at one block, over the first 200 reference images
    _, batches, _, _ = reference_inputs(embedded)
    x = torch.cat([b for b, _ in batches])[:SEARCH_IMAGES]
    with torch.inference_mode():
        top = embedded.model(x).argmax(1)
        direct = {}
        for b in names:
            with ExcitationRecorder(embedded.model, blocks=[b], overrides={b: "identity"}, record=False):
                direct[b] = int((embedded.model(x).argmax(1) != top).sum())
    assert counts.per_block == direct and tour.numbers["flips"] == sum(direct.values()) > 0
    assert np.argmax([direct[b] for b in names]) == names.index(counts.most)


def test_the_tour_names_the_channel_the_channel_view_opens_on(embedded):
    """One definition of the most class-selective channel (sevis.analysis.selectivity): the Tour's step 6 and the
    Channel view's default state the same block, channel and selectivity."""
    tour = compute_view(embedded, "tour", ViewRequest(step=T.STEPS.index("channel")), prepared=False)
    channel = compute_view(embedded, "channel", ViewRequest(), prepared=False)
    assert (tour.numbers["channel/block"], tour.numbers["channel/channel"]) == \
        (channel.numbers["block"], channel.numbers["channel"])
    assert tour.numbers["channel/selectivity"] == pytest.approx(channel.numbers["selectivity"])
    [step] = T.steps_of(tour)
    assert step.sentences[0].startswith(f"Channel {channel.numbers['channel']} of {channel.numbers['block']} depends "
                                        f"most on the class: the class explains "
                                        f"{channel.numbers['selectivity']:.0%}")


@pytest.mark.app
def test_knockout_app_runs_a_sweep_that_is_not_stored_on_request(tmp_path, monkeypatch):
    """Over a folder the sweep is not stored beside the model: the app shows the images' knock-outs at once and runs
    the sweep (and the flip count) when the button is pressed, then renders the full result."""
    pytest.importorskip("streamlit")
    from PIL import Image
    from streamlit.testing.v1 import AppTest

    from sevis.data.fashion_mnist import load_reference_set
    ref = load_reference_set()
    for k, name in enumerate(ref.classes):
        if "/" in name:  # a class name that cannot be a folder name is left out
            continue
        (tmp_path / "set" / name).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(ref.labels == k)[:6]):
            Image.fromarray(np.asarray(ref.images[i], np.uint8)).save(tmp_path / "set" / name / f"{j}.png")
    monkeypatch.setenv("SEVIS_DATA_DIRS", str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=600)
    at.run()
    at.text_input(key="ref_folder").set_value("set")
    at.run()
    at.session_state["view"] = K.TITLE
    at.run()
    assert not at.exception and not at.error
    assert [b.key for b in at.button if b.key == "ko_run"] == ["ko_run"]
    assert "flips" not in at.session_state["view_results"][K.TITLE].numbers
    at.button(key="ko_run").click()
    at.run()
    at.run()
    assert not at.exception and not at.error
    result = at.session_state["view_results"][K.TITLE]
    assert result.panel("knockout_sweep") is not None and result.numbers["flips/images"] == 54
    assert not [b for b in at.button if b.key == "ko_run"]
    assert any(result.takeaway in i.value for i in at.info)
