"""Every sentence a view writes reads as a sentence for any numbers: hypothesis drives each takeaway with NaN,
equal, constant and extreme values and checks that none holds "nan", "None", "inf" or "from X to X", and that
shown arithmetic adds up on screen."""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sevis.analysis.anatomy import BlockAnatomy
from sevis.analysis.images import ImageResult
from sevis.analysis.paper import paper_vs_model
from sevis.core.recorder import SEBlock
from sevis.figures.plots import Panel
from sevis.figures.sentences import broken, change, curve, difference, finish, num, pct
from sevis.views.channel import channel_words
from sevis.views.class_depth import class_depth_takeaway
from sevis.views.compare import compare_takeaway
from sevis.views.inside import anatomy_takeaway
from sevis.views.knockout import KnockoutResult, default_knockout, knockout_image_takeaway, knockout_takeaway
from sevis.views.live import live_takeaway

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAN = float("nan")
# The values that broke sentences: undefined, equal, constant, and extreme.
VALUE = st.one_of(st.just(NAN), st.just(None), st.just(0.0), st.just(1.0), st.just(0.5), st.just(-0.0),
                  st.just(1e-300), st.just(1e300), st.just(float("inf")),
                  st.floats(-1.0, 1.0, allow_nan=False), st.floats(0.0, 1.0, allow_nan=False))
PROB = st.one_of(st.just(0.0), st.just(1.0), st.just(0.99936), st.just(0.5), st.floats(0.0, 1.0, allow_nan=False))
BLOCKS = ["SE_2_1", "SE_2_2", "SE_3_1", "SE_3_2", "SE_4_1", "SE_5_1", "SE_5_2", "SE_5_3"]
STAGES = [2, 2, 3, 3, 4, 5, 5, 5]


def assert_sentence(text: str | None) -> None:
    if text is None:
        return
    assert not broken(text), (broken(text), text)
    assert "None" not in text and not re.search(r"\bnan\b", text, re.I), text
    assert text.strip() == text and text[-1] in ".!?", text


# ----------------------------------------------------------------------------------------- the builder
@SETTINGS
@given(VALUE, VALUE)
def test_change_never_reads_from_x_to_x(a, b):
    text = change(a, b)
    assert not broken(text)
    if num(a) == num(b):
        assert "from" not in text


@SETTINGS
@given(st.lists(VALUE, min_size=1, max_size=8))
def test_curve_names_every_shape_without_breaking(values):
    labels = [f"B{i}" for i in range(len(values))]
    text = curve(values, labels)
    assert not broken(text), text
    finite = [float(num(v)) for v in values if num(v) != "undefined"]
    steps = np.diff(finite)
    if len(finite) > 2 and (steps > 0).any() and (steps < 0).any():
        assert "not monotonic" in text, text


def test_curve_calls_a_reversal_by_its_name():
    text = curve([0.12, 0.64, 0.45, 0.66], ["SE_2_3", "SE_3_1", "SE_4_6", "SE_5_3"])
    assert text == ("rises from 0.12 at SE_2_3 to 0.66 at SE_5_3, but not monotonically: 0.64 at SE_3_1, "
                    "then 0.45 at SE_4_6")
    assert curve([0.1, 0.3, 0.2], ["a", "b", "c"]) == "is not monotonic: 0.10 at a, highest 0.30 at b, 0.20 at c"


@SETTINGS
@given(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False))
def test_shown_differences_add_up_on_screen(a, b):
    ta, tb, d = difference(a, b)
    assert float(d) == pytest.approx(float(ta) - float(tb), abs=1e-9)


def test_difference_of_the_issue_adds_up():
    assert difference(0.1249, 0.0549) == ("0.12", "0.05", "+0.07")  # not +0.06 from the unrounded numbers


def test_finish_guards_against_leftovers():
    assert finish("it moves P from 99.936% to 99.936%") == "It moves P at 99.936% (unchanged)."
    assert finish("the control reaches 0.05 and nan") == "The control reaches 0.05 and undefined."
    assert pct(0.99936) == "99.936%" and pct(NAN) == "undefined"


# ----------------------------------------------------------------------------------------- every view
def _measures(spec, control, control_lo, seeds) -> pd.DataFrame:
    n = len(BLOCKS)
    m = pd.DataFrame({"block": BLOCKS, "stage": STAGES, "class_specificity": spec[:n],
                      "decorrelation": control[:n], "saturation": spec[:n], "mean_s": control[:n],
                      "near_all_share": spec[:n], "spread": control_lo[:n],
                      "control_class_specificity": control[:n],
                      "control_class_specificity_min": control_lo[:n], "control_class_specificity_max": control[:n],
                      "control_seeds": seeds})
    m["learned_specificity"] = m["class_specificity"] - m["control_class_specificity"]
    return m


FLOATS8 = st.lists(st.one_of(st.just(NAN), st.just(0.5), st.floats(0, 1, allow_nan=False)), min_size=8, max_size=8)


@SETTINGS
@given(FLOATS8, FLOATS8, FLOATS8, st.integers(1, 3), st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=6,
                                                               unique=True))
def test_class_depth_takeaway_and_paper_table(spec, control, lo, seeds, shown):
    m = _measures(spec, control, lo, seeds)
    sweep = pd.DataFrame({"block": ["none"] + BLOCKS, "change": [0.0] + [-(v if v == v else 0) for v in lo]})
    paper = paper_vs_model(m, sweep, sweep)
    for text in paper["this_model"]:
        assert not broken(text), text
    shown = [b for b in BLOCKS if b in shown]
    assert_sentence(class_depth_takeaway(m, paper, shown))
    text = class_depth_takeaway(m, paper, shown)
    for block in set(BLOCKS) - set(shown):  # quotes only the blocks on screen
        assert block not in text


