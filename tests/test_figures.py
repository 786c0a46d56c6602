"""Figure builders: pure functions, checked on synthetic data (no model, no browser)."""
from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from sevis.core.statistics import ExcitationStats, similarity_by_depth
from sevis.figures.plots import ALL_COLOR, LEGEND_ROW, LEGEND_TOP, TITLE_LINE, legend_rows, table_figure
from sevis.figures.shared_figures import (
    block_lines,
    class_depth_frame,
    depth_profile,
    excitation_frame,
    fig6,
    topk_bar,
    topk_frame,
)
from sevis.views.architecture import blocks_frame, params_vs_r, se_params_by_stage
from sevis.views.class_depth import fig7
from sevis.views.compare import difference_plot, similarity_plot
from sevis.views.knockout import knockout_bars, prediction_change
from sevis.views.live import heat_strip

BLOCKS = OrderedDict([("SE_2_1", 16), ("SE_3_1", 32), ("SE_4_1", 64), ("SE_5_1", 128)])
CLASSES = ["T-shirt/top", "Trouser", "Bag"]


def _excitations(seed: int = 0) -> "OrderedDict[str, np.ndarray]":
    rng = np.random.default_rng(seed)
    return OrderedDict((b, rng.uniform(0, 1, c)) for b, c in BLOCKS.items())


@pytest.fixture
def stats() -> ExcitationStats:
    """Class-agnostic early block, class-specific late block (means differ by class only at SE_5_1)."""
    rng = np.random.default_rng(0)
    st = ExcitationStats(CLASSES, BLOCKS)
    labels = np.repeat(np.arange(3), 20)
    exc = {}
    for depth, (b, c) in enumerate(BLOCKS.items()):
        offset = (labels[:, None] * 0.25) if b == "SE_5_1" else 0.0
        exc[b] = np.clip(0.3 + offset + rng.normal(0, 0.05, (len(labels), c)), 0, 1)
    st.update(exc, labels)
    return st


def _titles(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _axis_titles(fig: go.Figure, axis: str) -> set[str]:
    return {getattr(fig.layout, k).title.text for k in fig.layout
            if k.startswith(axis) and getattr(fig.layout, k).title.text}


def test_excitation_frame_is_long_and_ordered():
    exc = _excitations()
    frame = excitation_frame(exc, "cat.png")
    assert list(frame.columns) == ["image", "block", "depth", "channel", "s"]
    assert len(frame) == sum(BLOCKS.values())
    assert list(dict.fromkeys(frame["block"])) == list(BLOCKS)
    np.testing.assert_allclose(frame[frame["block"] == "SE_4_1"]["s"], exc["SE_4_1"])


def test_heat_strip_blocks_by_channels_with_hover():
    exc = _excitations()
    fig = heat_strip(excitation_frame(exc, "x"))
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap)
    z = np.asarray(hm.z, dtype=float)
    assert z.shape == (len(BLOCKS), 128)
    np.testing.assert_allclose(z[1, :32], exc["SE_3_1"])
    assert np.isnan(z[0, 16:]).all()  # past a block's last channel: empty, not zero
    assert list(hm.y) == list(BLOCKS)
    for word in ("block", "channel", "s ="):
        assert word in hm.hovertemplate
    assert "channel index" in _axis_titles(fig, "xaxis")


def test_block_lines_one_panel_per_block_and_overlay():
    frame = pd.concat([excitation_frame(_excitations(0), "a"), excitation_frame(_excitations(1), "b")])
    fig = block_lines(frame)
    assert _titles(fig) == list(BLOCKS)
    assert len(fig.data) == 2 * len(BLOCKS)
    assert {t.name for t in fig.data} == {"a", "b"}
    assert "channel index" in _axis_titles(fig, "xaxis")
    assert "excitation s" in _axis_titles(fig, "yaxis")
    assert all("channel" in t.hovertemplate and "block" in t.hovertemplate for t in fig.data)


