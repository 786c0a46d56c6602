"""Figures and tables as a lecture hall and a phone see them (issue 27): readable tables (human column names, 2-3
significant digits, every row shown), integer axes where the positions are integers, feature maps large enough to
read, a subtitle that never runs into the panel titles, and Fig. 6 stacked on a phone. The last test renders the
figures in Chromium and checks that no two texts overlap and none is cut off."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sevis.analysis.anatomy import block_anatomy
from sevis.analysis.images import default_sample_images
from sevis.analysis.reference import paper_blocks, reference_statistics
from sevis.core.recorder import find_se_blocks
from sevis.figures.overlay import overlay_panel
from sevis.figures.plots import (
    MISSING,
    PHONE_WIDTH,
    readable_table,
    significant,
    slides_style,
    stacked,
    table_figure,
)
from sevis.figures.shared_figures import class_depth_frame, deviation_frame, feature_map_grid, fig6_deviation
from sevis.views.architecture import architecture_panels
from sevis.views.inside import anatomy_panels, default_block


@pytest.fixture(scope="module")
def trouser(embedded):
    """The first sample image the app preselects (a Trouser of the bundled reference set)."""
    return default_sample_images(embedded)[0]


@pytest.fixture(scope="module")
def anatomy(embedded, trouser):
    blocks = [b for b, _ in find_se_blocks(embedded.model)]
    return block_anatomy(embedded, trouser, default_block(blocks))


@pytest.fixture(scope="module")
def fig6_heat(embedded):
    """Fig. 6 as deviations over the bundled reference set, at the paper's blocks, four classes."""
    stats = reference_statistics(embedded).stats
    blocks = paper_blocks([b for b, _ in find_se_blocks(embedded.model)])
    frame = class_depth_frame(stats, list(stats.classes[1:9:2]), blocks, "uniform", 50)
    return fig6_deviation(deviation_frame(frame), shares={b: stats.near_all_share(b) for b in blocks})


def test_significant_digits():
    assert [significant(x) for x in (0.0001234, 0.5, 12.345, 12345.6, 1.0, 0.0)] == \
        ["0.000123", "0.5", "12.3", "12,346", "1", "0"]
    assert significant(0.31764, 2) == "0.32"
    assert significant(float("nan")) == MISSING and significant(-0.0001, 2) == "-0.0001"


def test_tables_show_human_names_and_few_digits(embedded):
    """The Architecture view's tables on the shipped model: no snake_case header, every number at most 3
    significant digits (or a whole number), shares as percentages; the interactive form keeps numbers."""
    blocks, per_stage = architecture_panels(embedded)[:2]
    shown = readable_table(blocks.data)
    assert "SE block" in shown.columns and not any("_" in c for c in shown.columns)
    assert shown["parameters"].str.fullmatch(r"[\d,]+").all()
    stage = readable_table(per_stage.data, percent=("share", "of_base"))
    assert not any("_" in c for c in stage.columns)
    for cell in stage["share"]:
        digits = cell.rstrip("%").replace(".", "").lstrip("0")
        assert cell.endswith("%") and len(digits) <= 3, cell
    numeric = readable_table(per_stage.data, percent=("share",), text=False)
    assert pd.api.types.is_float_dtype(numeric["share (%)"])
    assert numeric["share (%)"].sum() == pytest.approx(200, rel=0.01)  # the stages and the total row: 100% each


def test_training_table_words():
    """Emergence rows as the Training view states them: 'never' for a block that never emerged, 2 digits."""
    from sevis.views.training import emergence_words
    table = pd.DataFrame({"block": ["SE_2_1", "SE_5_3"], "stage": [2, 5], "depth": [0, 15],
                          "final_class_specificity": [0.31764, 0.9012], "control_class_specificity": [0.0589, 0.1],
                          "final_learned": [0.0627, 0.8], "class_specific_from_epoch": [np.nan, 3.0]})
    shown = emergence_words(table)
    assert list(shown.columns) == ["SE block", "stage", "depth", "class specificity (final)", "untrained control",
                                   "learned (final − control)", "class-specific from epoch"]
    assert list(shown["class specificity (final)"]) == ["0.32", "0.9"]
    assert list(shown["class-specific from epoch"]) == ["never", "3"]


