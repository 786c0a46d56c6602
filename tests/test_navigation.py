"""The grouped navigation (issue 27): every view once, in the group a visitor looks for it, the open view always
selected in sight, one click (one script run) to open another, only the open view computed, the address bar
following; and 'Show students the way in', QR codes of the app's address and of the link to what is open."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.runtime.memory_media_file_storage import _calculate_file_id  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from sevis.app import share  # noqa: E402
from sevis.views.registry import VIEWS  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 900
ADDRESS = "http://lecture-hall.example:8501/"


def _run(at: AppTest) -> AppTest:
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _navigation(at: AppTest) -> dict[str, tuple[list[str], str | None]]:
    """Return the navigation as shown: group → (its views, the one selected there)."""
    return {p.label: (list(p.options), p.value) for p in at.pills if p.key.startswith("nav_")}


def _qr_modules(png: bytes) -> np.ndarray:
    """Return the dark modules of a QR code PNG drawn by share.qr_png, read back pixel by pixel."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    centres = np.arange(share.QR_BORDER * share.QR_SCALE + share.QR_SCALE // 2,
                        pixels.shape[0] - share.QR_BORDER * share.QR_SCALE, share.QR_SCALE)
    return pixels[np.ix_(centres, centres)] < 128


@pytest.mark.app
def test_grouped_navigation_opens_views_and_shows_the_way_in():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.context = {"url": ADDRESS}
    _run(at)
    nav = _navigation(at)
    assert list(nav) == ["Start", "Explore", "Experiments", "Export"]
    assert nav["Start"][0] == [VIEWS["tour"].TITLE]
    assert nav["Explore"][0] == [VIEWS[s].TITLE for s in ("live", "compare", "class-depth", "inside", "channel",
                                                           "knockout")]
    assert nav["Experiments"][0] == [VIEWS[s].TITLE for s in ("architecture", "ablations", "architectures",
                                                               "training")]
    shown = [v for views, _ in nav.values() for v in views]
    assert sorted(shown) == sorted([m.TITLE for m in VIEWS.values()] + ["Export"])  # every view, once
    # The open view (Live inference, the default) is the one selection, in its group.
    assert [picked for _, picked in nav.values() if picked] == [VIEWS["live"].TITLE] == [at.session_state["view"]]
    # The QR codes: the app's address and the link to what is open, each drawn from that address.
    codes = [c.value for c in at.code]
    assert codes[:2] == [ADDRESS, ADDRESS + "?view=live"]
    images = [url for img in at.get("image") for url in img.value]
    for url in codes[:2]:
        assert any(_calculate_file_id(share.qr_png(url), "image/png") in u for u in images), url

    # One click on a pill of another group opens that view, and only it computes.
    at.pills(key="nav_experiments").set_value(VIEWS["architecture"].TITLE)
    _run(at)
    nav = _navigation(at)
    assert at.session_state["view"] == VIEWS["architecture"].TITLE
    assert [picked for _, picked in nav.values() if picked] == [VIEWS["architecture"].TITLE]
    assert at.query_params["view"] == "architecture"
    assert set(at.session_state["view_results"]) == {VIEWS["live"].TITLE, VIEWS["architecture"].TITLE}
    assert [c.value for c in at.code][1] == ADDRESS + "?view=architecture"
    # A click on the open view's own pill (which would clear it) keeps that view open and selected.
    at.pills(key="nav_experiments").set_value(None)
    _run(at)
    assert at.session_state["view"] == VIEWS["architecture"].TITLE
    assert _navigation(at)["Experiments"][1] == VIEWS["architecture"].TITLE


def test_qr_code_png_is_the_code_of_the_url():
    url = ADDRESS + "?view=tour&step=3"
    png = share.qr_png(url)
    assert np.array_equal(_qr_modules(png), np.array(share.qr_code(url).matrix, dtype=bool))
    assert not np.array_equal(_qr_modules(png), _qr_modules(share.qr_png(ADDRESS)))


def test_app_address_prefers_the_public_url(monkeypatch):
    monkeypatch.delenv(share.PUBLIC_URL_ENV, raising=False)
    assert share.app_address("http://10.0.0.5:8501/?view=live") == "http://10.0.0.5:8501/"
    assert share.app_address("") is None
    monkeypatch.setenv(share.PUBLIC_URL_ENV, "https://sevis.uni.example/se")
    assert share.app_address("http://10.0.0.5:8501/") == "https://sevis.uni.example/se"
    assert share.deep_link(share.app_address(""), {"view": "tour", "step": "2"}) == \
        "https://sevis.uni.example/se?view=tour&step=2"
    monkeypatch.setenv(share.PUBLIC_URL_ENV, "not an address")
    assert share.app_address("http://10.0.0.5:8501/") is None