def test_topk_bar_most_probable_first():
    top = [("Bag", 0.7), ("Coat", 0.2), ("Shirt", 0.05), ("Dress", 0.03), ("Sandal", 0.02)]
    frame = topk_frame(top, "img")
    fig = topk_bar(frame)
    assert list(fig.data[0].y) == ["Bag", "Coat", "Shirt", "Dress", "Sandal"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]


def test_difference_and_similarity():
    a, b = _excitations(0), _excitations(1)
    frame = pd.concat([excitation_frame(a, "a"), excitation_frame(b, "b")])
    fig = difference_plot(frame, "a", "b")
    np.testing.assert_allclose(fig.data[2].y, a["SE_4_1"] - b["SE_4_1"])
    sim = similarity_by_depth(a, b)
    fig = similarity_plot(sim)
    assert list(fig.data[0].x) == list(BLOCKS)
    assert len(fig.data) == 2  # cosine and Pearson for one pair
    sim2 = pd.concat([sim.assign(pair="a vs b"), similarity_by_depth(a, a).assign(pair="a vs a")])
    assert len(similarity_plot(sim2).data) == 2  # one Pearson r line per pair


def test_class_depth_frame_channel_selection(stats):
    full = class_depth_frame(stats, ["Trouser", "Bag"], ["SE_2_1", "SE_5_1"], "all")
    assert set(full["class"]) == {"Trouser", "Bag", "all"}
    assert len(full[(full["block"] == "SE_5_1") & (full["class"] == "all")]) == 128
    first = class_depth_frame(stats, ["Bag"], ["SE_5_1"], "first", 10)
    assert first["channel"].unique().tolist() == list(range(10))
    uni = class_depth_frame(stats, ["Bag"], ["SE_5_1", "SE_4_1"], "uniform", 50, seed=3)
    ch = uni[uni["block"] == "SE_5_1"]["channel"].unique()
    assert len(ch) == 50 and (np.diff(ch) > 0).all() and ch.max() < 128
    again = class_depth_frame(stats, ["Bag"], ["SE_5_1", "SE_4_1"], "uniform", 50, seed=3)
    pd.testing.assert_frame_equal(uni, again)  # the same seed gives the same channels
    # Means are the statistics' means.
    k = stats.classes.index("Bag")
    sel = first[(first["class"] == "Bag")]
    np.testing.assert_allclose(sel["mean"], stats.mean("SE_5_1")[k, :10])
    with pytest.raises(ValueError):
        class_depth_frame(stats, ["Unicorn"], ["SE_5_1"])


def test_fig6_panels_classes_and_all_line(stats):
    frame = class_depth_frame(stats, ["Trouser", "Bag"], list(BLOCKS), "uniform", 12)
    fig = fig6(frame)
    assert _titles(fig) == list(BLOCKS)
    names = [t.name for t in fig.data]
    assert names.count("all") == len(BLOCKS) and names.count("Bag") == len(BLOCKS)
    all_trace = next(t for t in fig.data if t.name == "all")
    assert all_trace.line.dash == "dash" and all_trace.line.color == ALL_COLOR
    assert sum(t.showlegend for t in fig.data) == 3  # one legend entry per class, not per panel
    assert "mean excitation s" in _axis_titles(fig, "yaxis")
    assert "channel index" in _axis_titles(fig, "xaxis")
    assert "Fig. 6" in fig.layout.title.text


def test_fig7_band_is_mean_plus_minus_std(stats):
    frame = class_depth_frame(stats, ["Bag"], ["SE_5_1"], "first", 8)
    fig = fig7(frame, "Bag")
    band, mean = fig.data
    sel = frame[frame["class"] == "Bag"]
    np.testing.assert_allclose(np.asarray(band.y)[:8], sel["mean"] + sel["std"])
    np.testing.assert_allclose(np.asarray(mean.y), sel["mean"])
    assert band.fill == "toself"
    with pytest.raises(ValueError):
        fig7(frame, "Coat")


