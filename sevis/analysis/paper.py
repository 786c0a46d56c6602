"""Paper vs this model: each finding of Section 7.2 of Hu et al., checked against measured numbers.

Nothing here is written in: every verdict and number comes from the depth measures (sevis.core.statistics.
depth_measures) and the knock-out sweeps of the model at hand. The paper's blocks are found by position, so
the same table works for SE-ResNet-50's layout (SE_2_3 … SE_5_3) and for smaller ones (SE_2_2 … SE_5_2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

# What "shows it" means, one threshold per finding (stated in the table's criterion column).
NEAR_ALL_MAJORITY = 0.5  # class-agnostic: most (class, channel) means within 0.05 of the "all" curve
SATURATED_MAJORITY = 0.5  # near-identity: most channels have mean s > 0.9
ONE_PATTERN_R = 0.9  # one pattern up to scale: class-mean profiles correlate at r ≥ 0.9 on average
LITTLE_COST_POINTS = 1.0  # removable: knocking the block out (s := its mean, else s := 1) costs under 1 point
# A finding the untrained control (same architecture, seeded random weights) shows as well is no finding of training:
# its verdict says so instead of "yes". The control counts as showing it when every seed meets the criterion.
CONTROL_TOO = "the untrained control too"
CONSTANT_SPREAD = 1e-9  # a block whose s varies less than this (spread) gives every image the same s


@dataclass(frozen=True)
class PaperBlocks:
    """The blocks the paper's findings name, found by position in this model (None where absent)."""

    early: str | None  # last block of the first stage (SE_2_3)
    late: list[str]  # last block of the second-to-last stage and first of the last (SE_4_6, SE_5_1)
    saturated: str | None  # second block of the last stage (SE_5_2)
    one_pattern: str | None  # third block of the last stage (SE_5_3)
    last_stage: list[str]


def paper_blocks_by_position(measures: pd.DataFrame) -> PaperBlocks | None:
    """Return the paper's blocks in this model, or None when its blocks have no stages."""
    if "stage" not in measures or measures["stage"].isna().any() or len(measures) < 2:
        return None
    stages = sorted(measures["stage"].unique())
    by_stage = {s: list(measures.loc[measures["stage"] == s, "block"]) for s in stages}
    last = by_stage[stages[-1]]
    late = ([by_stage[stages[-2]][-1]] if len(stages) > 2 else []) + [last[0]]
    return PaperBlocks(early=by_stage[stages[0]][-1], late=late, saturated=last[1] if len(last) > 1 else None,
                       one_pattern=last[2] if len(last) > 2 else None, last_stage=last)


def _row(measures: pd.DataFrame, block: str, col: str) -> float:
    v = measures.loc[measures["block"] == block, col]
    return float(v.iloc[0]) if len(v) and v.iloc[0] is not None else float("nan")


def _verdict(ok: bool | str | None) -> str:
    if isinstance(ok, str):
        return ok
    return "n/a" if ok is None else ("yes" if ok else "no")


def _control_range(measures: pd.DataFrame, block: str, col: str) -> tuple[float, float]:
    """Return (lowest, highest) of the untrained control's `col` at `block` over its seeds (NaN when unmeasured)."""
    mean = _row(measures, block, f"control_{col}") if f"control_{col}" in measures else float("nan")
    lo = _row(measures, block, f"control_{col}_min") if f"control_{col}_min" in measures else mean
    hi = _row(measures, block, f"control_{col}_max") if f"control_{col}_max" in measures else mean
    return lo, hi


def _beyond_control(ok: bool | None, control_passes: bool | None) -> bool | str | None:
    """Return the verdict of a finding given whether the model meets its criterion and whether every seed of the
    untrained control meets it too (None: no control measured)."""
    if ok and control_passes:
        return CONTROL_TOO
    return ok


