"""Every view of the app, and every step of the Tour, for one model of each kind sevis loads (issue 28).

One AppTest per model kind picks the model the way a user does (the sidebar), then opens each view tab in turn and
walks the Tour with its Next button. After every run: no exception, no traceback, and every sentence
on the page (markdown, captions, info / warning / error boxes, headers, chart titles) passes the sentence checks of
sevis.figures.sentences (no "nan", "None", "inf", no "from X to X"). At the end of the walk no view may have shown
an error box at all: a model without labels or trained weights is told so in info and warning boxes.

Written against the app's UI (sidebar widgets and tab labels), not against view internals, so that it keeps working
while the views change inside. How a view is reached lives in `view_labels` and `open_view` alone.

Models without prepared reference statistics (ablation, family, snapshot) measure a small labelled folder of the
bundled images (PER_CLASS per class) through the sidebar's reference-set field instead of all 1000 images.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from sevis.figures.sentences import broken  # noqa: E402
from sevis.views import tour as T  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 900  # seconds per script run: reference statistics run cold for models without prepared ones
TOUR = "Tour"
# One model of each kind sevis loads; small ones where there is a choice.
ABLATION = "gate-relu"  # its gates are unbounded: the variant whose undefined numbers once broke sentences
FAMILY = "se-mobilenet"  # another family than the ResNets: depthwise blocks, SE named per block
SNAPSHOT_EPOCH = 1
SNAPSHOT = f"embedded@{SNAPSHOT_EPOCH}"  # the default model after one epoch, picked in the sidebar
TIMM = "efficientnet_b0"
TORCHVISION = "efficientnet_b0"  # the model of issue 28
CHECKPOINT_ARCH = "fmnist_se_resnet"  # the small centred SE-ResNet, named by the sidebar's Architecture picker
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+')
PER_CLASS = 6  # images per class in the small labelled folder: just above the 5 per-class statistics need


# ---------------------------------------------------------------------------------------- driving the app
def run(at: AppTest, where: str = "") -> AppTest:
    """Run the script once; return the app after checking that nothing raised (the page hides the exception's
    text from students: its traceback is in the captured log)."""
    at.run(timeout=TIMEOUT)
    assert not at.exception, (where, [e.value for e in at.exception])
    return at


# How a view is reached: these two alone (the grouped navigation's pills; ?view=<slug> links).
def view_labels(at: AppTest) -> list[str]:
    """Return the labels of the app's views, in the navigation's order."""
    return [o for p in at.pills if p.key.startswith("nav_") for o in p.options]


def open_view(at: AppTest, label: str) -> AppTest:
    """Open the view called `label` and run the script."""
    at.session_state["view"] = label
    return run(at, label)


def shown_texts(at: AppTest) -> list[str]:
    """Return every text the page shows a reader: markdown, captions, alert boxes, headers and chart titles."""
    texts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader"):
        texts += [str(e.value) for e in at.get(kind)]
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        texts.append(str(title.get("text", "") if isinstance(title, dict) else title))
    return [t for t in texts if t]


def check_page(at: AppTest, where: str) -> None:
    """Assert that the page reads well: no traceback in an error box, no broken sentence."""
    for e in at.get("error"):
        assert not TRACEBACK.search(str(e.value)), (where, e.value)
    bad = [(text, broken(text)) for text in shown_texts(at) if broken(text)]
    assert not bad, (where, bad)


def walk(at: AppTest) -> dict[str, list[str]]:
    """Open every view tab, and every Tour step; return, per view (Tour steps as "Tour 1".."Tour 8"), its errors."""
    errors: dict[str, list[str]] = {}
    for label in view_labels(at):
        open_view(at, label)
        check_page(at, label)
        errors[label] = [str(e.value) for e in at.main.error]
        if label != TOUR:
            continue
        for i in range(len(T.STEPS)):
            where = f"{TOUR} {i + 1}"
            check_page(at, where)
            errors[where] = [str(e.value) for e in at.main.error]
            assert at.subheader and at.subheader[0].value.startswith(f"{i + 1}. "), where
            # the step's two sentences computed from this model, in large type
            assert len([m for m in at.markdown if m.value.startswith("##### ")]) == 2, where
            if i < len(T.STEPS) - 1:
                at.button(key="tour_next").click()
                run(at, f"{TOUR} {i + 2}")
        assert at.button(key="tour_next").disabled
    return errors


# ---------------------------------------------------------------------------------------- picking a model
def new_app() -> AppTest:
    """Return a fresh session of the app, run once (it opens on the default model, embedded)."""
    return run(AppTest.from_file(APP, default_timeout=TIMEOUT))


def pick(at: AppTest, kind: str, choose: dict[str, str] | None = None, check: tuple[str, ...] = ()) -> AppTest:
    """Pick the sidebar's model kind `kind` (by its label), then the sidebar selectboxes in `choose` (key -> option)
    and tick the checkboxes in `check` (keys); return the app, run."""
    at.selectbox(key="model_kind").set_value(kind)
    run(at)
    for key, option in (choose or {}).items():
        at.selectbox(key=key).set_value(option)
    for key in check:
        at.checkbox(key=key).check()
    return run(at)


def shown_model(at: AppTest) -> str:
    """Return the model the page says it shows (the sidebar's summary line starts with its name in bold)."""
    line = next(c.value for c in at.sidebar.caption if c.value.startswith("**") and " parameters" in c.value)
    return line[2:line.index("**", 2)]


def use_folder(at: AppTest, folder: Path) -> AppTest:
    """Type `folder` into the sidebar's labelled reference set field; return the app, run."""
    at.text_input(key="ref_folder").set_value(str(folder))
    run(at)
    refused = [e.value for e in at.sidebar.error]
    assert not refused and not any(c.value.startswith("Using the bundled") for c in at.sidebar.caption), refused
    return at


def random_weights_file(tmp_path: Path, arch: str) -> Path:
    """Write random weights of sevis architecture `arch`, with no model card, to tmp_path; return the file."""
    from safetensors.torch import save_file

    from sevis.models.resnet import SEResNet, architecture_config
    torch.manual_seed(0)
    model = SEResNet(architecture_config(arch))
    path = tmp_path / "student_weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


# ---------------------------------------------------------------------------------------- the matrix
@pytest.fixture(scope="module")
def small_reference(tmp_path_factory) -> Path:
    """A labelled folder of the bundled in-context reference images, PER_CLASS of each class: the per-class views
    and Tour steps of models without prepared statistics measure this instead of all 1000 images."""
    from PIL import Image

    from sevis.data.fashion_mnist import load_reference_set
    ref = load_reference_set(variant="context")
    root = tmp_path_factory.mktemp("shared") / "labelled"
    for k, cls in enumerate(ref.classes):
        (root / cls).mkdir(parents=True)
        for i, a in enumerate(ref.images[ref.labels == k][:PER_CLASS]):
            Image.fromarray(a, "L").save(root / cls / f"{i}.png")
    return root


@pytest.fixture
def shared(small_reference, monkeypatch) -> Path:
    """The small labelled folder, shared with the app's sidebar (SEVIS_DATA_DIRS)."""
    monkeypatch.setenv("SEVIS_DATA_DIRS", str(small_reference.parent))
    return small_reference


def check_walk(at: AppTest, model: str) -> None:
    """Walk every view and Tour step of `at`, which must show `model` throughout; no view may show an error box
    (a model without labels or training says so in info / warning boxes instead)."""
    assert shown_model(at) == model
    errors = walk(at)
    assert len(errors) > len(T.STEPS) + 10  # every tab was opened, and every Tour step
    assert not {view: e for view, e in errors.items() if e}, (model, errors)
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert shown_model(at) == model


@pytest.mark.app
@pytest.mark.slow
def test_embedded_model_every_view():
    check_walk(new_app(), "embedded")


@pytest.mark.app
@pytest.mark.slow
def test_ablation_variant_every_view(shared):
    at = pick(use_folder(new_app(), shared), "Ablation variant (trained by sevis ablate)", {"ablation_name": ABLATION})
    check_walk(at, f"ablation:{ABLATION}")


@pytest.mark.app
@pytest.mark.slow
def test_family_run_every_view(shared):
    at = pick(use_folder(new_app(), shared), "Architecture model (trained by sevis family)", {"family_name": FAMILY})
    check_walk(at, f"family:{FAMILY}")


@pytest.mark.app
@pytest.mark.slow
def test_training_snapshot_every_view(shared):
    at = pick(use_folder(new_app(), shared), "Training snapshot of our SE-ResNet-50 layout (sevis train --snapshots)",
              {"snapshot_epoch": SNAPSHOT_EPOCH})
    check_walk(at, SNAPSHOT)


@pytest.mark.app
@pytest.mark.slow
def test_timm_model_with_random_weights_every_view():
    at = pick(new_app(), "timm ImageNet model", {"timm_name": TIMM}, check=("timm_random",))
    check_walk(at, TIMM)


@pytest.mark.app
@pytest.mark.slow
def test_torchvision_model_with_random_weights_every_view():
    # Issue 28: Live inference, the view that opens first, crashed for every torchvision model.
    at = pick(new_app(), "torchvision ImageNet model", {"torchvision_name": TORCHVISION}, check=("torchvision_random",))
    check_walk(at, TORCHVISION)


@pytest.mark.app
@pytest.mark.slow
def test_checkpoint_file_with_arch_every_view(tmp_path):
    weights = random_weights_file(tmp_path, CHECKPOINT_ARCH)
    at = new_app()
    at.selectbox(key="model_kind").set_value("Uploaded checkpoint")
    run(at)
    at.selectbox(key="ckpt_arch").set_value(f"sevis:{CHECKPOINT_ARCH}")
    at.file_uploader(key="ckpt_file").set_value([(weights.name, weights.read_bytes(), "application/octet-stream")])
    check_walk(run(at), weights.stem)