def test_depth_profile_reads_class_specific_late(stats):
    from sevis.core.statistics import depth_measures
    measures = depth_measures(stats)
    fig = depth_profile(measures)
    spec = np.asarray(fig.data[0].y, float)
    assert list(fig.data[0].x) == list(BLOCKS)
    assert spec[-1] > spec[0] + 0.5  # the synthetic late block is class-specific, the early one is not
    assert fig.data[0].name == "trained model" and len(fig.data) == 4  # one trace per measure panel
    titles = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("Class specificity") for t in titles) and any("0.9" in t for t in titles)


def test_depth_profile_draws_the_untrained_control_dashed(stats):
    from sevis.core.statistics import depth_measures
    measures = depth_measures(stats, control=stats)  # the control is the model itself: learned part 0
    fig = depth_profile(measures)
    control = [t for t in fig.data if t.name.startswith("untrained control")]
    learned = [t for t in fig.data if t.name.startswith("learned part")]
    assert len(control) == 4 and all(t.line.dash == "dash" for t in control)
    assert sum(bool(t.showlegend) for t in control) == 1  # one legend entry for all four panels
    np.testing.assert_allclose(np.asarray(learned[0].y, float), 0.0, atol=1e-12)


def test_knockout_bars_change_in_points():
    sweep = pd.DataFrame({"block": ["none", "SE_2_1", "SE_5_1"], "depth": [-1, 0, 1],
                          "accuracy": [0.9, 0.8, 0.895], "change": [0.0, -0.1, -0.005]})
    fig = knockout_bars(sweep)
    assert list(fig.data[0].x) == ["SE_2_1", "SE_5_1"]
    np.testing.assert_allclose(fig.data[0].y, [-10.0, -0.5])
    assert "90.0%" in fig.layout.title.text
    assert "percentage points" in fig.layout.yaxis.title.text


def test_prediction_change_groups_both():
    before = pd.DataFrame({"class": ["Bag", "Coat"], "probability": [0.8, 0.1]})
    after = pd.DataFrame({"class": ["Coat", "Bag"], "probability": [0.6, 0.3]})
    fig = prediction_change(before, after)
    assert [t.name for t in fig.data] == ["original", "knocked out"]
    assert list(fig.data[1].x) == [0.3, 0.6]


