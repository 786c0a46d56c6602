"""The Tour's steps of issue 27: Fig. 6 as a heat map with the teacher's class, how class specificity emerges over
the training snapshots, SE-Inception from the families; their numbers against a direct computation, their
sentences for degenerate inputs, and the app's pickers (image, class) and arrow-key shortcuts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sevis import load_model
from sevis.analysis.inference import predict_images
from sevis.analysis.reference import paper_blocks, reference_statistics
from sevis.analysis.selectivity import channel_selectivity
from sevis.analysis.snapshot_measures import SnapshotSpecificity
from sevis.core.recorder import find_se_blocks
from sevis.figures.sentences import broken
from sevis.figures.shared_figures import NEAR_ALL_TOLERANCE
from sevis.figures.tour_steps import training_step
from sevis.figures.tour_words import num
from sevis.names import PRETRAINED_DIR, family_dir
from sevis.views import tour as T
from sevis.views.registry import compute_view

EPOCHS = (0, 1, 20)  # the snapshots the training test keeps: the initialisation, one epoch, the end
PER_CLASS = 5  # images per class of the small labelled folder: the least per-class statistics accept
APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _step(loaded, key: str, **kw):
    result = compute_view(loaded, "tour", T.step_request(T.STEPS.index(key), **kw), prepared=False)
    [step] = T.steps_of(result)
    return step, result


@pytest.fixture
def small_folder(tmp_path: Path, embedded) -> Path:
    """A labelled folder of the bundled in-context reference images, PER_CLASS per class."""
    ref = embedded.reference_set()
    for k, cls in enumerate(ref.classes):
        sub = tmp_path / "ref" / cls.replace("/", "-")
        sub.mkdir(parents=True)
        for i, a in enumerate(ref.images[ref.labels == k][:PER_CLASS]):
            Image.fromarray(a).save(sub / f"{i}.png")
    return tmp_path / "ref"


@pytest.fixture
def few_snapshots(tmp_path: Path, monkeypatch) -> Path:
    """The default model's shipped snapshots after EPOCHS only (links), as $SEVIS_SNAPSHOT_DIR."""
    folder = tmp_path / "snaps" / "fmnist_se_resnet50.snapshots"
    folder.mkdir(parents=True)
    for e in EPOCHS:
        (folder / f"epoch_{e:03d}.safetensors").symlink_to(
            PRETRAINED_DIR / "fmnist_se_resnet50.snapshots" / f"epoch_{e:03d}.safetensors")
    monkeypatch.setenv("SEVIS_SNAPSHOT_DIR", str(folder.parent))
    return folder


def _direct_specificity(loaded, folder: Path) -> dict[str, float]:
    """Class specificity per SE block computed here from every image's s: Σ_c SS_between / Σ_c SS_total."""
    paths = sorted(folder.glob("*/*.png"))
    labels = np.array([p.parent.name for p in paths])
    result = predict_images(loaded, [Image.open(p).convert("RGB") for p in paths])
    out = {}
    for block, s in result.excitations.items():
        s = s.numpy().astype(np.float64)
        grand = s.mean(0)
        between = sum((labels == c).sum() * ((s[labels == c].mean(0) - grand) ** 2).sum() for c in set(labels))
        out[block] = between / ((s - grand) ** 2).sum()
    return out


