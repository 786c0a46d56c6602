"""Feedback in the app (issue 10, §2 and §5): long class names are shortened on bar charts with the full name on
hover, and the knock-out sweep reports progress from its first block on, not only after whole batches."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sevis.analysis.inference import split_batches
from sevis.analysis.knockout import knockout_sweep
from sevis.core.recorder import find_se_blocks
from sevis.data.fashion_mnist import Split, load_reference_set
from sevis.figures import export as E
from sevis.figures.plots import LABEL_WIDTH, Panel, short_labels
from sevis.figures.shared_figures import topk_bar, topk_frame
from sevis.views.knockout import knockout_sweep_panel, prediction_change

# timm's ImageNet names: synonym lists, some very long, and two classes both called "crane".
LONG = ["tabby, tabby cat", "tiger cat", "Egyptian cat",
        "bullet train, bullet", "crane", "crane",
        "African elephant, Loxodonta africana", "African crocodile, Nile crocodile, Crocodylus niloticus",
        "African chameleon, Chamaeleo chamaeleon", "T-shirt/top"]


# ------------------------------------------------------------------------------------------- §2: class names
def test_short_labels_are_short_unique_and_start_like_the_name():
    labels = short_labels(LONG)
    assert len(labels) == len(LONG)
    assert len(set(labels)) == len(labels)
    assert labels[0] == "tabby" and labels[1] == "tiger cat" and labels[-1] == "T-shirt/top"
    assert labels[4] == "crane" and labels[5] == "crane (2)"
    # Three "African …" names share no first synonym, and each stays recognisable and within the width.
    for full, short in zip(LONG, labels):
        core = short.removesuffix(" (2)").rstrip("…")
        assert full.startswith(core)
        assert len(short.removesuffix(" (2)")) <= LABEL_WIDTH


def test_short_labels_clash_falls_back_to_longer_names():
    labels = short_labels(["drake, duck", "drake, male duck of the park", "drake"])
    assert len(set(labels)) == 3
    assert labels[0] == "drake, duck"  # the full name fits: shown whole rather than numbered


def test_topk_bar_shortens_axis_and_keeps_full_name_on_hover():
    top = list(zip(LONG[:5], [0.5, 0.2, 0.1, 0.1, 0.05]))
    frame = topk_frame(top, "cat.jpg")
    fig = topk_bar(frame)
    bar = fig.data[0]
    assert list(bar.y) == short_labels(LONG[:5])
    assert list(bar.customdata) == LONG[:5]
    assert "%{customdata}" in bar.hovertemplate
    assert len(set(bar.y)) == len(bar.y)  # one bar per class, none merged on the category axis
    assert frame["class"].tolist() == LONG[:5]  # the data behind the figure keeps the full names


def test_prediction_change_shortens_axis_and_keeps_full_name_on_hover():
    before = pd.DataFrame({"class": LONG[6:9], "probability": [0.6, 0.3, 0.1]})
    after = pd.DataFrame({"class": [LONG[8], LONG[4], LONG[6]], "probability": [0.5, 0.3, 0.2]})
    fig = prediction_change(before, after)
    for trace in fig.data:
        assert list(trace.customdata) == [*LONG[6:9], LONG[4]]
        assert list(trace.y) == short_labels([*LONG[6:9], LONG[4]])
        assert "%{customdata}" in trace.hovertemplate
    assert list(fig.data[1].x)[2] == 0.5  # the chameleon's probability after, on the chameleon's bar


# ------------------------------------------------------------------------------------------- §5: sweep progress
@pytest.fixture(scope="module")
def batches(embedded_random):
    """Two batches of 50 reference images (10 per class)."""
    ref = load_reference_set()
    idx = np.concatenate([np.flatnonzero(ref.labels == k)[:10] for k in range(len(ref.classes))])
    return list(split_batches(embedded_random, Split(ref.images[idx], ref.labels[idx], ref.classes), 50))


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_sweep_progress_moves_within_the_first_batch(embedded_random, batches, reuse_prefix):
    n_blocks = len(find_se_blocks(embedded_random.model))
    calls: list[int] = []
    sweep = knockout_sweep(embedded_random, batches, progress=calls.append, reuse_prefix=reuse_prefix)
    total = sum(len(y) for _, y in batches)
    assert sum(calls) == total and all(isinstance(c, int) and c > 0 for c in calls)
    # The first report comes after the clean pass of the first batch, before any block of it is knocked out.
    assert calls[0] <= len(batches[0][1]) / (n_blocks + 1) + 1
    assert len(calls) > len(batches)
    assert list(sweep["block"])[0] == "none" and len(sweep) == n_blocks + 1


def test_sweep_panel_fraction_starts_below_one_block(embedded_random, batches):
    n_blocks = len(find_se_blocks(embedded_random.model))
    fractions: list[float] = []
    total = sum(len(y) for _, y in batches)
    knockout_sweep_panel(embedded_random, batches, progress=fractions.append, total=total)
    assert 0 < fractions[0] < 1 / n_blocks + 1e-9
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # Bar updates during the first batch, not one jump per batch.
    first_batch = len(batches[0][1]) / total
    assert sum(f <= first_batch + 1e-9 for f in fractions) > 1


# ------------------------------------------------------------------------------------------- §5: teaching pack
def _panels(n: int) -> list[Panel]:
    top = topk_frame(list(zip(LONG[:3], [0.6, 0.3, 0.1])), "cat.jpg")
    return [Panel(f"top_{i}", f"Top {i}", "caption", topk_bar(top), top) for i in range(n)]


def test_teaching_pack_reports_progress_per_file():
    fractions: list[float] = []
    E.teaching_pack(_panels(3), "Live inference", ["html", "csv"], progress=fractions.append)
    assert len(fractions) == 6  # one report per file: 3 figures × 2 formats
    assert fractions == sorted(fractions) and fractions[0] == pytest.approx(1 / 6) and fractions[-1] == 1.0


@pytest.mark.skipif(not E.static_export_available(), reason="static export needs kaleido and Chrome/Chromium")
def test_static_images_report_each_figure_in_the_callers_thread():
    import threading
    seen: list[str] = []
    images = E.figures_to_images([p.figure for p in _panels(3)], "svg",
                                 progress=lambda n: seen.append(threading.current_thread().name))
    assert len(images) == 3 and len(seen) == 3  # one report per figure, while the browser session runs
    assert set(seen) == {threading.current_thread().name}  # where a Streamlit progress bar can be updated