def test_class_depth_takeaway_of_the_gate_relu_variant():
    """The sentence that read "the untrained control already reaches 0.05 and nan"."""
    m = _measures([0.12] * 8, [0.05] * 7 + [NAN], [0.05] * 7 + [NAN], 3)
    text = class_depth_takeaway(m, None, ["SE_2_2", "SE_5_3"])
    assert_sentence(text)
    assert "0.05 at SE_2_2" in text and "+0.07 (0.12 − 0.05)" in text and "undefined" in text


@SETTINGS
@given(st.lists(st.one_of(st.just(NAN), st.just(0.0), st.floats(-0.2, 0.05, allow_nan=False)), min_size=8, max_size=8))
def test_knockout_sweep_takeaway(changes):
    blocks = [SEBlock(b, i, s, 8, b, b + ".gate", "SqueezeExcite", 2, 0)
              for i, (b, s) in enumerate(zip(BLOCKS, STAGES))]
    sweep = pd.DataFrame({"block": ["none"] + BLOCKS, "change": [0.0] + changes})
    text = knockout_takeaway(sweep, blocks)
    assert_sentence(text)
    cost = -100 * np.array(changes[-3:])
    if np.isfinite(cost).all() and np.round(cost.max(), 1) >= 1:
        assert "unlike the paper's finding" in text  # never sounds like the paper where it contradicts it


@SETTINGS
@given(PROB, PROB, st.booleans())
def test_knockout_image_takeaway(p, q, changed):
    before = [("Trouser", p), ("Bag", 1 - p)]
    after = [("Bag", q), ("Trouser", 1 - q)] if changed else [("Trouser", q), ("Bag", 1 - q)]
    res = KnockoutResult(before, after, Panel("k", "t", "c", None))
    text = knockout_image_takeaway(res, ["SE_5_1"])
    assert_sentence(text)
    if not res.changed and pct(p) == pct(q):
        assert "does not change" in text


@SETTINGS
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=5),
       st.lists(st.booleans(), min_size=5, max_size=5))
def test_default_knockout_sentence(distances, flips):
    effects = pd.DataFrame({"block": BLOCKS[:len(distances)], "class_after": "Bag",
                            "top_changes": flips[:len(distances)],
                            "top_probability_after": 0.5, "distance": distances})
    effects = effects.sort_values(["top_changes", "distance"], ascending=False)
    picked, text = default_knockout(effects)
    assert_sentence(text)
    assert picked == [effects.iloc[0]["block"]]


@SETTINGS
@given(st.one_of(st.just(0.5), st.floats(0, 1, allow_nan=False)), st.booleans(), st.sampled_from([1.0, 1e-11, 0.0]))
def test_inside_takeaway_constant_and_tiny(s_value, constant, scale):
    rng = np.random.default_rng(0)
    s = np.full(16, s_value) if constant else rng.uniform(0, 1, 16)
    u = scale * rng.normal(size=(16, 3, 3))
    block = SEBlock("SE_2_1", 0, 2, 16, "x", "x.gate", "SqueezeExcite", 4, 0)
    a = BlockAnatomy("img", block, u, u.mean((1, 2)), None, s, u * s[:, None, None], u * s[:, None, None],
                     [("Trouser", 0.9)])
    text = anatomy_takeaway(a)
    assert_sentence(text)
    if constant:
        assert "in every one of the 16 channels" in text
    if scale and constant:  # s = 0.5 keeps a quarter of the energy, however small U is
        assert f"{100 * s_value ** 2:.0f}%" in text or s_value ** 2 < 0.01


@SETTINGS
@given(st.lists(st.one_of(st.just(0.5), st.floats(0, 1, allow_nan=False)), min_size=2, max_size=4), st.booleans())
def test_live_and_compare_takeaways(values, constant):
    exc = OrderedDict((b, np.full(8, v) if constant else np.linspace(0, v, 8)) for b, v in zip(BLOCKS, values))
    text = live_takeaway(ImageResult("img", Image.new("L", (4, 4)), [("Trouser", 0.99936)], exc))
    assert_sentence(text)
    sim = pd.DataFrame({"pair": "a vs b", "block": BLOCKS[:len(values)], "pearson": values})
    assert_sentence(compare_takeaway(sim))


@SETTINGS
@given(st.lists(st.one_of(st.just(0.5), st.floats(0, 1, allow_nan=False)), min_size=4, max_size=12),
       st.integers(2, 9))
def test_channel_takeaway(values, n):
    classes = ["Trouser", "Bag"]
    per_class = pd.DataFrame({"class": [classes[i % 2] for i in range(len(values))], "s": values})
    gallery = pd.DataFrame({"group": ["most exciting"] * 2 + ["least exciting"] * 2,
                            "class": ["Bag", "Trouser", "Bag", "Bag"], "s": [0.9, 0.8, 0.1, 0.2]})
    assert_sentence(finish(channel_words(per_class, gallery, "SE_5_1", 3)))


@given(st.lists(st.tuples(st.one_of(st.just(NAN), st.just(0.5), st.floats(0, 1, allow_nan=False)),
                          st.one_of(st.just(NAN), st.floats(0, 1, allow_nan=False)),
                          st.sampled_from([True, False, None])), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_what_se_adds_reads_as_a_sentence_for_any_numbers(rows):
    """s − z and the twin's specificity may be NaN (a constant gate, no twin) or equal everywhere."""
    from sevis.views.class_depth import what_se_adds_words
    frame = pd.DataFrame({"block": [f"SE_{i + 2}_1" for i in range(len(rows))],
                          "s_minus_z": [r[0] for r in rows], "twin": [r[1] for r in rows],
                          "adds": [r[2] for r in rows]})
    assert_sentence(what_se_adds_words(frame))