# ---------------------------------------------------------------------------------------- training
def test_training_step_states_each_snapshots_class_specificity(embedded, small_folder, few_snapshots):
    step, result = _step(embedded, "training", folder=str(small_folder))
    direct = {e: _direct_specificity(load_model(f"embedded@{e}"), small_folder) for e in EPOCHS}
    means = {e: float(np.mean(list(direct[e].values()))) for e in EPOCHS}
    for e in EPOCHS:
        assert result.numbers[f"training/mean_specificity/epoch_{e}"] == pytest.approx(means[e], abs=1e-4)
    [panel] = step.panels
    table = panel.data.set_index("epoch")
    assert list(table.index) == list(EPOCHS)
    for e in EPOCHS:
        for block, v in direct[e].items():
            assert table.loc[e, block] == pytest.approx(v, abs=1e-4), (e, block)
    first, second = step.sentences
    assert f"before training (epoch 0) the blocks' class specificity averages {num(means[0])}" in first
    assert f"after 20 epochs it averages {num(means[20])}" in first
    share = (means[1] - means[0]) / (means[20] - means[0])
    assert second.startswith(f"After 1 epoch it is already {num(means[1])}: {share:.0%} of the whole change")
    assert not step.needs and not any(broken(s) for s in step.sentences)


def test_training_step_without_snapshots_says_so_in_one_sentence(embedded, tmp_path, monkeypatch):
    monkeypatch.setenv("SEVIS_SNAPSHOT_DIR", str(tmp_path))
    step, _ = _step(embedded, "training")
    assert len(step.sentences) == 1 and "not in this installation" in step.sentences[0] and not step.panels
    assert not broken(step.sentences[0])


@pytest.mark.parametrize("case", ["constant", "one snapshot", "no change"])
def test_training_sentences_read_well_for_degenerate_snapshots(embedded, case):
    blocks = ["SE_2_1", "SE_5_3"]
    values = {"constant": [[np.nan, np.nan], [np.nan, np.nan]], "one snapshot": [[0.3, 0.4]],
              "no change": [[0.3, 0.4], [0.3, 0.41]]}[case]
    rows = [{"epoch": e, "block": b, "depth": d, "class_specificity": v, "accuracy": np.nan}
            for e, vs in zip((0, 5), values) for d, (b, v) in enumerate(zip(blocks, vs))]
    step = training_step(embedded, SnapshotSpecificity("embedded", "a set", pd.DataFrame(rows)))
    assert len(step.sentences) == 2 and step.panels
    assert not any(broken(s) for s in step.sentences), step.sentences
    assert all(s[0].isupper() for s in step.sentences)


# ---------------------------------------------------------------------------------------- SE-Inception
def test_inception_step_reads_the_family_model(embedded):
    family = load_model("family:se-inception")
    step, result = _step(embedded, "inception")
    rows = json.loads((family_dir() / "se-inception.json").read_text())["evaluation"]["excitation"]
    for row in rows:
        assert result.numbers[f"inception/class_specificity/{row['block']}"] == pytest.approx(row["class_specificity"])
    block = find_se_blocks(family.model)[0][0]
    parts = block.path.split(".")
    while not hasattr(family.model.get_submodule(".".join(parts)), "branches"):  # up to the module holding SE
        parts.pop()
    branches = len(family.model.get_submodule(".".join(parts)).branches)
    assert branches > 1
    first, second = step.sentences
    assert f"at {block.name} its {branches} branches are concatenated into {block.channels} channels" in first
    assert "whereas fmnist_se_resnet50 puts SE on a residual branch" in first
    spec = [r["class_specificity"] for r in rows]
    assert second.startswith(f"Its class specificity is {num(spec[0])} at {rows[0]['block']} and {num(spec[-1])}")
    assert [p.key for p in step.panels] == ["tour_inception_where", "tour_inception_depth"]
    assert f"concatenate {branches} branches" in json.dumps(step.panels[0].figure.to_plotly_json()["layout"])


def test_inception_step_without_the_family_weights_says_so(embedded, tmp_path, monkeypatch):
    monkeypatch.setenv("SEVIS_FAMILY_DIR", str(tmp_path))
    step, result = _step(embedded, "inception")
    assert len(step.sentences) == 1 and "not in this installation" in step.sentences[0] and not step.panels
    assert "sevis family" in step.sentences[0] and not broken(step.sentences[0])


