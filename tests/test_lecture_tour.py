"""Lecture mode and the Tour (issue 20): the sidebar switch enlarges figure text; the Tour walks every step for the
default model, the centred model and a random-weight timm model, with sentences computed from each; its HTML
handout renders in Chromium; Export offers every view in a fresh session; and the pieces underneath (slides style,
the unit diagram drawn from a model's shapes, overlays, the flip search, gate ranges, sentences for degenerate
models)."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from sevis import find_se_blocks, load_model  # noqa: E402
from sevis.analysis.anatomy import block_anatomy  # noqa: E402
from sevis.analysis.images import NamedImage  # noqa: E402
from sevis.analysis.inference import predict_images  # noqa: E402
from sevis.analysis.tour_search import FlipCount  # noqa: E402
from sevis.figures.plots import SLIDES_FONT, SLIDES_MIN_TEXT, SLIDES_TITLE, slides_style  # noqa: E402
from sevis.views import tour as T  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 900  # seconds per script run: the reference statistics, the control and the sweeps run cold
CHROMIUM = os.environ.get("CHROME_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
BAD_WORDS = re.compile(r"(?i:\bnan\b|\binf\b)|\bNone\b|from (-?[\d.,%]+) to \1\b")


def _run(at: AppTest, view: str | None = None) -> AppTest:
    if view is not None:
        at.session_state["view"] = view
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _sentences(at: AppTest) -> list[str]:
    return [m.value.removeprefix("##### ") for m in at.markdown if m.value.startswith("##### ")]


def _walk_tour(at: AppTest) -> dict[str, dict]:
    """Open the Tour and press Next through every step; return, per step title, its sentences and chart titles."""
    _run(at, "Tour")
    seen = {}
    for i in range(len(T.STEPS)):
        title = at.subheader[0].value
        assert title == f"{i + 1}. {T.STEP_TITLES[T.STEPS[i]]}"
        seen[title] = {"sentences": _sentences(at), "charts": [c["layout"]["title"]["text"] for c in _charts(at)],
                       "warnings": [w.value for w in at.warning]}
        assert len(seen[title]["sentences"]) == 2, seen[title]
        for s in seen[title]["sentences"]:
            assert not BAD_WORDS.search(s), s
            assert s[0].isupper() or s[0].isdigit(), s
        if i < len(T.STEPS) - 1:
            at.button(key="tour_next").click()
            _run(at)
    assert at.button(key="tour_next").disabled
    return seen


def _select_model(at: AppTest, kind: str, timm_name: str | None = None) -> AppTest:
    at.selectbox(key="model_kind").set_value(kind)
    _run(at)
    if timm_name:
        at.selectbox(key="timm_name").set_value(timm_name)
        at.checkbox(key="timm_random").check()
        _run(at)
    return at


# ---------------------------------------------------------------------------------------- the app
@pytest.mark.app
def test_lecture_switch_changes_figure_fonts():
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT), "Live inference")
    normal = _charts(at)
    at.toggle(key="lecture").set_value(True)
    _run(at)
    lecture = _charts(at)
    titles = [c["layout"]["title"]["text"] for c in lecture]
    assert titles[0].startswith("Excitations at every")  # the lead figure comes first, on the presenter's stage
    assert sorted(c["layout"]["title"]["text"] for c in normal) == sorted(titles)
    for before in normal:
        after = lecture[titles.index(before["layout"]["title"]["text"])]
        assert before["layout"]["font"]["size"] < SLIDES_FONT == after["layout"]["font"]["size"]
        assert after["layout"]["title"]["font"]["size"] == SLIDES_TITLE >= 20
        sizes = [a["font"]["size"] for a in after["layout"].get("annotations", []) if a.get("text")]
        assert all(s >= SLIDES_MIN_TEXT >= 16 for s in sizes)
    heat = next(c for c in lecture if c["layout"]["title"]["text"].startswith("Excitations at every"))
    assert heat["layout"]["xaxis"]["showgrid"] is False  # no gridlines through heat maps
    popovers = [b.proto.popover.label for b in at.get("popover")]
    assert not any(label.endswith("Download") for label in popovers)  # fewer controls
    assert "Show students the way in" in popovers  # the QR codes stay, for the students in the room


@pytest.mark.app
def test_tour_default_model_every_step():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    seen = _walk_tour(_run(at))
    charts = [t for step in seen.values() for t in step["charts"]]
    assert any(t.startswith("Where SE sits: SE_2_1 in its residual unit") for t in charts)
    assert any("step by step" in t for t in charts) and any("before and after scaling" in t for t in charts)
    assert any("Fig. 6" in t for t in charts) and any("shallow to deep" in t for t in charts)
    assert any(t.startswith("Knocking out") and "flips the prediction" in t for t in charts)
    assert any(t.startswith("The paper's findings in this model") for t in charts)
    assert any("SE's extra parameters per stage" in t for t in charts)
    assert not any(w for step in seen.values() for w in step["warnings"] if "needs" in w)  # labelled and trained
    # The handout: every step in one HTML page, plotly.js embedded once.
    at.button(key="tour_build").click()
    _run(at)
    assert "Download the handout (HTML)" in [b.proto.label for b in at.get("download_button")]
    page = at.session_state["tour_handout"][1]
    assert all(f"{i + 1}. {T.STEP_TITLES[k]}" in page for i, k in enumerate(T.STEPS))
    assert page.count("plotly.js v") <= 2 and page.count("<figure>") >= len(T.STEPS)


@pytest.mark.app
def test_tour_sentences_change_with_the_model():
    default = _walk_tour(_run(AppTest.from_file(APP, default_timeout=TIMEOUT)))
    at = _select_model(_run(AppTest.from_file(APP, default_timeout=TIMEOUT)),
                       "Our first SE-ResNet (centred Fashion-MNIST)")
    centred = _walk_tour(at)
    assert any("identity shortcut" in s for s in centred["1. Where SE sits"]["sentences"])
    for title in default:
        assert default[title]["sentences"] != centred[title]["sentences"], title
    at = _select_model(_run(AppTest.from_file(APP, default_timeout=TIMEOUT)), "timm ImageNet model",
                       "legacy_seresnet18")
    timm = _walk_tour(at)
    banner = [w for w in at.warning if "has random weights" in w.value]
    assert banner and banner[0].icon == ":material/casino:"  # an icon font glyph, not an emoji
    assert any("256×" in s or "64×" in s for s in timm["1. Where SE sits"]["sentences"])
    needs = {t: step["warnings"] for t, step in timm.items()}
    assert any("labelled reference set" in w for w in needs["4. Class × depth: Fig. 6 and the depth profile"])
    assert any(T.NEEDS_TRAINING in w for w in needs["7. What this model does not show of the paper"])
    assert not any(T.NEEDS_TRAINING in w for w in needs["1. Where SE sits"])  # the architecture needs no training
    for title in timm:
        assert timm[title]["sentences"] != default[title]["sentences"], title


@pytest.mark.app
def test_live_intro_matches_the_gate_range():
    """The gate-relu ablation's s runs past 1: the Live view's intro and heat-strip caption say what that means."""
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT), "Live inference")
    assert not any("above 1" in m.value for m in at.markdown)  # sigmoid gates: 0 to 1
    at.session_state["ablation_name"] = "gate-relu"
    at.selectbox(key="model_kind").set_value("Ablation variant (trained by sevis ablate)")
    _run(at)
    assert any("above 1 = amplified" in m.value for m in at.markdown)
    assert any("above 1 = amplified (here up to" in c.value for c in at.caption)


@pytest.mark.app
def test_export_lists_every_view_in_a_fresh_session(media):
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT), "Export")
    options = at.selectbox(key="ex_view").options
    views = [o for p in at.pills if p.key.startswith("nav_") for o in p.options if o != "Export"]
    assert sorted(options) == sorted(views)  # every view, visited or not
    assert any("computed on demand when picked:" in c.value and "Compare" in c.value for c in at.caption)
    at.selectbox(key="ex_view").set_value("Architecture")
    _run(at)
    assert any("computing it now" in c.value for c in at.caption)
    at.multiselect(key="ex_formats").set_value(["csv"])
    at.button(key="ex_build").click()
    _run(at)
    pack = next(v for k, v in media.items() if k.endswith("_teaching_pack.zip"))
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        readme = zf.read(next(n for n in zf.namelist() if n.endswith("README.md"))).decode()
    assert "## Takeaways" in readme  # the view's computed takeaway travels with the pack


# ---------------------------------------------------------------------------------------- the handout in Chromium
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install chromium)")
def test_tour_handout_renders_in_chromium(tmp_path, embedded):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from sevis.figures.handout import HandoutSection, handout_html
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    image = NamedImage("garment", Image.fromarray(_garment(), "L").convert("RGB"))
    result = predict_images(embedded, [image.image])
    steps = [T.where_step(embedded),
             T.block_step(embedded, block_anatomy(embedded, image, T.pick_block(result)), image),
             T.image_step(result, image, blocks), T.cost_step(embedded)]
    page = handout_html("Tour", "intro",
                        [HandoutSection(s.title, s.sentences, [(p.figure, p.caption) for p in s.panels])
                         for s in steps])
    path = tmp_path / "handout.html"
    path.write_text(page, encoding="utf-8")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            tab.goto(path.as_uri())
            tab.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5",
                                  timeout=120_000)
            assert tab.locator("h2").count() == len(steps)
            assert tab.locator(".js-plotly-plot").count() == sum(len(s.panels) for s in steps)
            assert "Where SE sits" in tab.locator(".js-plotly-plot").first.inner_text()
        finally:
            browser.close()
    from sevis.figures.handout import handout_pdf
    pdf = handout_pdf(page, CHROMIUM)  # printed by headless Chromium after plotly has drawn
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


# ---------------------------------------------------------------------------------------- pieces underneath
def _garment() -> np.ndarray:
    a = np.zeros((28, 28), np.uint8)
    a[3:26, 8:20] = 210
    a[14:26, 13:15] = 0
    return a


def test_slides_style_sizes_and_sorted_wide_bars():
    import plotly.graph_objects as go

    from sevis.figures.plots import SORTED_AXIS, apply_layout
    y = np.random.default_rng(0).random(300)
    fig = go.Figure(go.Bar(x=np.arange(300), y=y, hovertemplate="channel %{x}: %{y}"))
    fig = apply_layout(fig.update_xaxes(title_text="channel index"), "wide")
    assert fig.data[0].marker.line.width == 0  # no grey fog from outlines
    s = slides_style(fig)
    assert s.layout.font.size == SLIDES_FONT and s.layout.title.font.size == SLIDES_TITLE
    assert list(s.data[0].y) == sorted(y, reverse=True)
    assert s.layout.xaxis.title.text == SORTED_AXIS
    assert [int(c[0]) for c in s.data[0].customdata[:3]] == list(np.argsort(-y)[:3])  # channel kept for hover
    assert fig.layout.font.size != SLIDES_FONT  # the original is untouched


def test_unit_diagram_from_the_model_shapes(embedded):
    from sevis.figures.se_diagram import unit_shapes
    u = unit_shapes(embedded)
    assert u.kind == "residual" and u.block.name == "SE_2_1"
    assert u.se_input[0] == u.block.channels and u.output_shape[0] == u.block.channels
    assert [l.text.split(" ")[0] for l in u.branches[0]] == ["1×1", "3×3", "1×1"]  # a bottleneck
    inception = unit_shapes(load_model("family:se-inception", pretrained=False), prefer="inception")
    assert inception.kind == "inception" and len(inception.branches) == 4
    concat = sum(b[-1].out_shape[0] for b in inception.branches)
    assert concat == inception.block.channels  # SE takes the concatenation of all branches


def test_gate_range_words():
    from sevis.core.gates import range_words
    assert "above 1" not in range_words(load_model("embedded", pretrained=False).model)
    relu = load_model("ablation:gate-relu")  # the gate-relu ablation: s = ReLU(...), no upper bound
    assert "above 1 = amplified" in range_words(relu.model)


def test_tour_sentences_for_degenerate_models(embedded_random):
    """Constant gates (W2 = 0: s = σ(b2) for every image and channel) still give sentences, never 'from X to X'."""
    loaded = load_model("embedded", pretrained=False)
    for m in loaded.model.modules():
        if hasattr(m, "fc2"):
            torch.nn.init.zeros_(m.fc2.weight)
            torch.nn.init.zeros_(m.fc2.bias)
    image = NamedImage("garment", Image.fromarray(_garment(), "L").convert("RGB"))
    result = predict_images(loaded, [image.image])
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    steps = [T.block_step(loaded, block_anatomy(loaded, image, T.pick_block(result)), image),
             T.image_step(result, image, blocks, random_weights=True), T.cost_step(loaded),
             T.knockout_step(loaded, None, FlipCount({b.name: 0 for b in blocks}, 200), True),
             T.paper_step(None, "a set", True)]
    for step in steps:
        for s in step.sentences:
            assert not BAD_WORDS.search(s), s
    assert "same factor s = 0.50" in steps[0].sentences[1]
    assert "equally" in steps[1].sentences[1]


def test_model_input_files_are_upscaled_for_slides(embedded):
    from sevis.views.live import MIN_MODEL_INPUT_PX, input_image_files
    files = input_image_files(embedded, "g.png", Image.fromarray(_garment(), "L").convert("RGB"))
    seen = Image.open(io.BytesIO(files["g_model_input.png"]))
    assert min(seen.size) >= MIN_MODEL_INPUT_PX
    side = embedded.input_size
    factor = seen.size[0] // side
    small = np.asarray(seen)[::factor, ::factor]
    assert small.shape[:2] == (side, side)
    assert (np.repeat(np.repeat(small, factor, 0), factor, 1) == np.asarray(seen)).all()  # nearest: hard pixels