def test_architecture_figures():
    blocks = [SimpleNamespace(name=f"SE_{s}_1", index=i, stage=s, channels=c, squeeze_channels=c // 4,
                              parameters=2 * c * (c // 4) + c + c // 4, kind="SqueezeExcite", path=f"layer{s - 1}.0.se")
              for i, (s, c) in enumerate([(2, 16), (3, 32)])]
    table = blocks_frame(blocks)
    assert list(table.columns[:6]) == ["block", "depth", "stage", "channels", "squeeze width", "parameters"]
    fig = table_figure(table, "SE blocks")
    assert isinstance(fig.data[0], go.Table)
    per_stage = pd.DataFrame({"stage": [2, 3, "total"], "parameters": [100, 200, 300]})
    estimate = pd.DataFrame({"stage": [2, 3, "total"], "estimate": [90.0, 190.0, 280.0]})
    fig = se_params_by_stage(per_stage, estimate)
    assert list(fig.data[0].x) == ["stage 2", "stage 3"]  # the total row is not a bar
    sweep = pd.DataFrame({"r": [4, 8, 16], "se_parameters": [400, 200, 100], "estimate": [380.0, 190.0, 95.0],
                          "se_share": [0.04, 0.02, 0.01]})
    fig = params_vs_r(sweep)
    assert fig.layout.xaxis.title.text == "reduction ratio r"
    assert [t.name.split(" ")[0] for t in fig.data] == ["real", "paper"]


def test_figures_serialise_to_json():
    """Every figure must survive plotly's JSON round trip (what the app and HTML export send)."""
    frame = excitation_frame(_excitations(), "x")
    for fig in (heat_strip(frame), block_lines(frame)):
        assert go.Figure(fig.to_plotly_json()).to_json()


def _fig6_for(classes: list[str]) -> go.Figure:
    rng = np.random.default_rng(0)
    st = ExcitationStats(classes, BLOCKS)
    labels = np.repeat(np.arange(len(classes)), 3)
    st.update({b: rng.uniform(0, 1, (len(labels), c)) for b, c in BLOCKS.items()}, labels)
    return fig6(class_depth_frame(st, classes, list(BLOCKS), "first", 10))


def test_fig6_wrapped_legend_stays_between_title_and_panels():
    from sevis.data.fashion_mnist import FASHION_MNIST_CLASSES
    ten, two = _fig6_for(list(FASHION_MNIST_CLASSES)), _fig6_for(list(FASHION_MNIST_CLASSES[:2]))
    rows = legend_rows(ten)
    assert rows >= 2 and legend_rows(two) == 1  # ten classes and "all" do not fit one row of the app's column
    for fig, n in ((ten, rows), (two, 1)):
        lay = fig.layout
        assert lay.title.yref == "container" and lay.title.yanchor == "top"  # the title is pinned to the top
        legend_top = round((1 - lay.legend.y) * lay.height, 6)  # px from the top of the figure
        assert legend_top >= LEGEND_TOP  # under the title line
        # The last legend row (rows are LEGEND_ROW px apart plus plotly's 10 px gap between legend groups, each
        # LEGEND_ROW px tall) ends above the band of subplot titles (LEGEND_ROW px over the panels).
        assert legend_top + (n - 1) * (LEGEND_ROW + 10) + 2 * LEGEND_ROW <= lay.margin.t
    # The extra rows came out of the figure's height, not out of the panels.
    assert ten.layout.height - ten.layout.margin.t == two.layout.height - two.layout.margin.t


def test_similarity_with_many_inputs_names_the_anchor_once():
    a, b, c = _excitations(0), _excitations(1), _excitations(2)
    long = "IMG_20240312_101512_photo.png"
    sim = pd.concat([similarity_by_depth(a, b).assign(pair=f"{long} vs class mean: Trouser"),
                     similarity_by_depth(a, c).assign(pair=f"{long} vs my_sneaker.jpg")])
    fig = similarity_plot(sim, "Similarity of the excitation patterns at each depth")
    assert [t.name for t in fig.data] == ["class mean: Trouser", "my_sneaker.jpg"]
    assert long in fig.layout.title.subtitle.text and long not in fig.layout.title.text
    # legend under the subtitle
    assert round((1 - fig.layout.legend.y) * fig.layout.height, 6) >= LEGEND_TOP + TITLE_LINE
    np.testing.assert_allclose(fig.data[1].y, sim[sim["pair"].str.endswith("my_sneaker.jpg")]["pearson"])


def test_a_figure_through_pickle_gets_its_arrays_back_for_lecture_mode():
    """st.cache_data pickles view results: the figure comes back with Plotly's typed arrays, which lecture mode's
    bar sorting cannot read until with_arrays decodes them."""
    import pickle

    import plotly.graph_objects as go

    from sevis.figures.plots import WIDE_BARS, has_typed_arrays, sort_wide_bars, with_arrays
    y = np.random.default_rng(0).random(WIDE_BARS + 10)
    fig = go.Figure(go.Bar(x=np.arange(len(y)), y=y))
    back = pickle.loads(pickle.dumps(fig))
    assert has_typed_arrays(back) and not has_typed_arrays(fig)
    fixed = with_arrays(back)
    assert not has_typed_arrays(fixed)
    np.testing.assert_array_equal(np.asarray(fixed.data[0].y), y)
    assert np.asarray(sort_wide_bars(fixed).data[0].y)[0] == y.max()
