"""The Architectures view's computation: SE across the paper's architectures (Tables 2-3) at small scale.

Our table (SE vs plain per architecture: SE − plain as the mean over seed pairs with a paired bootstrap 95% interval,
on the in-context test split and on unseen backgrounds; parameters, CPU time per image) beside the paper's rows, the
depth profiles of every family overlaid at relative depth (does "class-agnostic early, class-specific late" hold beyond
ResNet?), what SE adds beyond its input in each SE family (s beside z and the plain twin, over the seeds with paired
intervals: sevis.figures.se_adds), Fig. 6 of a chosen family,
the `sevis check` table, and a computed takeaway. The tables, profiles and what SE adds come from the cards `sevis
family` wrote; Fig. 6 and the check are measured here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.analysis.check import check_loaded, check_summary
from sevis.analysis.intervals import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, MIN_PAIRS, NO_DIFFERENCE, TOO_FEW
from sevis.analysis.reference import ReferenceStats, paper_blocks
from sevis.core.recorder import find_se_blocks
from sevis.data.unseen_backgrounds import UNSEEN_IMAGES, unseen_words
from sevis.errors import ModelError, SevisError
from sevis.figures.plots import MISSING, PALETTE, Panel, apply_layout, table_figure
from sevis.figures.se_adds import (  # noqa: F401 (se_adds_table, SE_ADDS_NAMES, its caption: the app reads them here)
    SE_ADDS_NAMES,
    SE_ADDS_TABLE_CAPTION,
    over_seeds,
    se_adds_finding,
    se_adds_panel,
    se_adds_table,
)
from sevis.figures.shared_figures import DEPTH_PANELS, class_depth_frame, fig6
from sevis.models.checkpoint import read_card
from sevis.models.families import FAMILY_TITLES
from sevis.models.zoo import LoadedModel
from sevis.names import FAMILY_RUNS, fig6_default_classes, trained_families
from sevis.train.family_evaluation import what_se_adds_frame
from sevis.train.family_grid import FAMILY_GRID, PAPER_ROWS, architecture_table, summary, weights_file
from sevis.train.runs import card_classes
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "architectures"
TITLE = "Architectures"

# The per-architecture table as read: our results on both test sets, then cost and the paper's rows (the app shows
# them as two tables, so that neither hides columns at projector width).
RESULT_COLUMNS = ["architecture", "seed pairs", "SE accuracy %", "plain accuracy %", "SE − plain (points)",
                  "95% interval", "verdict", "unseen backgrounds: SE %", "unseen: plain %", "unseen: SE − plain",
                  "unseen: 95% interval", "unseen: verdict"]
COST_COLUMNS = ["architecture", "parameters SE / plain", "SE extra parameters %", "CPU ms per image SE / plain",
                "time SE adds %", "paper's row", "paper top-1 error % SE / plain", "paper gain (points)"]
DISPLAY_COLUMNS = RESULT_COLUMNS + COST_COLUMNS[1:]
CHECK_NAMES = {"channels": "channels C", "calls": "calls per pass", "runs": "runs",
               "logit_change": "logit change, s := 1", "matters": "matters", "logit_change_mean": "logit change, "
               "s := its mean", "input_dependent": "depends on the image", "near_0": "s near 0",
               "near_half": "s near 0.5", "near_1": "s near 1", "spread": "spread of s over images",
               "constant": "constant", "near_constant": "near-constant", "verdict": "verdict"}


@dataclass
class FamilyModel:
    """One trained family run, ready for the view."""

    name: str
    loaded: LoadedModel
    ref: ReferenceStats


def se_runs(table: pd.DataFrame) -> list[str]:
    """Return the trained SE runs of seed 0 (one per architecture), in FAMILY_RUNS order."""
    return [n for n in table["name"] if FAMILY_RUNS[n]["se"] and FAMILY_RUNS[n]["seed"] == 0] if len(table) else []


def load_family_model(name: str, out_dir: str | Path | None = None, progress: Progress | None = None) -> FamilyModel:
    """Return trained run `name` with its reference-set statistics (measured once per process: sevis.train.runs)."""
    run = FAMILY_GRID.load(name, "family", out_dir, progress)
    return FamilyModel(name, run.loaded, run.ref)


def run_classes(name: str) -> list[str]:
    """Return the classes run `name` knows (the app's class picker), read from its card."""
    return card_classes(weights_file(name))


def default_run(loaded: LoadedModel, trained: list[str]) -> str:
    """Return the run whose Fig. 6 and check the view opens with: the model itself when it is a trained family run
    (family:<run>), else the first trained SE run of seed 0, else the first trained run."""
    own = loaded.spec.partition(":")[2] if str(loaded.spec).startswith("family:") else None
    if own in trained:
        return own
    runs = [n for n in trained if FAMILY_RUNS[n]["se"] and FAMILY_RUNS[n]["seed"] == 0]
    return (runs or trained)[0]


def card_measures(name: str, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Return the measures per SE block a run's card holds (measured on the reference set), with its relative depth
    (0 = first SE block, 1 = last)."""
    rows = (read_card(weights_file(name, out_dir)).get("evaluation") or {}).get("excitation") or []
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["block", "relative_depth"])
    frame["relative_depth"] = np.arange(len(frame)) / max(len(frame) - 1, 1)
    return frame


def _num(v, fmt: str) -> str:
    return MISSING if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def _interval(low, high) -> str:
    """Return "[low, high]" in points with signs, MISSING without an interval."""
    return MISSING if low is None or high is None or low != low else f"[{low:+.2f}, {high:+.2f}]"


def is_paired_table(arch: pd.DataFrame) -> bool:
    """Return whether `arch` is an architecture_table with seed pairs and intervals (not one an older sevis stored)."""
    return {"pairs", "delta_low", "unseen_verdict"} <= set(arch.columns)


def display_table(arch: pd.DataFrame) -> pd.DataFrame:
    """Return the per-architecture table (family_grid.architecture_table) as text for reading: accuracies to 0.1%
    (3 significant digits), differences and intervals to 0.01 points, human column names (DISPLAY_COLUMNS)."""
    if arch.empty:
        return pd.DataFrame(columns=DISPLAY_COLUMNS)
    acc = lambda v: _num(v, ".1f")  # noqa: E731  (accuracies in %: 3 significant digits)
    return pd.DataFrame({
        "architecture": [FAMILY_TITLES[f] for f in arch["family"]],
        "seed pairs": [str(int(v)) for v in arch["pairs"]],
        "SE accuracy %": [acc(v) for v in arch["se_accuracy"]],
        "plain accuracy %": [acc(v) for v in arch["plain_accuracy"]],
        "SE − plain (points)": [_num(v, "+.2f") for v in arch["delta"]],
        "95% interval": [_interval(a, b) for a, b in zip(arch["delta_low"], arch["delta_high"])],
        "verdict": list(arch["verdict"]),
        "unseen backgrounds: SE %": [acc(v) for v in arch["se_unseen"]],
        "unseen: plain %": [acc(v) for v in arch["plain_unseen"]],
        "unseen: SE − plain": [_num(v, "+.2f") for v in arch["unseen_delta"]],
        "unseen: 95% interval": [_interval(a, b) for a, b in zip(arch["unseen_low"], arch["unseen_high"])],
        "unseen: verdict": [v if p else "not evaluated yet" for v, p in zip(arch["unseen_verdict"],
                                                                             arch["unseen_pairs"])],
        "parameters SE / plain": [f"{a:,} / {b:,}"
                                  for a, b in zip(arch["se_parameters"], arch["plain_parameters"])],
        "SE extra parameters %": [_num(v, ".1f") for v in arch["se_extra"]],
        "CPU ms per image SE / plain": [f"{a:.1f} / {b:.1f}"
                                        for a, b in zip(arch["se_cpu_ms"], arch["plain_cpu_ms"])],
        "time SE adds %": [_num(v, "+.0f") for v in arch["time_change"]],
        "paper's row": arch["paper"],
        "paper top-1 error % SE / plain": [f"{a:.1f} / {b:.1f}" if a is not None and a == a else MISSING
                                           for a, b in zip(arch["paper_se_top1_err"], arch["paper_plain_top1_err"])],
        "paper gain (points)": [_num(v, "+.2f") for v in arch["paper_delta"]],
    }, columns=DISPLAY_COLUMNS)


def schedule_words(table: pd.DataFrame) -> str:
    """Return how the runs were trained, from the summary (the schedule every card records)."""
    if table.empty:
        return ""
    r = table.iloc[0]
    seeds = sorted(set(int(s) for s in table["seed"]))
    return (f"Every model trained {int(r['epochs'])} epochs on {int(r['train_images']) or 60000:,} in-context garments "
            f"with seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}.")


def table_panel(table: pd.DataFrame) -> Panel:
    """Return our SE-vs-plain table per architecture beside the paper's rows as a panel."""
    arch = architecture_table(table)
    caption = ("SE against the same network without SE, per architecture, over the seeds trained for both (seed k "
               "of SE paired with seed k of plain): accuracy (mean over the pairs) on the 10k in-context test split "
               "and on "
               f"{UNSEEN_IMAGES:,} held-out garments over backgrounds the training recipe never used ({unseen_words()}"
               f"); SE − plain with its paired bootstrap 95% interval ({BOOTSTRAP_RESAMPLES:,} resamples of the seed "
               f"pairs, seed {BOOTSTRAP_SEED}): \"{NO_DIFFERENCE}\" when it spans 0, \"{TOO_FEW}\" with fewer than "
               f"{MIN_PAIRS} pairs. Parameters: all; SE extra: SE's parameters as a share of the plain twin. CPU time: "
               "median of 200 single-image forward passes on one thread, each SE model in alternating rounds with its "
               "plain twin. The paper's rows (ImageNet top-1 error, Tables 2-3) where our facts sheet gives numbers. "
               + schedule_words(table))
    return Panel("architectures_table", "SE across architectures: ours beside the paper's", caption,
                 table_figure(display_table(arch), "SE across architectures"), arch)


def delta_panel(table: pd.DataFrame) -> Panel:
    """Return SE − plain per architecture on both test sets with their 95% intervals as whiskers, and the paper's
    gain."""
    arch = architecture_table(table)
    x = [FAMILY_TITLES[f] for f in arch["family"]]
    fig = go.Figure()
    for k, (prefix, col, name) in enumerate((("delta", "delta", "ours, in-context test split"),
                                              ("unseen", "unseen_delta", "ours, unseen backgrounds"))):
        y = pd.to_numeric(arch[col], errors="coerce")
        lo, hi = (pd.to_numeric(arch[c], errors="coerce") for c in ((f"{prefix}_low", f"{prefix}_high")
                                                                     if prefix == "delta" else
                                                                     ("unseen_low", "unseen_high")))
        fig.add_trace(go.Bar(x=x, y=y, name=f"{name}: SE − plain (points)", marker_color=PALETTE[k],
                             error_y=dict(type="data", symmetric=False, array=(hi - y).fillna(0),
                                          arrayminus=(y - lo).fillna(0), visible=True),
                             hovertemplate="%{x}<br>SE − plain %{y:+.2f} points<extra>" + name + "</extra>"))
    fig.add_trace(go.Bar(x=x, y=arch["paper_delta"], name="paper: top-1 error plain − SE (points)",
                         marker_color=PALETTE[2], hovertemplate="%{x}<br>%{y:+.2f} points<extra>paper</extra>"))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="gain from SE (points; up is better)")
    fig.update_xaxes(type="category")
    return Panel("architectures_delta", "What SE changes, per architecture",
                 "Our accuracy with SE minus without (mean over seed pairs) on the in-context test split and on "
                 f"unseen backgrounds, whiskers: the paired bootstrap 95% interval (none with fewer than {MIN_PAIRS} "
                 "pairs); the paper's top-1 error without SE minus with (up is better in all), where the facts sheet "
                 "has numbers.",
                 apply_layout(fig, "Gain from SE per architecture", height=420, barmode="group"), arch)


def profiles_panel(measures: dict[str, pd.DataFrame]) -> Panel:
    """Return the families' depth profiles (card measures) overlaid against relative depth, controls dashed."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for t, _, _ in DEPTH_PANELS], vertical_spacing=0.2,
                        horizontal_spacing=0.08)
    for k, (name, m) in enumerate(measures.items()):
        color = PALETTE[k % len(PALETTE)]
        for i, (_, col, yrange) in enumerate(DEPTH_PANELS):
            r, c = i // 2 + 1, i % 2 + 1
            if col not in m:
                continue
            fig.add_trace(go.Scatter(x=m["relative_depth"], y=m[col], mode="lines+markers", name=name, legendgroup=name,
                                     showlegend=i == 0, line=dict(color=color, width=2.4), text=m["block"],
                                     hovertemplate=f"{name}<br>%{{text}}<br>%{{y:.3f}}<extra></extra>"), r, c)
            if f"control_{col}" in m:
                fig.add_trace(go.Scatter(x=m["relative_depth"], y=m[f"control_{col}"], mode="lines",
                                         name=f"{name}: untrained control", legendgroup=f"{name}-control",
                                         showlegend=i == 0, line=dict(color=color, width=1.3, dash="dash"),
                                         text=m["block"],
                                         hovertemplate=f"{name} untrained<br>%{{text}}<br>%{{y:.3f}}<extra></extra>"),
                              r, c)
            fig.update_xaxes(range=[-0.03, 1.03], title_text="relative depth (first → last SE block)", row=r, col=c)
            if yrange:
                fig.update_yaxes(range=yrange, row=r, col=c)
    fig.update_annotations(font_size=12)
    data = (pd.concat([m.assign(model=n) for n, m in measures.items()], ignore_index=True) if measures
            else pd.DataFrame())
    return Panel("architectures_depth_profiles", "Depth profiles of every architecture",
                 "The Class × depth view's measures per SE block over the reference set, one colour per SE model "
                 "(seed 0), against relative depth (0: its first SE block, 1: its last), so networks with 8 to 16 SE "
                 "blocks line up; dashed: each model's untrained control.",
                 apply_layout(fig, "Depth profiles of every architecture", height=660), data)


def fig6_panel(fm: FamilyModel, classes: list[str], n: int = 50) -> Panel | None:
    """Return run `fm`'s Fig. 6 at its paper blocks for `classes`; None without SE blocks."""
    blocks = paper_blocks([b for b, _ in find_se_blocks(fm.loaded.model)])
    if not blocks:
        return None
    frame = class_depth_frame(fm.ref.stats, classes, blocks, "uniform", n, 0)
    title = fm.loaded.model.title
    return Panel(f"fig6_{fm.name}", f"{title}: mean excitation per class (Fig. 6)",
                 f"{title} ({fm.name}) over {fm.ref.source}: the last block of each stage and every block of the last "
                 f"stage, {n} channels sampled uniformly (seed 0). Coloured lines: class means; dashed black: all "
                 "images.", fig6(frame, cols=3, title=f"{title}: mean excitation per class"), frame)


def check_panel(fm: FamilyModel, images: int = 100) -> tuple[Panel, str]:
    """Return the `sevis check` table of run `fm` as a panel (human column names, 2-3 significant digits), and its
    summary sentence."""
    table, inputs = check_loaded(fm.loaded, images)
    sentence = check_summary(table, inputs)
    shown = table.drop(columns=["path"])
    return Panel(f"check_{fm.name}", f"Is every SE block wired in? ({fm.name})",
                 "For each SE block: calls per forward pass, the largest change of the logits when s := 1 (0 means its "
                 "output is not used) and when s := its mean over these images (0 means only a fixed scale matters), "
                 "the share of s near 0, near 0.5 and near 1 (within 0.05), and how much s varies between images "
                 "(below 0.01: near-constant, a fixed scale rather than a function of the input). " + sentence,
                 table_figure(shown, f"sevis check {fm.name}", CHECK_NAMES, percent=("near_0", "near_half", "near_1"),
                              digits=2), table), sentence


def se_adds_frame(table: pd.DataFrame, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Return what SE adds in every trained SE run (every seed) whose card holds it
    (family_evaluation.what_se_adds_frame), with each run's architecture and seed."""
    runs = [n for n in table["name"] if FAMILY_RUNS[n]["se"]] if len(table) else []
    adds = what_se_adds_frame(runs, out_dir)
    return adds.assign(architecture=[FAMILY_TITLES[FAMILY_RUNS[r]["family"]] for r in adds["run"]],
                       seed=[FAMILY_RUNS[r]["seed"] for r in adds["run"]])


def _shows(name: str, finding: str, out_dir: str | Path | None = None) -> str | None:
    rows = (read_card(weights_file(name, out_dir)).get("evaluation") or {}).get("paper_vs_model") or []
    return next((r.get("shows") for r in rows if r.get("finding") == finding), None)


def _span(values: pd.Series, fmt: str) -> str:
    """Return "a" or "a to b" for the smallest and largest of `values` as `fmt` writes them."""
    lo, hi = format(float(values.min()), fmt), format(float(values.max()), fmt)
    return lo if lo == hi else f"{lo} to {hi}"


def paper_cost() -> str:
    """Return what SE costs SE-ResNet-50 in the paper (CPU time and GFLOPs, from family_grid.PAPER_ROWS)."""
    r = PAPER_ROWS["resnet"]
    return (f"in the paper SE-ResNet-50 takes {100 * (r['se_cpu_ms'] / r['plain_cpu_ms'] - 1):+.1f}% CPU time "
            f"({r['plain_cpu_ms']:.0f} vs {r['se_cpu_ms']:.0f} ms) and "
            f"{100 * (r['se_gflops'] / r['plain_gflops'] - 1):+.1f}% "
            "GFLOPs")


def _pairs_words(pairs: pd.Series) -> str:
    lo, hi = int(pairs.min()), int(pairs.max())
    return f"{lo if lo == hi else f'{lo}-{hi}'} seed pair{'s' if hi != 1 else ''} per architecture"


def difference_words(arch: pd.DataFrame, prefix: str, where: str) -> str:
    """Return SE − plain on one test set (`prefix` "" for the test split, "unseen_" for unseen backgrounds) as one
    clause per verdict: higher / lower (with the interval), no difference shown, too few seeds."""
    names = {f: FAMILY_TITLES[f] for f in arch["family"]}
    delta, low, high = ("delta", "delta_low", "delta_high") if not prefix else ("unseen_delta", "unseen_low",
                                                                               "unseen_high")
    verdict, pairs = f"{prefix}verdict", ("pairs" if not prefix else "unseen_pairs")
    groups: dict[str, list[str]] = {}
    for _, r in arch.iterrows():
        if not r[pairs]:
            continue
        v = r[verdict]
        detail = (f"{r[delta]:+.2f} points, [{r[low]:+.2f}, {r[high]:+.2f}]" if v != TOO_FEW
                  else f"{int(r[pairs])} pair{'s' if int(r[pairs]) != 1 else ''}")
        groups.setdefault(v, []).append(f"{names[r['family']]} ({detail})")
    if not groups:
        return ""
    order = (("higher", "accuracy is higher with SE for"), ("lower", "accuracy is lower with SE for"),
             (NO_DIFFERENCE, "no difference is shown for"), (TOO_FEW, "there are too few seeds to tell for"))
    bits = [f"{words} {', '.join(groups[v])}" for v, words in order if v in groups]
    return f"{where} {'; '.join(bits)}"


def families_takeaway(table: pd.DataFrame, out_dir: str | Path | None = None) -> str | None:
    """Return a computed takeaway: SE − plain per architecture with its paired 95% interval on both test sets, what
    SE costs in time, what its gates add beyond their input at the last SE block over the seeds (se_adds_finding),
    which gates are near-constant (seed 0's cards), and in how
    many families the paper's "class-agnostic early, class-specific late" shows (from each card's paper table)."""
    arch = architecture_table(table)
    if arch.empty:
        return None
    parts = [f"With {_pairs_words(arch['pairs'])} (seed k of SE against seed k of plain, 95% paired bootstrap "
             "intervals):"]
    clauses = [difference_words(arch, "", "on the in-context test split"),
               difference_words(arch, "unseen_", "on unseen backgrounds")]
    clauses = [c for c in clauses if c]
    parts.append("; ".join(clauses) + ".")
    parts.append(f"SE costs {_span(arch['time_change'], '+.0f')}% CPU time per image and "
                 f"{_span(arch['se_extra'], '.1f')}% extra parameters; {paper_cost()}.")
    adds = se_adds_frame(table, out_dir)
    if len(adds):
        parts.append(se_adds_finding(over_seeds(adds)))
    seed0 = table[table["name"].isin(se_runs(table))]
    constant = [f"SE-{FAMILY_TITLES[r['family']]} {', '.join(r['near_constant_blocks'])}"
                for _, r in seed0.iterrows() if r["near_constant_blocks"]]
    if len(seed0):
        parts.append("Near-constant gates (a fixed scale, not a function of the input; seed 0): "
                     + ("; ".join(constant) if constant else "none") + ".")
    for finding, (yes, known) in finding_counts(table, out_dir).items():
        parts.append(f"\"{finding.capitalize()}\" shows in {len(yes)} of {known} SE families"
                     + (f" ({', '.join(yes)})." if yes else "."))
    return " ".join(parts)


FAMILY_FINDINGS = ("class-agnostic early", "class-specific late")


def finding_counts(table: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, tuple[list[str], int]]:
    """Return, per finding of FAMILY_FINDINGS that some SE run's card judged, (the architectures that show it, how
    many SE runs judged it), from each card's paper-vs-model table."""
    out = {}
    for finding in FAMILY_FINDINGS:
        verdicts = {n: _shows(n, finding, out_dir) for n in se_runs(table)}
        known = {n: v for n, v in verdicts.items() if v is not None}
        if known:
            out[finding] = ([FAMILY_TITLES[FAMILY_RUNS[n]["family"]] for n, v in known.items() if v == "yes"],
                            len(known))
    return out


SE_ADDS_NUMBERS = tuple(f"{d}{k}" for d in ("s_minus_z", "s_minus_twin") for k in ("", "_low", "_high", "_pairs"))
NUMBER_COLUMNS = ("pairs", "se_accuracy", "plain_accuracy", "delta", "delta_low", "delta_high", "unseen_pairs",
                  "se_unseen", "plain_unseen", "unseen_delta", "unseen_low", "unseen_high", "se_extra", "time_change")
NOT_TRAINED = ("No architecture model is trained yet. `sevis family` trains them (40 runs: 8 models × 5 seeds, "
               "5-10 CPU-minutes each) into pretrained/families/.")
_CHECKS: dict[tuple, tuple[Panel, str]] = {}  # (run, its weights' mtime) -> the check: it runs the model 100 times


def _check(fm: FamilyModel, out_dir: str | Path | None = None) -> Panel:
    path = weights_file(fm.name, out_dir)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _CHECKS:
        _CHECKS[key] = check_panel(fm)
    return _CHECKS[key][0]


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Architectures view: our SE-vs-plain table beside the paper's rows, SE's gain per architecture,
    the depth profiles of every SE family, and Fig. 6 (at `request.classes`) and the `sevis check` table of
    `request.run` (default: default_run), with a computed takeaway. It reads the trained runs, whatever model
    `loaded` is (a family run picked as the model is the default run).

    numbers: per family (NUMBER_COLUMNS) the seed pairs (`pairs/<family>`), the SE and plain accuracy
    (`se_accuracy/<family>`, `plain_accuracy/<family>`, %), SE − plain (`delta/<family>`, points) and its 95% interval
    (`delta_low/`, `delta_high/`), the same on unseen backgrounds (`unseen_pairs/`, `se_unseen/`, `plain_unseen/`,
    `unseen_delta/`, `unseen_low/`, `unseen_high/`), SE's extra parameters (`se_extra/<family>`, %) and CPU time
    (`time_change/<family>`, %); what SE adds per SE run and block (`s/<run>/<block>`, `z/…`, `twin/…`,
    `s_minus_z/…`) and at each family's last SE block over the seeds (SE_ADDS_NUMBERS: `s_minus_z/<family>`, its
    interval `s_minus_z_low/`, `s_minus_z_high/` and seeds `s_minus_z_pairs/`, the same for `s_minus_twin`); per
    paper finding, how many SE families show it (`shows/<finding>`) of how many judged
    (`judged/<finding>`)."""
    result = ViewResult(SLUG, TITLE)
    trained = trained_families()
    table = summary()
    if not trained or table.empty:
        result.notes.append(NOT_TRAINED)
        return result
    run = request.run or default_run(loaded, trained)
    if run not in FAMILY_RUNS:
        raise SevisError(f"unknown architecture run {run!r}; known: {', '.join(FAMILY_RUNS)}")
    if run not in trained:
        raise ModelError(f"{run} is not trained; trained: {', '.join(trained)}")
    result.panels = [table_panel(table), delta_panel(table)]
    missing = [n for n in FAMILY_RUNS if n not in trained]
    if missing:
        result.notes.append(f"Not trained yet: {', '.join(missing)} (`sevis family` continues where it stopped).")
    runs = se_runs(table)
    if runs:
        result.panels.append(profiles_panel({n: card_measures(n) for n in runs}))
    adds = se_adds_frame(table)
    if len(adds):
        result.panels.append(se_adds_panel(adds))
        for _, row in adds.iterrows():
            for col in ("s", "z", "twin", "s_minus_z"):
                if row[col] is not None and row[col] == row[col]:
                    result.numbers[f"{col}/{row['run']}/{row['block']}"] = float(row[col])
        for _, row in over_seeds(adds).iterrows():
            if row["last"]:
                for col in SE_ADDS_NUMBERS:
                    if row[col] is not None and row[col] == row[col]:
                        result.numbers[f"{col}/{row['family']}"] = float(row[col])
    elif runs:
        result.notes.append("What SE adds is not in the cards yet: `sevis family --evaluate-only` fills it in.")
    for _, row in result.panels[0].data.iterrows():
        for col in NUMBER_COLUMNS:
            value = row[col]
            if value is not None and value == value:
                result.numbers[f"{col}/{row['family']}"] = float(value)
    fm = load_family_model(run, progress=progress)
    classes = list(request.classes) if request.classes else fig6_default_classes(fm.ref.stats.classes)
    unknown = [c for c in classes if c not in fm.ref.stats.classes]
    if unknown:
        raise SevisError(f"unknown class(es) {', '.join(unknown)}; classes: {', '.join(fm.ref.stats.classes)}")
    fig = fig6_panel(fm, classes)
    if fig is None:
        result.notes.append(f"{run} has no SE blocks (the plain twin): no excitations to plot.")
    else:
        result.panels.append(fig)
    result.panels.append(_check(fm))
    result.takeaway = families_takeaway(table)
    for finding, (yes, known) in finding_counts(table).items():
        result.numbers[f"shows/{finding}"], result.numbers[f"judged/{finding}"] = len(yes), known
    return result
