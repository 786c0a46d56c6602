"""Click targets on a figure that went through st.cache_data: Streamlit pickles cached results, and a pickled Plotly
figure comes back with its arrays in Plotly's typed-array form ({"dtype", "bdata", "shape"}). Class × depth is
served from such a cache to every session after the first, so add_channel_targets must read that form (it raised
TypeError there, found by the load benchmark: every Class × depth after the first in a server process failed)."""
from __future__ import annotations

import pickle

import numpy as np
import plotly.graph_objects as go

from sevis.figures.shared_figures import add_channel_targets


def _fig6_like() -> go.Figure:
    rng = np.random.default_rng(0)
    fig = go.Figure(go.Heatmap(z=rng.normal(size=(3, 8)), x=np.arange(8, dtype=np.int8), y=["Trouser", "Bag", "Coat"],
                               meta={"block": "SE_2_1", "channels": [4, 0, 7, 1, 3, 2, 6, 5]}))
    fig.add_trace(go.Scatter(x=np.arange(8), y=rng.uniform(size=8), mode="lines"))
    return fig


def test_pickled_figure_is_still_its_own_arrays_in_plotly_form():
    back = pickle.loads(pickle.dumps(_fig6_like()))
    assert isinstance(back.data[0].z, dict) and "bdata" in back.data[0].z  # what the cache hands the view


def test_click_targets_of_a_pickled_figure_equal_the_original_ones():
    original = add_channel_targets(_fig6_like(), ["SE_2_1"])
    cached = add_channel_targets(pickle.loads(pickle.dumps(_fig6_like())), ["SE_2_1"])
    a, b = original.data[-1], cached.data[-1]  # the invisible per-cell markers added for the heat map
    assert len(a.customdata) == 3 * 8
    assert np.array_equal(np.asarray(a.customdata, dtype=object), np.asarray(b.customdata, dtype=object))
    assert list(a.x) == list(b.x) and list(a.y) == list(b.y)
    line_a, line_b = original.data[1], cached.data[1]
    assert np.array_equal(np.asarray(line_a.customdata, dtype=object), np.asarray(line_b.customdata, dtype=object))
