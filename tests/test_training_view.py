"""The Training view: its numbers are a direct evaluation of the snapshots, and the app renders it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sevis.analysis.inference import split_batches
from sevis.core.recorder import ExcitationRecorder
from sevis.models.zoo import load_model
from sevis.names import snapshot_epochs

EPOCHS = snapshot_epochs("embedded")
pytestmark = pytest.mark.skipif(len(EPOCHS) < 2, reason="the retrained model's snapshots are not there")


@pytest.fixture(scope="module")
def history():
    from sevis.views.training import training_history
    return training_history("embedded", [EPOCHS[0], EPOCHS[-1]])


@torch.inference_mode()
def _direct(epoch: int, block: str) -> tuple[float, np.ndarray]:
    """Accuracy and the per-class mean s at `block` of snapshot `epoch`, computed here without sevis.views."""
    loaded = load_model(f"embedded@{epoch}")
    ref = loaded.reference_set()
    correct = 0
    per_class: dict[int, list[np.ndarray]] = {}
    with ExcitationRecorder(loaded.model) as rec:
        for x, y in split_batches(loaded, ref):
            correct += int((loaded.model(x).argmax(1).numpy() == y).sum())
            s = rec.pop()[block].numpy()
            for k in np.unique(y):
                per_class.setdefault(int(k), []).append(s[y == k])
    sums = np.stack([np.concatenate(per_class[k]).mean(0) for k in range(len(ref.classes))])
    return correct / len(ref), sums


def test_the_views_numbers_equal_a_direct_evaluation_of_each_snapshot(history):
    for snap in history.snapshots:
        block = snap.stats.blocks[-1]
        accuracy, class_means = _direct(snap.epoch, block)
        assert snap.accuracy == pytest.approx(accuracy, abs=1e-9)
        np.testing.assert_allclose(snap.stats.mean(block), class_means, atol=1e-5)
    recorded = [s.test_accuracy for s in history.snapshots]
    assert recorded[0] < 0.3 and recorded[-1] > recorded[0] + 0.4  # chance at initialisation, then learned


def test_emergence_and_takeaway_are_computed_from_the_snapshots(history):
    from sevis.views.training import emergence, specificity_by_epoch, training_panels, training_takeaway
    table = specificity_by_epoch(history)
    last = history.snapshots[-1].measures.set_index("block")
    part = table[table["epoch"] == EPOCHS[-1]].set_index("block")
    np.testing.assert_allclose(part["class_specificity"], last["class_specificity"])
    em = emergence(history)
    assert set(em["class_specific_from_epoch"].dropna()) <= set(EPOCHS)
    text = training_takeaway(history)
    assert f"at epoch {EPOCHS[0]}" in text and f"at epoch {EPOCHS[-1]}" in text
    assert "nan" not in text and "None" not in text
    panels = training_panels(history, EPOCHS[-1], ["Trouser", "Bag"], list(history.snapshots[-1].stats.blocks[-2:]))
    assert [p.key for p in panels][:3] == ["training_accuracy", "training_emergence", "training_emergence_table"]
    fig6 = panels[3].data
    assert set(fig6["class"]) == {"Trouser", "Bag", "all"}


@pytest.mark.slow
def test_the_views_result_holds_every_snapshot_and_states_its_numbers(history):
    from sevis.errors import SevisError
    from sevis.views.base import ViewRequest
    from sevis.views.training import compute
    embedded = load_model("embedded")
    result = compute(embedded, ViewRequest())
    keys = [p.key for p in result.panels]
    assert keys == ["training_accuracy", "training_emergence", "training_emergence_table"] + [
        f"training_{what}_epoch_{e:03d}" for e in EPOCHS for what in ("fig6", "depth")]
    for snap in history.snapshots:  # the fixture measured these two snapshots on its own
        assert result.numbers[f"accuracy/epoch_{snap.epoch}"] == pytest.approx(snap.accuracy, abs=1e-12)
        assert f"{snap.accuracy:.1%} at epoch {snap.epoch}" in result.takeaway
    assert {v for k, v in result.numbers.items() if k.startswith("class_specific_from_epoch/")} <= set(EPOCHS) | {None}
    # a snapshot model opens on its base's snapshots; another model on the default's, with a note saying so
    assert compute(load_model(f"embedded@{EPOCHS[0]}"), ViewRequest()).numbers == result.numbers
    picked = compute(embedded, ViewRequest(classes=("Bag", "Sandal"), blocks=("SE_5_1",)))
    fig6 = picked.panel(f"training_fig6_epoch_{EPOCHS[-1]:03d}").data
    assert set(fig6["class"]) == {"Bag", "Sandal", "all"} and set(fig6["block"]) == {"SE_5_1"}
    with pytest.raises(SevisError, match="unknown class"):
        compute(embedded, ViewRequest(blocks=("SE_9_9",)))
    one = compute(embedded, ViewRequest(epoch=EPOCHS[0]))  # the app's slider on one snapshot: that one alone
    assert [p.key for p in one.panels] == keys[:3] + [f"training_fig6_epoch_{EPOCHS[0]:03d}",
                                                      f"training_depth_epoch_{EPOCHS[0]:03d}"]
    assert one.panels[3].title == result.panel(f"training_fig6_epoch_{EPOCHS[0]:03d}").title
    with pytest.raises(SevisError, match="no snapshot after epoch 999"):
        compute(embedded, ViewRequest(epoch=999))


def _training_page() -> None:
    """The Training view as the app shows it, with the default model picked."""
    from sevis import find_se_blocks
    from sevis.app import training
    from sevis.app.common import Context, get_model
    loaded = get_model("embedded")
    training.render(Context(loaded, ("embedded", True, None), blocks=[b for b, _ in find_se_blocks(loaded.model)]))


@pytest.mark.app
def test_the_app_renders_the_training_view():
    import json

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_training_page, default_timeout=600)
    at.run(timeout=600)
    assert not at.exception, [e.value for e in at.exception]
    titles = [json.loads(el.proto.spec)["layout"]["title"]["text"] for el in at.get("plotly_chart")]
    assert "Accuracy at each snapshot" in titles
    assert any(t.startswith("When each block becomes class-specific") for t in titles)
    assert any(t.startswith(f"Mean excitation per class after epoch {EPOCHS[-1]}") for t in titles)
    assert any(i.value.startswith("**Takeaway.** Reference-set accuracy goes from") for i in at.info)
    at.select_slider(key="tr_epoch").set_value(EPOCHS[0]).run(timeout=600)
    titles = [json.loads(el.proto.spec)["layout"]["title"]["text"] for el in at.get("plotly_chart")]
    assert any(t.startswith(f"Mean excitation per class after epoch {EPOCHS[0]}") for t in titles)
    # other classes: the result of that request holds the snapshot on screen alone, drawn for those classes
    at.multiselect(key="tr_classes").set_value(["Bag", "Sandal"]).run(timeout=600)
    assert not at.exception, [e.value for e in at.exception]
    fig6 = next(json.loads(el.proto.spec) for el in at.get("plotly_chart")
                if json.loads(el.proto.spec)["layout"]["title"]["text"].startswith(
                    f"Mean excitation per class after epoch {EPOCHS[0]}"))
    assert {t.get("name") for t in fig6["data"]} >= {"Bag", "Sandal"}
    assert not {"Trouser", "Sneaker"} & {t.get("name") for t in fig6["data"]}
