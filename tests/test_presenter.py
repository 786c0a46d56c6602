"""Lecture mode as a presenter layout (issue 27): the page header and the view's introduction fold away, the lead
figure comes first with the view's computed takeaway right under it as its caption, the controls follow; captions
are dark enough to read from the back of a hall (contrast ≥ 4.5:1) at every size, and phones get a layout of
their own."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from sevis.app import style  # noqa: E402
from sevis.views.registry import VIEWS  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 900


def _children(node) -> list:
    return list(getattr(node, "children", {}).values())


def _find(node, key: str):
    """Return the first element under `node` (depth first) whose key is `key`, or None."""
    for child in _children(node):
        if getattr(child, "key", None) == key:
            return child
        found = _find(child, key)
        if found is not None:
            return found
    return None


@pytest.mark.app
def test_lecture_mode_puts_the_figure_first_with_its_takeaway():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["view"] = VIEWS["class-depth"].TITLE
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.markdown if h.value.startswith("## Inside")]  # the header, outside lecture mode
    takeaway = next(i.value for i in at.info if i.value.startswith("**Takeaway.**"))
    at.toggle(key="lecture").set_value(True)
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    main = [c for c in _children(at.main) if c.type != "markdown" or not c.value.startswith("<style>")]
    assert [c.key for c in main[:2]] == ["nav", "lecture_stage"]  # the navigation, then the stage
    stage = _children(main[1])
    assert [c.type for c in stage] == ["plotly_chart", "info", "caption"]
    fig6 = json.loads(stage[0].proto.spec)["layout"]["title"]["text"]
    assert "Fig. 6" in fig6  # the view's lead figure, ...
    assert stage[1].value == takeaway  # ... its takeaway right under it, then the figure's own caption
    assert main[2].type == "expander" and main[2].label == "How to read this view"  # the intro, folded
    assert not any(m.value.startswith("## Inside") for m in at.markdown)  # the header waits in the sidebar
    assert any(c.value.startswith("How SE blocks rescale channels") for c in at.sidebar.caption)
    assert sum(i.value == takeaway for i in at.info) == 1  # said once
    at.toggle(key="lecture").set_value(False)
    at.run(timeout=TIMEOUT)
    assert not [c for c in _children(at.main) if c.key == "lecture_stage"]


def test_captions_have_enough_contrast_at_every_size():
    assert style.contrast_ratio("#000000") == pytest.approx(21.0)
    assert style.contrast_ratio("#ffffff") == pytest.approx(1.0)
    assert style.contrast_ratio("#83858c") < 4.5  # Streamlit's own caption grey on white, which the page replaces
    assert style.contrast_ratio(style.CAPTION) >= 4.5 and style.contrast_ratio(style.TEXT) >= 4.5
    for css in (style.PAGE_CSS, style.LECTURE_CSS):
        rule = re.search(r'\[data-testid="stCaptionContainer"\] p[^{]*\{color: (#[0-9a-f]{6}) !important;', css)
        assert rule and rule.group(1) == style.CAPTION
    sizes = [float(s) for s in re.findall(r"stCaptionContainer.*?font-size: ([\d.]+)rem", style.LECTURE_CSS, re.S)]
    assert sizes and min(sizes) >= 1.0  # at least 16 px from the back of the hall
    # Neither style sheet hides Streamlit's element toolbar (each chart's full-screen button).
    assert "stElementToolbar" not in style.PAGE_CSS + style.LECTURE_CSS


def test_phones_get_stacked_columns_and_charts_that_keep_their_width():
    phone = style.PAGE_CSS[style.PAGE_CSS.index("@media (max-width: 640px)"):]
    assert '[data-testid="stColumn"] {min-width: 100% !important;}' in phone  # columns stack
    assert "overflow-x: auto" in phone  # a chart of several panels scrolls sideways, never squeezed


@pytest.mark.app
def test_lecture_mode_puts_a_tour_steps_figure_under_back_next_with_its_sentences():
    """The Tour's stage sits under Back / Next (so the arrow keys' buttons stay on screen), holding the step's
    figure with the step's two computed sentences right under it; outside lecture mode the sentences come first."""
    from sevis.app.tour import STEP_KEY
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["view"] = VIEWS["tour"].TITLE
    at.session_state[STEP_KEY] = 3  # Fig. 6
    at.session_state["lecture"] = True
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    stage = _find(at.main, "lecture_stage")
    assert stage is not None, "no stage in lecture mode"
    shown = _children(stage)
    assert shown[0].type == "plotly_chart"
    sentences = [m.value.removeprefix("##### ") for m in _children(shown[1]) if m.type == "markdown"]
    assert len(sentences) == 2 and all(s.endswith(".") for s in sentences), sentences
    assert "Fig. 6" in json.loads(shown[0].proto.spec)["layout"]["title"]["text"]
    assert [b.label for b in at.button if b.key in ("tour_back", "tour_next")] == ["← Back", "Next →"]
    said = [m.value for m in at.markdown if m.value.startswith("##### ")]
    assert said == [f"##### {s}" for s in sentences]  # said once, under the figure