def _f(v: float, fmt: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _specificity(measures: pd.DataFrame, block: str) -> str:
    """Return the class specificity at `block` as text; where it is undefined because s is the same for every
    image (a dead hidden layer: s = σ(b2)), say so rather than a bare n/a."""
    v = _row(measures, block, "class_specificity")
    if math.isnan(v) and "spread" in measures and _row(measures, block, "spread") < CONSTANT_SPREAD:
        return "n/a (s is the same for every image)"
    return _f(v)


def control_words(measures: pd.DataFrame, block: str, col: str = "class_specificity") -> str:
    """Return the untrained control's value at `block`: the seed mean, with its range over the seeds when
    several were measured, e.g. "0.08, range 0.05–0.14 over 3 seeds"."""
    mean = _f(_row(measures, block, f"control_{col}"))
    if f"control_{col}_min" not in measures:
        return mean
    lo, hi = _f(_row(measures, block, f"control_{col}_min")), _f(_row(measures, block, f"control_{col}_max"))
    seeds = int(_row(measures, block, "control_seeds")) if "control_seeds" in measures else 0
    return f"{mean}, range {lo}–{hi} over {seeds} seeds" if seeds and lo != "n/a" else mean


def paper_vs_model(measures: pd.DataFrame, knockout_identity: pd.DataFrame | None = None,
                   knockout_mean: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return one row per finding of Section 7.2: finding, the paper's words, the blocks, this model's numbers,
    the criterion, and whether this model shows it (yes / no / n/a)."""
    pb = paper_blocks_by_position(measures)
    rows = []
    if pb is None:
        return pd.DataFrame(columns=["finding", "paper", "blocks", "this_model", "criterion", "shows"])
    has_control = "learned_specificity" in measures

    # 1. class-agnostic early
    e = pb.early
    near, spec = _row(measures, e, "near_all_share"), _row(measures, e, "class_specificity")
    text = (f"{_f(100 * near, '.0f')}% of class means within 0.05 of 'all'; "
            f"class specificity {_specificity(measures, e)}")
    if has_control:
        control = f"untrained control {control_words(measures, e)}"
        text = text[:-1] + f"; {control})" if text.endswith(")") else text + f" ({control})"
    ok = None if math.isnan(near) else near >= NEAR_ALL_MAJORITY
    c_lo, c_hi = _control_range(measures, e, "near_all_share")
    if has_control and not math.isnan(c_lo):
        span = _f(100 * c_lo, '.0f') if _f(100 * c_lo, '.0f') == _f(100 * c_hi, '.0f') else \
            f"{_f(100 * c_lo, '.0f')}–{_f(100 * c_hi, '.0f')}"
        text += f"; the untrained control has {span}% within 0.05 of 'all'"
    control_passes = None if math.isnan(c_lo) else c_lo >= NEAR_ALL_MAJORITY
    rows.append(("class-agnostic early", "SE_2_3: nearly identical across classes", e, text,
                 f"most (≥ {NEAR_ALL_MAJORITY:.0%}) class means within 0.05 of 'all', and not already so in every "
                 "seed of the untrained control", _beyond_control(ok, control_passes)))

    # 2. class-specific late
    late_spec = [_row(measures, b, "class_specificity") for b in pb.late]
    late_dec = [_row(measures, b, "decorrelation") for b in pb.late]
    early_dec = _row(measures, e, "decorrelation")
    text = (f"class specificity {_specificity(measures, e)} at {e} → "
            + ", ".join(f"{_specificity(measures, b)} at {b}" for b in pb.late)
            + f"; decorrelation {_f(early_dec)} → " + ", ".join(_f(v) for v in late_dec))
    vals = late_spec + late_dec + [spec, early_dec]
    ok = None if any(math.isnan(v) for v in vals) else (min(late_spec) > spec and min(late_dec) > early_dec)
    if has_control and ok is not None:
        learned = [_row(measures, b, "learned_specificity") for b in [e] + pb.late]
        text += "; learned part " + " → ".join(_f(v) for v in learned)
        ok = ok and min(learned[1:]) > learned[0]
        # beyond the control's spread: above every seed of the untrained control at each late block
        highest = [_control_range(measures, b, "class_specificity")[1] for b in pb.late]
        if not any(math.isnan(h) for h in highest):
            text += "; untrained control at most " + ", ".join(_f(h) for h in highest)
            ok = ok and all(s > h for s, h in zip(late_spec, highest))
    rows.append(("class-specific late", "SE_4_6, SE_5_1: class means differ", ", ".join(pb.late), text,
                 f"specificity and decorrelation (and the learned part) higher than at {e}, and the late "
                 "specificity above every seed of the untrained control", ok))

    # 3. near-saturated
    sb = pb.saturated
    if sb is None:
        rows.append(("near-identity", "SE_5_2: most channels saturated near 1", "—", "no such block", "", None))
    else:
        sat, mean = _row(measures, sb, "saturation"), _row(measures, sb, "mean_s")
        c_lo, _ = _control_range(measures, sb, "saturation")
        rows.append(("near-identity", "SE_5_2: most channels saturated near 1", sb,
                     f"{_f(100 * sat, '.0f')}% of channels with mean s > 0.9; mean s {_f(mean)}",
                     f"most (≥ {SATURATED_MAJORITY:.0%}) channels with mean s > 0.9, and not already so in every seed "
                     "of the untrained control",
                     _beyond_control(None if math.isnan(sat) else sat >= SATURATED_MAJORITY,
                                     None if math.isnan(c_lo) else c_lo >= SATURATED_MAJORITY)))

    # 4. one pattern up to scale
    ob = pb.one_pattern
    if ob is None:
        rows.append(("one pattern, scaled", "SE_5_3: the same pattern for every class up to scale", "—",
                     "no such block (the last stage has fewer than 3 blocks)", "", None))
    else:
        dec = _row(measures, ob, "decorrelation")
        r = 1 - dec
        _, c_dec_hi = _control_range(measures, ob, "decorrelation")  # the control's lowest r is 1 − its highest
        text = f"class-mean profiles correlate at mean r = {_f(r)}"
        if not math.isnan(c_dec_hi):
            text += f"; the untrained control at r ≥ {_f(1 - c_dec_hi)}"
        rows.append(("one pattern, scaled", "SE_5_3: the same pattern for every class up to scale", ob, text,
                     f"mean r ≥ {ONE_PATTERN_R}, and not already so in every seed of the untrained control",
                     _beyond_control(None if math.isnan(r) else r >= ONE_PATTERN_R,
                                     None if math.isnan(c_dec_hi) else 1 - c_dec_hi >= ONE_PATTERN_R)))

    # 5. late SE removable at little cost
    if knockout_identity is None or not len(knockout_identity):
        rows.append(("late SE removable", "removing SE from the last stage costs little", ", ".join(pb.last_stage),
                     "needs a labelled set for the knock-out sweep", "", None))
    else:
        text, criterion, ok = late_se_removable(pb.last_stage, knockout_identity, knockout_mean)
        rows.append(("late SE removable", "removing SE from the last stage costs little", ", ".join(pb.last_stage),
                     text, criterion, ok))
    frame = pd.DataFrame(rows, columns=["finding", "paper", "blocks", "this_model", "criterion", "shows"])
    frame["shows"] = frame["shows"].map(_verdict)
    return frame


def late_se_removable(last_stage: list[str], knockout_identity: pd.DataFrame,
                      knockout_mean: pd.DataFrame | None = None) -> tuple[str, str, bool | None]:
    """Return the paper's "late SE removable" finding read from knock-out sweeps (frames with block and change, as
    sevis.analysis.knockout.knockout_sweep returns): what each last-stage block costs with s := 1 and with s := its
    mean, the criterion, and whether this model shows it (None: unmeasured). With a mean sweep the finding reads
    s := its mean: s := 1 also removes a fixed scale, which a near-constant gate applies without depending on the
    image (sevis check names such gates). The paper table and the Knock-out view's takeaway both word it so."""
    ko = knockout_identity.set_index("block")["change"]
    cost = [-100 * float(ko.get(b, float("nan"))) for b in last_stage]
    text = "s := 1 costs " + ", ".join(f"{_f(c, '.1f')} pts at {b}" for b, c in zip(last_stage, cost))
    how = "s := 1"
    if knockout_mean is not None and len(knockout_mean):
        km = knockout_mean.set_index("block")["change"]
        cost = [-100 * float(km.get(b, float("nan"))) for b in last_stage]
        text += "; s := its mean costs " + ", ".join(_f(c, ".1f") for c in cost)
        how = "s := its mean"
    ok = None if any(math.isnan(c) for c in cost) else max(cost) < LITTLE_COST_POINTS
    return text, f"each last-stage block costs < {LITTLE_COST_POINTS:g} point with {how}", ok
