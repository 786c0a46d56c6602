"""The Architectures view's computation: SE across the paper's architectures (Tables 2-3) at small scale.

Our table (SE vs plain per architecture: accuracy over two seeds, the noise floor, parameters, CPU time per image)
beside the paper's rows, the depth profiles of every family overlaid at relative depth (does "class-agnostic early,
class-specific late" hold beyond ResNet?), Fig. 6 of a chosen family, the `sevis check` table, and a computed
takeaway. The table and the profiles come from the cards `sevis family` wrote; Fig. 6 and the check are measured here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.analysis.check import check_loaded, check_summary
from sevis.analysis.reference import ReferenceStats, paper_blocks
from sevis.core.recorder import find_se_blocks
from sevis.errors import ModelError, SevisError
from sevis.figures.plots import PALETTE, Panel, apply_layout, table_figure
from sevis.figures.shared_figures import DEPTH_PANELS, class_depth_frame, fig6
from sevis.models.checkpoint import read_card
from sevis.models.families import FAMILY_TITLES
from sevis.models.zoo import LoadedModel
from sevis.names import FAMILY_RUNS, fig6_default_classes, trained_families
from sevis.train.family_grid import FAMILY_GRID, PAPER_ROWS, architecture_table, summary, weights_file
from sevis.train.runs import card_classes
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "architectures"
TITLE = "Architectures"

DISPLAY_COLUMNS = ["architecture", "SE accuracy %", "plain accuracy %", "SE − plain (points)", "noise floor (points)",
                   "inside noise?", "params SE / plain", "SE extra params %", "CPU ms/image SE / plain", "time SE %",
                   "paper's row", "paper top-1 err SE / plain", "paper gain (points)"]


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
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def display_table(arch: pd.DataFrame) -> pd.DataFrame:
    """Return the per-architecture table (family_grid.architecture_table) as text for reading."""
    if arch.empty:
        return pd.DataFrame(columns=DISPLAY_COLUMNS)
    return pd.DataFrame({
        "architecture": [FAMILY_TITLES[f] for f in arch["family"]],
        "SE accuracy %": [_num(v, ".2f") for v in arch["se_accuracy"]],
        "plain accuracy %": [_num(v, ".2f") for v in arch["plain_accuracy"]],
        "SE − plain (points)": [_num(v, "+.2f") for v in arch["delta"]],
        "noise floor (points)": [_num(v, ".2f") for v in arch["noise_floor"]],
        "inside noise?": ["—" if v is None or v != v else ("yes" if v else "no") for v in arch["within_noise"]],
        "params SE / plain": [f"{a:,} / {b:,}" for a, b in zip(arch["se_parameters"], arch["plain_parameters"])],
        "SE extra params %": [_num(v, ".1f") for v in arch["se_extra"]],
        "CPU ms/image SE / plain": [f"{a:.2f} / {b:.2f}" for a, b in zip(arch["se_cpu_ms"], arch["plain_cpu_ms"])],
        "time SE %": [_num(v, "+.1f") for v in arch["time_change"]],
        "paper's row": arch["paper"],
        "paper top-1 err SE / plain": [f"{a:.2f} / {b:.2f}" if a == a and a is not None else "—"
                                       for a, b in zip(arch["paper_se_top1_err"], arch["paper_plain_top1_err"])],
        "paper gain (points)": [_num(v, "+.2f") for v in arch["paper_delta"]],
    })


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
    caption = ("SE against the same network without SE, per architecture: test accuracy on the 10k in-context test "
               "split (mean over seeds), the change SE makes, and the noise floor (the larger range of the two models' "
               "seeds; a change inside it is not told apart from chance). Params: all parameters; SE extra: SE's "
               "parameters as a share of the plain twin. CPU time: median of 200 single-image forward passes on one "
               "thread, each SE model in alternating rounds with its plain twin. The paper's rows (ImageNet top-1 "
               "error, Tables 2-3) where our facts sheet gives numbers. " + schedule_words(table))
    return Panel("architectures_table", "SE across architectures: ours beside the paper's", caption,
                 table_figure(display_table(arch), "SE across architectures"), arch)


def delta_panel(table: pd.DataFrame) -> Panel:
    """Return SE's accuracy change per architecture (ours, with the noise floor as whiskers; the paper's gain)."""
    arch = architecture_table(table)
    x = [FAMILY_TITLES[f] for f in arch["family"]]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=arch["delta"], name="ours: SE − plain accuracy (points)", marker_color=PALETTE[0],
                         error_y=dict(type="data", array=arch["noise_floor"].fillna(0), visible=True),
                         hovertemplate="%{x}<br>SE − plain %{y:+.2f} points<extra>ours</extra>"))
    fig.add_trace(go.Bar(x=x, y=arch["paper_delta"], name="paper: top-1 error plain − SE (points)",
                         marker_color=PALETTE[1], hovertemplate="%{x}<br>%{y:+.2f} points<extra>paper</extra>"))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="gain from SE (points; up is better)")
    fig.update_xaxes(type="category")
    return Panel("architectures_delta", "What SE changes, per architecture",
                 "Blue: our accuracy with SE minus without (mean over seeds), whiskers ± the noise floor; orange: the "
                 "paper's top-1 error without SE minus with (up is better in both), where the facts sheet has numbers.",
                 apply_layout(fig, "Gain from SE per architecture", height=400, barmode="group"), arch)


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
    """Return the `sevis check` table of run `fm` as a panel, and its summary sentence."""
    table, inputs = check_loaded(fm.loaded, images)
    shown = table.assign(**{c: (100 * table[c]).round(1) for c in ("near_0", "near_half", "near_1")}) if len(table) \
        else table
    sentence = check_summary(table, inputs)
    return Panel(f"check_{fm.name}", f"Is every SE block wired in? ({fm.name})",
                 "For each SE block: calls per forward pass, the largest change of the logits when s := 1 (0 means its "
                 "output is not used), and the share of s (%) near 0, near 0.5 and near 1 (within 0.05). " + sentence,
                 table_figure(shown, f"sevis check {fm.name}"), table), sentence


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


def families_takeaway(table: pd.DataFrame, out_dir: str | Path | None = None) -> str | None:
    """Return a computed takeaway: where SE helps beyond the noise floor, what it costs in time, and in how many
    families the paper's "class-agnostic early, class-specific late" shows (from each card's paper table)."""
    arch = architecture_table(table)
    if arch.empty:
        return None
    parts = []
    names = {f: FAMILY_TITLES[f] for f in arch["family"]}
    floor = pd.to_numeric(arch["noise_floor"], errors="coerce")  # None (one seed) becomes NaN
    floor_known = floor.notna()
    better = arch[floor_known & (arch["delta"] > floor)]
    worse = arch[floor_known & (arch["delta"] < -floor)]
    inside = arch[floor_known & (arch["delta"].abs() <= floor)]
    if floor_known.any():
        bits = []
        if len(better):
            bits.append(f"helps {', '.join(names[f] for f in better['family'])} beyond the noise floor")
        if len(worse):
            bits.append(f"hurts {', '.join(names[f] for f in worse['family'])} beyond the noise floor")
        if len(inside):
            bits.append(f"changes {', '.join(names[f] for f in inside['family'])} by no more than the seeds differ")
        n = int(floor_known.sum())
        parts.append(f"On {n} architecture{'s' if n > 1 else ''} with two seeds each, SE {'; '.join(bits)}.")
    else:
        parts.append("With one seed per model there is no noise floor yet: `sevis family` trains the second seeds.")
    parts.append(f"SE costs {_span(arch['time_change'], '+.0f')}% CPU time per image and "
                 f"{_span(arch['se_extra'], '.1f')}% extra parameters; {paper_cost()}.")
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


NOT_TRAINED = ("No architecture model is trained yet. `sevis family` trains them (16 runs, about 40 minutes on two "
               "CPU cores) into pretrained/families/.")
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

    numbers: per family the SE and plain accuracy (`se_accuracy/<family>`, `plain_accuracy/<family>`, %), SE − plain
    (`delta/<family>`, points), the noise floor (`noise_floor/<family>`), SE's extra parameters (`se_extra/<family>`,
    %) and CPU time (`time_change/<family>`, %); per paper finding, how many SE families show it (`shows/<finding>`)
    of how many judged (`judged/<finding>`)."""
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
    for _, row in result.panels[0].data.iterrows():
        for col in ("se_accuracy", "plain_accuracy", "delta", "noise_floor", "se_extra", "time_change"):
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
