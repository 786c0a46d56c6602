"""The view protocol: every view is computed once (compute -> ViewResult), the app renders that result and
`sevis export` writes it, so both show the same panel titles, the same numbers and the same takeaway; a stored
(prepared) result equals a fresh one; deep links open a view."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from sevis.cli.main import main as sevis  # noqa: E402
from sevis.views.base import ViewRequest, ViewResult  # noqa: E402
from sevis.views.registry import VIEWS, compute_view  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 600
# What `sevis export` needs beside the view's defaults to ask what the app's default state asks: the Tour shows its
# first step; the image views take the sidebar's preselected sample images (written to files of the same names).
EXTRA_ARGS = {"tour": ["--step", "1"]}
IMAGE_VIEWS = {"live": "all", "compare": "all", "knockout": "all", "inside": "first", "channel": "first"}


def app_result(slug: str) -> tuple[AppTest, ViewResult]:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.session_state["view"] = VIEWS[slug].TITLE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    result = at.session_state["view_results"][VIEWS[slug].TITLE]
    assert isinstance(result, ViewResult), f"the app's {slug} view did not render a ViewResult"
    return at, result


def sidebar_images(at: AppTest, folder: Path) -> list[str]:
    """Write the sidebar's picked sample images to files named as the app names them; return their paths."""
    from sevis.analysis.images import sample_images
    from sevis.models.zoo import load_model
    samples = sample_images(load_model("embedded"))
    paths = []
    for name in at.session_state["samples_fashion-mnist"]:
        path = folder / name
        path.write_bytes(samples[name])
        paths.append(str(path))
    return paths


def same_number(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and (
            (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
    return a == b


@pytest.mark.app
@pytest.mark.slow
@pytest.mark.parametrize("slug", list(VIEWS))
def test_app_and_export_show_the_same_result(slug, tmp_path):
    at, shown = app_result(slug)
    images = []
    if IMAGE_VIEWS.get(slug):
        images = sidebar_images(at, tmp_path)
        images = images[:1] if IMAGE_VIEWS[slug] == "first" else images
    out = tmp_path / "out"
    assert sevis(["export", slug, *images, "--out", str(out), "--format", "csv", *EXTRA_ARGS.get(slug, [])]) == 0
    exported = json.loads((out / f"{slug}_view.json").read_text())
    assert shown.panel_titles(), f"the app's {slug} view shows no panel"
    assert exported["panels"] == shown.panel_titles()
    assert exported["takeaway"] == shown.takeaway
    assert set(exported["numbers"]) == set(shown.numbers)
    for name, value in shown.numbers.items():
        assert same_number(exported["numbers"][name], value), (name, exported["numbers"][name], value)
    # what the app put on screen is that result: its takeaway, and a chart for its figures
    if shown.takeaway:
        assert any(shown.takeaway in el.value for el in at.info), "the takeaway is not on screen"
    on_screen = [json.loads(el.proto.spec)["layout"].get("title", {}).get("text") for el in at.get("plotly_chart")]
    figure_titles = [p.figure.layout.title.text for p in shown.panels]
    assert on_screen and all(t in figure_titles for t in on_screen if t), (on_screen, figure_titles)


@pytest.mark.app
def test_deep_link_opens_a_view_and_the_url_follows():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["view"] = "class-depth"
    at.run()
    assert not at.exception
    assert at.session_state["view"] == VIEWS["class-depth"].TITLE
    at.session_state["view"] = VIEWS["architecture"].TITLE
    at.run()
    assert at.query_params["view"] == "architecture"


@pytest.mark.app
def test_deep_link_opens_a_tour_step():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["view"] = "tour"
    at.query_params["step"] = "3"
    at.run()
    assert not at.exception
    assert at.session_state["view"] == VIEWS["tour"].TITLE
    assert at.query_params["step"] == "3"


def test_class_depth_states_one_share_near_all(embedded):
    """Fig. 6's panel titles, the takeaway and the paper table state a block's share of class means within 0.05 of
    "all" from one definition (every class and channel), whatever subset the heat map shows."""
    from sevis.analysis.reference import reference_statistics
    result = compute_view(embedded, "class-depth", ViewRequest(classes=("Trouser", "Bag"), n=10))
    stats = reference_statistics(embedded).stats
    fig6 = result.panel("fig6_class_means").figure
    titles = {a.text.split(":")[0]: a.text for a in fig6.layout.annotations if ":" in (a.text or "")}
    assert titles
    for block, title in titles.items():
        direct = stats.near_all_share(block)
        assert title.startswith(f"{block}: {100 * direct:.0f}% of class means")
        assert result.numbers[f"near_all/{block}"] == pytest.approx(direct)
    paper = result.panel("paper_vs_model").data
    agnostic = paper[paper["finding"].str.contains("agnostic")].iloc[0]
    block = agnostic["blocks"].split(",")[0].strip()
    assert f"{100 * stats.near_all_share(block):.0f}% of class means" in agnostic["this_model"]


def test_unknown_view_and_bad_requests_give_one_message(embedded):
    from sevis.errors import SevisError
    with pytest.raises(SevisError, match="unknown view 'nope'; choose one of"):
        compute_view(embedded, "nope")
    with pytest.raises(SevisError, match="unknown class"):
        compute_view(embedded, "class-depth", ViewRequest(classes=("Unicorn",)))