def test_table_figures_show_every_row(embedded):
    """A table figure is as tall as its rows need (plotly would scroll inside it otherwise), also in lecture mode
    where rows are 30 px high."""
    panel = architecture_panels(embedded)[0]
    rows = len(panel.data)
    fig = table_figure(panel.data, panel.title)
    assert fig.layout.height - fig.layout.margin.t - fig.layout.margin.b >= 24 * (rows + 1)
    big = slides_style(fig)
    assert big.data[0].cells.height == 30
    assert big.layout.height - big.layout.margin.t - big.layout.margin.b >= 30 * (rows + 1)


def test_hidden_units_axis_has_whole_units(anatomy):
    """The bottleneck of SE_2_1 has C/r = 2 hidden units: ticks at 0 and 1 only, never 0.5."""
    chain = anatomy_panels(anatomy, 4)[0].figure
    hidden = len(anatomy.hidden)
    axis = chain.layout.xaxis2
    assert axis.title.text.startswith("hidden unit")
    assert (axis.dtick, axis.tickformat, tuple(axis.range)) == (1, "d", (-0.5, hidden - 0.5))
    assert chain.layout.xaxis.tickformat == "d"  # channels too


def test_feature_maps_are_large_enough(anatomy):
    """Four channels each side wrap to four per line: each map at least 150 px on a 1000 px figure (they were
    ~85 px eight across), in the app and in lecture mode."""
    maps = anatomy_panels(anatomy, 4)[1].figure
    for fig in (maps, slides_style(maps)):
        lay = fig.layout
        plot_w = 1000 - lay.margin.l - lay.margin.r
        plot_h = lay.height - lay.margin.t - lay.margin.b
        xs = {tuple(lay[k].domain) for k in lay.to_plotly_json() if k.startswith("xaxis")}
        ys = {tuple(lay[k].domain) for k in lay.to_plotly_json() if k.startswith("yaxis")}
        assert (len(xs), len(ys)) == (4, 4)
        side = min(min(d[1] - d[0] for d in xs) * plot_w, min(d[1] - d[0] for d in ys) * plot_h)
        assert side >= 150, side


def test_fig6_stacks_on_a_phone(fig6_heat):
    """On a phone Fig. 6's heat maps stand in one column, in reading order, each under its own title, every
    panel with its class names, the colour bar under the plot."""
    phone = stacked(fig6_heat)
    lay = phone.layout
    keys = sorted((k for k in lay.to_plotly_json() if k.startswith("xaxis")), key=lambda k: int(k[5:] or 1))
    assert all(tuple(lay[k].domain) == (0, 1) for k in keys)
    ys = [tuple(lay["yaxis" + k[5:]].domain) for k in keys]
    assert all(a[0] > b[1] for a, b in zip(ys, ys[1:]))  # top to bottom, with a gap for the next title
    titles = sorted((a for a in lay.annotations if "% of class means" in (a.text or "")), key=lambda a: -a.y)
    assert [round(a.y, 6) for a in titles] == [round(y[1], 6) for y in ys]
    assert [a.text.split(":")[0] for a in titles] == [
        a.text.split(":")[0] for a in sorted(fig6_heat.layout.annotations, key=lambda a: (-a.y, a.x))
        if "% of class" in (a.text or "")]
    assert all(lay["yaxis" + k[5:]].showticklabels for k in keys)
    assert lay.coloraxis.colorbar.orientation == "h"
    assert stacked(stacked(fig6_heat)).layout.height == lay.height  # one column stays as it is