# ---------------------------------------------------------------------------------------- Fig. 6 and the class
def test_class_depth_step_draws_the_heat_map_with_the_chosen_class(embedded):
    default, _ = _step(embedded, "class_depth")
    chosen, result = _step(embedded, "class_depth", cls="Coat")
    heat = chosen.panels[0].figure
    assert {t.type for t in heat.data} == {"heatmap"} and "Fig. 6" in heat.layout.title.text
    assert list(heat.data[0].y)[0] == "Coat" and result.numbers["class"] == "Coat"
    assert list(default.panels[0].figure.data[0].y)[0] != "Coat"
    assert chosen.sentences[0] == default.sentences[0] and chosen.sentences[1] != default.sentences[1]
    stats = reference_statistics(embedded).stats
    shown = paper_blocks([b for b, _ in find_se_blocks(embedded.model)])
    k = stats.classes.index("Coat")
    far = [np.mean(np.abs(stats.mean(b)[k] - stats.overall_mean(b)) > NEAR_ALL_TOLERANCE)
           for b in (shown[0], shown[-1])]
    assert chosen.sentences[1] == (f"In Fig. 6, Coat's mean s lies more than {NEAR_ALL_TOLERANCE} from the mean "
                                   f"over all images at {far[0]:.0%} of {shown[0]}'s channels and {far[1]:.0%} of "
                                   f"{shown[-1]}'s.")


def test_channel_step_singles_out_the_chosen_class(embedded, small_folder):
    step, result = _step(embedded, "channel", cls="Bag", folder=str(small_folder))
    stats = reference_statistics(embedded, str(small_folder)).stats
    k = stats.classes.index("Bag")
    best = max(((float(channel_selectivity(stats, b)[c]), b, int(c)) for b in stats.blocks
                for c in np.flatnonzero(np.nanargmax(stats.mean(b), axis=0) == k)), key=lambda t: t[0])
    n = result.numbers
    assert (n["channel_for_class/block"], n["channel_for_class/channel"]) == (best[1], best[2])
    assert n["channel_for_class/selectivity"] == pytest.approx(best[0]) and "channel/block" not in n
    assert step.sentences[0].startswith(f"Of the channels whose mean s is highest for Bag, channel {best[2]} of "
                                        f"{best[1]} depends most on the class")
    assert step.panels[0].data["class"].iloc[0] == "Bag"  # its class means, highest first


def test_step_requests_carry_the_class_only_where_shown(embedded):
    for i, key in enumerate(T.STEPS):
        request = T.step_request(i, cls="Coat")
        assert request.classes == (("Coat",) if key in T.CLASS_STEPS else None)
    assert T.step_request(T.STEPS.index("class_depth"), cls=None).classes is None  # the prepared default


# ---------------------------------------------------------------------------------------- the app
@pytest.mark.app
def test_app_tour_choices_change_the_step_and_arrows_page():
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=900)
    at.run()
    at.session_state["view"] = "Tour"
    at.session_state["tour_step"] = T.STEPS.index("class_depth")
    at.run()
    assert not at.exception
    assert at.button(key="tour_back").proto.shortcut.lower() == "left"
    assert at.button(key="tour_next").proto.shortcut.lower() == "right"
    before = [m.value for m in at.markdown if m.value.startswith("##### ")]
    at.selectbox(key="tour_class").set_value("Coat").run()
    after = [m.value for m in at.markdown if m.value.startswith("##### ")]
    assert not at.exception and after != before and after[1].startswith("##### In Fig. 6, Coat's mean s")
    at.session_state["tour_step"] = T.STEPS.index("image")
    at.run()
    first = [m.value for m in at.markdown if m.value.startswith("##### ")][0]
    other = next(o for o in at.selectbox(key="tour_image").options if o.startswith("Coat"))
    at.selectbox(key="tour_image").set_value(other).run()
    assert not at.exception
    now = [m.value for m in at.markdown if m.value.startswith("##### ")][0]
    assert now != first and now.startswith(f"##### For {other}")