def test_phone_browsers_are_recognised():
    from sevis.app.screen import PHONE_AGENT
    assert PHONE_AGENT.search("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
                              "like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
    assert PHONE_AGENT.search("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                              "Chrome/124.0 Mobile Safari/537.36")
    assert not PHONE_AGENT.search("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                  "Chrome/124.0 Safari/537.36")


# ------------------------------------------------------------------------------------------ rendered in Chromium
TEXT_BOXES = """() => {
  const root = document.querySelector('svg.main-svg').getBoundingClientRect();
  return [...document.querySelectorAll('svg text')].filter(t => t.textContent.trim()).map(t => {
    const r = t.getBoundingClientRect();
    const turned = /rotate\\((?!0[,)])/.test((t.getAttribute('transform') || '')
                                            + (t.parentNode.getAttribute('transform') || ''));
    return {text: t.textContent, turned, x0: r.left - root.left, y0: r.top - root.top, x1: r.right - root.left,
            y1: r.bottom - root.top, w: root.width, h: root.height};
  }).filter(b => b.x1 > b.x0);
}"""


def _clashes(boxes: list[dict]) -> list[str]:
    """Return the pairs of texts that overlap (by more than a pixel each way) and the texts cut off by the figure's
    edge. Turned texts (slanted tick labels) are left out: their boxes overlap by construction."""
    flat = [b for b in boxes if not b["turned"]]
    bad = [f"{a['text'][:30]!r} × {b['text'][:30]!r}" for i, a in enumerate(flat) for b in flat[i + 1:]
           if min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > 1 and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > 1]
    return bad + [f"{b['text'][:30]!r} cut off" for b in boxes
                  if b["x0"] < -1 or b["y0"] < -1 or b["x1"] > b["w"] + 1 or b["y1"] > b["h"] + 1]


@pytest.mark.browser
def test_no_text_overlaps_or_is_cut_off(embedded, trouser, anatomy, fig6_heat):
    """Rendered by plotly.js in Chromium: the subtitle of 'before and after scaling' (Inside a block, Tour step 2)
    clears its panel titles in lecture mode at 1280 and 1920 px; the Channel view's map with its subtitle; Inside a
    block's chain and feature maps; Fig. 6 stacked at a phone's width. No two texts overlap, none is cut off."""
    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    from sevis.figures.export import find_chrome
    chrome = find_chrome()
    if chrome is None:
        pytest.skip("no Chromium here")
    chain, maps = anatomy_panels(anatomy, 4)[:2]
    overlay = overlay_panel(embedded, anatomy, trouser)
    c = int(np.argmin(anatomy.s))
    yy, xx = np.indices(anatomy.u[c].shape)
    one = pd.concat([pd.DataFrame({"row": f"channel {c}", "column": col, "y": yy.ravel(), "x": xx.ravel(),
                                   "value": arr.ravel()}) for col, arr in (("U", anatomy.u[c]),
                                                                           ("U·s", anatomy.scaled[c]))])
    channel_map = feature_map_grid(one, f"Channel {c} of {anatomy.block.name}: U and U·s", ["U", "U·s"],
                                   [f"channel {c}"], subtitle=f"{trouser.name}, s = {anatomy.s[c]:.2f}")
    cases = [("overlay, lecture 1280", slides_style(overlay.figure), 1150),
             ("overlay, lecture 1920", slides_style(overlay.figure), 1800),
             ("channel map, lecture", slides_style(channel_map), 1150),
             ("chain, lecture", slides_style(chain.figure), 1150),
             ("feature maps, lecture", slides_style(maps.figure), 1150),
             ("Fig. 6, phone", stacked(fig6_heat), PHONE_WIDTH)]
    problems = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chrome, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1900, "height": 1000})
            page.set_content(f"<html><body style='margin:0'><div id=f></div><script>{get_plotlyjs()}</script>"
                             "</body></html>")
            for name, fig, width in cases:
                spec = json.loads(fig.to_json())
                spec["layout"]["width"] = width
                page.evaluate("(s) => Plotly.newPlot('f', s.data, s.layout, {staticPlot: true})", spec)
                bad = _clashes(page.evaluate(TEXT_BOXES))
                if bad:
                    problems[name] = bad[:4]
        finally:
            browser.close()
    assert not problems, problems
