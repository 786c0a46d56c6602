"""The Ablations view's computation: the paper's ablation table beside ours, and two variants side by side.

The table and the depth profiles come from the variants' model cards (sevis.train.ablations wrote them when it trained
each variant: accuracy on the 10k test split, the measures and knock-out sweeps on the reference set); Fig. 6 and
what each gate lets s do are measured here over the bundled reference set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.analysis.paper import CONSTANT_SPREAD
from sevis.analysis.reference import ReferenceStats, paper_blocks
from sevis.core.recorder import find_se_blocks
from sevis.core.statistics import ExcitationStats
from sevis.errors import ModelError, SevisError
from sevis.figures.plots import PALETTE, Panel, apply_layout, readable_table, table_figure
from sevis.figures.sentences import difference, finish, rounded
from sevis.figures.shared_figures import DEPTH_PANELS, class_depth_frame, fig6
from sevis.models.zoo import LoadedModel
from sevis.names import ABLATIONS, DEFAULT_ABLATION_PAIR, fig6_default_classes, trained_ablations
from sevis.train.ablations import (
    ABLATION_GRID,
    NOISE_SEEDS,
    comparison_table,
    grid_findings,
    noise_floor,
    summary,
    weights_file,
)
from sevis.train.runs import card_classes
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "ablations"
TITLE = "Ablations"


DISPLAY_COLUMNS = ["axis", "variant", "paper's row", "paper top-1 err %", "paper Δ err", "paper params (M)",
                   "our accuracy %", "our Δ acc (points)", "inside noise?", "SE extra params %"]


@dataclass
class Variant:
    """One trained ablation variant, ready for the view."""

    name: str
    loaded: LoadedModel
    ref: ReferenceStats
    measures: pd.DataFrame  # from its card: one row per SE block, measured on the reference set
    gate: pd.DataFrame  # gate_facts over the reference set


def load_variant(name: str, out_dir: str | Path | None = None, progress: Progress | None = None) -> Variant:
    """Return variant `name` with its reference-set statistics, its card's measures and its gate facts (the trained
    run is measured once per process: sevis.train.runs)."""
    run = ABLATION_GRID.load(name, "ablation", out_dir, progress)
    rows = (run.card.get("evaluation") or {}).get("excitation") or []
    measures = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["block"])
    return Variant(name, run.loaded, run.ref, measures, gate_facts(run.ref.stats))


def gate_facts(stats: ExcitationStats) -> pd.DataFrame:
    """Return, per SE block of the reference statistics, what the gate lets s do: the share of values below 0,
    exactly 0 and above 1, the share of channels whose mean s exceeds 0.9, the mean of s, and whether s is the
    same for every image (`constant`)."""
    rows = [{"block": block, **stats.outside_shares(block), "saturated": stats.saturation(block),
             "mean_s": float(stats.overall_mean(block).mean()),
             "constant": stats.spread(block) < CONSTANT_SPREAD} for block in stats.blocks]  # as the cards' spread
    return pd.DataFrame(rows, columns=["block", "below_zero", "zero", "above_one", "saturated", "mean_s", "constant"])


def table_panel(table: pd.DataFrame | None = None, out_dir: str | Path | None = None) -> Panel:
    """Return the paper's ablation rows beside ours (sevis.train.ablations.comparison_table) as a panel."""
    table = summary(out_dir) if table is None else table
    cmp = comparison_table(table)
    floor = noise_floor(table)
    floor_words = (f"The noise floor is the range of the baseline's accuracy over {floor['seeds']} seeds "
                   f"({100 * floor['range']:.2f} points); a difference inside it is marked as such."
                   if floor["range"] is not None else "The noise floor needs the baseline's extra seeds: "
                   f"run `sevis ablate --variants {' '.join(NOISE_SEEDS[1:])}`.")
    schedule = ""
    if len(table):
        r = table.iloc[0]
        images = int(r["train_images"]) or 60000
        reruns = sorted(int(v) for v in table.loc[table["name"].isin(NOISE_SEEDS[1:]), "seed"])
        schedule = (f" Every variant trained {int(r['epochs'])} epochs on {images:,} in-context garments, seed 0"
                    + (f" (the baseline's reruns: seeds {', '.join(map(str, reruns))})." if reruns else "."))
    caption = ("The paper (SE-ResNet-50 on ImageNet, Tables 10-16) beside our small variants of the default model "
               "on Fashion-MNIST in context (accuracy on the 10k test split, half-precision weights)." + schedule +
               " Paper Δ err: top-1 error change against SE-ResNet-50 (negative is better); our Δ acc: accuracy "
               "change against the baseline's seed mean (positive is better). " + floor_words +
               " SE extra params: SE's parameters as a share of the same network without SE.")
    note = stale_note(table)
    if note:
        caption += " " + note
    return Panel("ablation_table", "The paper's ablations beside ours", caption,
                   table_figure(display_table(cmp), "The paper's ablations beside ours"), cmp)


def stale_note(table: pd.DataFrame) -> str | None:
    """Return a warning naming the variants an older data pipeline trained, or None when all are current."""
    stale = list(table.loc[table["stale"].astype(bool), "name"]) if "stale" in table and len(table) else []
    if not stale:
        return None
    return (f"{len(stale)} of {len(table)} variants ({', '.join(stale)}) were trained before the fix of the "
            "in-context training data (2026-11-24: each training canvas held a shrunken in-context image instead of "
            "the garment), so their numbers compare variants under that flawed recipe; `sevis ablate` trains them "
            "again.")


# The comparison table's columns as the table shows them (plots.readable_table), in DISPLAY_COLUMNS' order.
DISPLAY_NAMES = {"axis": "axis", "variant": "variant", "paper": "paper's row", "paper_top1_err": "paper top-1 err %",
                 "paper_delta": "paper Δ err", "paper_params_m": "paper params (M)", "accuracy": "our accuracy %",
                 "delta": "our Δ acc (points)", "within_noise": "inside noise?", "se_extra": "SE extra params %"}


def display_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """Return the comparison table as text for reading (plots.readable_table): human column names, 3 significant
    digits, signed changes, yes/no, "—" where there is no value."""
    if not len(cmp):
        return pd.DataFrame(columns=DISPLAY_COLUMNS)
    frame = cmp[list(DISPLAY_NAMES)].copy()
    frame["within_noise"] = [None if v is None or v != v else bool(v) for v in frame["within_noise"]]
    return readable_table(frame, DISPLAY_NAMES, signed=("paper_delta", "delta"))


def deltas_panel(table: pd.DataFrame) -> Panel:
    """Return the accuracy changes against the baseline (ours, and the paper's error changes) as bars."""
    cmp = comparison_table(table)
    return Panel("ablation_deltas", "Accuracy change against the baseline",
                   "Blue: our accuracy change against the baseline (mean of its seeds), in points; orange: the paper's "
                   "top-1 error change with the sign flipped, so up is better in both. The grey band is the noise "
                   "floor: changes inside it are not told apart from seed-to-seed variation.",
                   ablation_deltas(cmp, noise_floor(table)["seeds"]), cmp)


def fig6_panel(v: Variant, classes: list[str], blocks: list[str], n: int = 50) -> Panel | None:
    """Return variant `v`'s Fig. 6 at `blocks` (those it has; else its own paper blocks) for `classes`; None when
    it has no SE block."""
    own = [b for b in blocks if b in v.ref.stats.blocks] or paper_blocks([b for b, _ in find_se_blocks(v.loaded.model)])
    if not own:
        return None
    frame = class_depth_frame(v.ref.stats, classes, own, "uniform", n, 0)
    return Panel(f"fig6_{v.name}", f"{v.name}: mean excitation per class (Fig. 6)",
                   f"{v.name} ({ABLATIONS[v.name]['change']}) over {v.ref.source}; {n} channels sampled uniformly "
                   "(seed 0). Coloured lines: class means; dashed black: all images.",
                   fig6(frame, cols=3, title=f"{v.name}: mean excitation per class"), frame)


def profile_panel(a: Variant, b: Variant) -> Panel:
    """Return the two variants' depth profiles (card measures on the reference set) overlaid."""
    data = pd.concat([a.measures.assign(variant=a.name), b.measures.assign(variant=b.name)], ignore_index=True)
    return Panel("ablation_depth_profiles", f"Depth profiles: {a.name} and {b.name}",
                   "The Class × depth view's measures per SE block over the reference set, one colour per variant, its "
                   "untrained control dashed in the same colour. Blocks a variant has no SE in leave gaps.",
                   depth_profile_pair({a.name: a.measures, b.name: b.measures},
                                        f"Depth profiles: {a.name} and {b.name}"), data)


def knockout_panel(a: Variant, b: Variant) -> Panel:
    """Return the two variants' knock-out sweeps (s := 1 per block, from their cards) side by side."""
    data = pd.concat([m[["block", c]].assign(variant=v.name) for v, m in ((a, a.measures), (b, b.measures))
                      for c in ["knockout_identity"] if c in m], ignore_index=True)
    return Panel("ablation_knockouts", f"Knock-out sweeps: {a.name} and {b.name}",
                   "Accuracy change on the reference set when one SE block's s is set to 1 (the block passes its "
                   "input unchanged), one bar per variant and block.",
                   knockout_pair({a.name: a.measures, b.name: b.measures}), data)


def pair_panels(a: Variant, b: Variant, classes: list[str] | None = None,
                blocks: list[str] | None = None) -> list[Panel | None]:
    """Return Fig. 6 of each variant at the same blocks and classes (None for a variant without SE), their depth
    profiles and knock-out sweeps."""
    classes = classes or fig6_default_classes(a.ref.stats.classes)
    blocks = blocks or paper_blocks([blk for blk, _ in find_se_blocks(a.loaded.model)]
                                    or [blk for blk, _ in find_se_blocks(b.loaded.model)])
    return [fig6_panel(a, classes, blocks), fig6_panel(b, classes, blocks), profile_panel(a, b), knockout_panel(a, b)]


def gate_note(v: Variant) -> str | None:
    """Return what a non-sigmoid gate does to s in variant `v`, measured: tanh's negative values, ReLU's shut
    channels (s = 0) or values above 1; None for sigmoid gates."""
    gate = getattr(getattr(v.loaded.model, "cfg", None), "gate", "sigmoid")
    if gate not in ("tanh", "relu") or v.gate.empty:
        return None
    if gate == "tanh":
        col, words, lead = "below_zero", "below 0", "tanh gates let s go negative"
    elif v.gate["zero"].max() >= v.gate["above_one"].max():
        col, words, lead = "zero", "exactly 0", "ReLU gates can shut channels"
    else:
        col, words, lead = "above_one", "above 1", "ReLU gates leave s unbounded above"
    top = v.gate.loc[v.gate[col].idxmax()]
    return f"{lead}: {100 * top[col]:.0f}% of {top['block']}'s values in {v.name} are {words}."


def pair_takeaway(table: pd.DataFrame, a: Variant, b: Variant) -> str | None:
    """Return a short computed takeaway for the pair: the accuracy difference against the noise floor, and the most
    telling difference in what the gates do (negative or unbounded s, saturation, where SE is)."""
    rows = table.set_index("name")
    if a.name not in rows.index or b.name not in rows.index:
        return None
    nf = noise_floor(table)
    floor = nf["range"]

    def shown(v: Variant) -> tuple[float, str]:
        """The accuracy the table shows for `v` (the baseline: its seed mean) and its name in words."""
        if v.name == "baseline" and nf["mean"] is not None:
            return float(nf["mean"]), (f"the baseline (mean of {nf['seeds']} seeds)" if nf["seeds"] > 1 else "baseline")
        return float(rows.at[v.name, "test_accuracy"]), v.name

    (acc_a, name_a), (acc_b, name_b) = shown(a), shown(b)
    text_b, text_a, diff = difference(100 * acc_b, 100 * acc_a)  # from the rounded numbers on screen
    verdict = ("no noise floor yet (train the baseline's extra seeds)" if floor is None
               else f"inside the noise floor of {100 * floor:.2f} points"
               if abs(rounded(diff)) <= rounded(100 * floor)
               else f"outside the noise floor of {100 * floor:.2f} points")
    parts = [f"{name_b} scores {text_b}%, {name_a} {text_a}% ({diff} points, {verdict})."]
    note = gate_note(b) or gate_note(a)
    if note:
        parts.append(note)
    for v in (a, b):
        constant = list(v.gate.loc[v.gate["constant"], "block"]) if len(v.gate) else []
        if constant:
            parts.append(f"{', '.join(constant)} of {v.name} {'gives' if len(constant) == 1 else 'give'} every image "
                         "the same s: a fixed per-channel scale, no excitation left.")
    sa, sb = (v.gate.set_index("block")["saturated"] for v in (a, b))
    common = [blk for blk in sa.index if blk in sb.index]
    if common:
        gap = (sb[common] - sa[common]).abs()
        blk = gap.idxmax()
        parts.append(f"Saturation differs most at {blk}: {100 * sa[blk]:.0f}% of channels with mean s > 0.9 in "
                     f"{a.name}, {100 * sb[blk]:.0f}% in {b.name}.")
    if set(sa.index) != set(sb.index):
        parts.append(f"{a.name} has {len(sa)} SE blocks, {b.name} {len(sb)}.")
    extra_a, extra_b = (100 * float(rows.at[n, "se_share"]) for n in (a.name, b.name))
    parts.append(f"SE adds {extra_a:.1f}% parameters to {a.name} and {extra_b:.1f}% to {b.name}.")
    return finish(" ".join(parts), capitalise=False)


FINDING = "What the grid says: "  # the notes that carry sevis.train.ablations.grid_findings, one finding each
NOT_TRAINED = ("No ablation variant is trained yet. `sevis ablate` trains them (about 5 minutes each on one CPU core) "
               "into pretrained/ablations/.")
NO_FLOOR = ("The noise floor needs the baseline's extra seeds (`sevis ablate --variants {seeds}`); until then no "
            "difference can be called real.")


def default_pair(trained: list[str]) -> tuple[str, str]:
    """Return the pair the view opens with among the `trained` variants: DEFAULT_ABLATION_PAIR where trained, else
    the first trained ones (the app's selectboxes start on it)."""
    a = DEFAULT_ABLATION_PAIR[0] if DEFAULT_ABLATION_PAIR[0] in trained else trained[0]
    others = [n for n in trained if n != a] or trained
    return a, DEFAULT_ABLATION_PAIR[1] if DEFAULT_ABLATION_PAIR[1] in others else others[0]


def variant_classes(name: str) -> list[str]:
    """Return the classes variant `name` knows (the app's class picker), read from its card."""
    return card_classes(weights_file(name))


def note_kind(note: str) -> str:
    """Return how the app shows a note of this view: "finding" (What the grid says), "warning" (stale variants, no
    noise floor) or "caption"."""
    if note.startswith(FINDING):
        return "finding"
    if note.startswith("The noise floor needs") or "were trained before the fix" in note:
        return "warning"
    return "caption"


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Ablations view: the paper's ablation table beside ours, the accuracy changes, what the grid says
    (notes starting with FINDING), and the pair `request.pair` (default: default_pair) side by side: Fig. 6 of each
    at the same blocks and `request.classes`, their depth profiles, knock-out sweeps and a computed takeaway. It
    compares the trained variants, whatever model `loaded` is.

    numbers: per variant the table's accuracy (`accuracy/<variant>`, %, the baseline's seed mean), its change
    against the baseline (`delta/<variant>`, points) and SE's extra parameters (`se_extra/<variant>`, %); the noise
    floor (`noise_floor`, points; `noise_floor_seeds`); the pair's accuracy difference (`pair_difference`, points,
    B − A as the takeaway states it); per variant of the pair and SE block the share of channels with mean s > 0.9
    (`saturated/<variant>/<block>`) and, for tanh and ReLU gates, the shares of s below 0, at 0 and above 1
    (`below_zero/…`, `zero/…`, `above_one/…`)."""
    result = ViewResult(SLUG, TITLE)
    trained = trained_ablations()
    table = summary()
    if not trained or table.empty:
        result.notes.append(NOT_TRAINED)
        return result
    a, b = request.pair or default_pair(trained)
    for name in (a, b):
        if name not in ABLATIONS:
            raise SevisError(f"unknown ablation variant {name!r}; known: {', '.join(ABLATIONS)}")
        if name not in trained:
            raise ModelError(f"the ablation {name} is not trained yet: run `sevis ablate --variants {name}`; "
                             f"trained: {', '.join(trained)}")
    result.panels = [table_panel(table), deltas_panel(table)]
    stale = stale_note(table)
    result.notes += ([stale] if stale else []) + [FINDING + line for line in grid_findings(table)]
    missing = [n for n in ABLATIONS if n not in trained]
    if missing:
        result.notes.append(f"Not trained yet: {', '.join(missing)} (`sevis ablate` continues where it stopped).")
    floor = noise_floor(table)
    if floor["range"] is None:
        result.notes.append(NO_FLOOR.format(seeds=" ".join(NOISE_SEEDS[1:])))
    cmp = result.panels[0].data
    for _, row in cmp.iterrows():
        for col in ("accuracy", "delta", "se_extra"):
            if row[col] is not None and row[col] == row[col]:
                result.numbers[f"{col}/{row['variant']}"] = float(row[col])
    if floor["range"] is not None:
        result.numbers.update(noise_floor=round(100 * float(floor["range"]), 2), noise_floor_seeds=int(floor["seeds"]))
    step = (lambda lo: (lambda f: progress(lo + f / 2))) if progress else (lambda lo: None)
    va, vb = load_variant(a, progress=step(0.0)), load_variant(b, progress=step(0.5))
    classes = list(request.classes) if request.classes else fig6_default_classes(va.ref.stats.classes)
    unknown = [c for c in classes if c not in va.ref.stats.classes]
    if unknown:
        raise SevisError(f"unknown class(es) {', '.join(unknown)}; classes: {', '.join(va.ref.stats.classes)}")
    pair = pair_panels(va, vb, classes)
    for panel, v in zip(pair[:2], (va, vb)):
        if panel is None:
            result.notes.append(f"{v.name} has no SE blocks: no excitations to plot.")
    result.panels += [p for p in pair if p is not None]
    result.takeaway = pair_takeaway(table, va, vb)
    for v in (va, vb):  # what the takeaway reads from the gates: saturation, and s outside (0, 1) for other gates
        gate = getattr(getattr(v.loaded.model, "cfg", None), "gate", "sigmoid")
        cols = ["saturated"] + (["below_zero", "zero", "above_one"] if gate != "sigmoid" else [])
        for _, row in v.gate.iterrows():
            for col in cols:
                result.numbers[f"{col}/{v.name}/{row['block']}"] = float(row[col])
    shown = {v: result.numbers.get(f"accuracy/{v}") for v in (a, b)}
    if None not in shown.values():
        result.numbers["pair_difference"] = round(shown[b] - shown[a], 2)
    return result


def ablation_deltas(table: pd.DataFrame, seeds: int,
                    title: str = "Accuracy change against the baseline, ours and the paper's") -> go.Figure:
    """Bars per variant (sevis.train.ablations.comparison_table): our accuracy change vs the baseline in points, the
    paper's top-1 error change with the sign flipped (so up is better in both), and the noise floor as a band."""
    rows = table[table["variant"] != "baseline"]
    x = list(rows["variant"])
    fig = go.Figure()
    floor = rows["noise_floor"].dropna()
    if len(floor):
        f = float(floor.iloc[0])
        fig.add_hrect(y0=-f, y1=f, fillcolor="#bbbbbb", opacity=0.35, line_width=0, layer="below")
        # Named in the legend, not on the band: a band a few hundredths of a point high leaves no room for a label.
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip",
                                 marker=dict(symbol="square", size=12, color="#bbbbbb"),
                                 name=f"noise floor ±{f:.2f} (range of {seeds} baseline seeds)"))
    fig.add_trace(go.Bar(x=x, y=rows["delta"], name="ours: accuracy change (points)", marker_color=PALETTE[0],
                         customdata=rows["accuracy"],
                         hovertemplate="%{x}<br>accuracy %{customdata:.2f}%<br>change %{y:+.2f} points"
                                       "<extra>ours</extra>"))
    paper = -rows["paper_delta"].astype(float)
    fig.add_trace(go.Bar(x=x, y=paper, name="paper: top-1 error change, sign flipped (points)",
                         marker_color=PALETTE[1],
                         hovertemplate="%{x}<br>top-1 error change %{customdata:+.2f} points<extra>paper</extra>",
                         customdata=rows["paper_delta"]))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="change vs baseline (points; up is better)")
    fig.update_xaxes(title_text="variant", type="category", tickangle=-35)
    return apply_layout(fig, title, height=430, barmode="group")


def _depth_order(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Return every block of `frames` in depth order (SE_stage_block names sort by stage, then block)."""
    names = list(dict.fromkeys(b for f in frames.values() for b in f["block"]))

    def key(name: str):
        parts = name.split("_")
        numbered = name.startswith("SE_") and all(p.isdigit() for p in parts[1:])
        return tuple(int(p) for p in parts[1:]) if numbered else (99,)
    return sorted(names, key=key)


def depth_profile_pair(measures: Mapping[str, pd.DataFrame],
                       title: str = "Depth profiles of two variants") -> go.Figure:
    """The depth measures of several models overlaid: each model in its colour, solid; its untrained control in
    the same colour, dashed (when measured). Blocks a model lacks leave gaps."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for t, _, _ in DEPTH_PANELS],
                        vertical_spacing=0.2, horizontal_spacing=0.08)
    order = _depth_order(measures)
    for k, (name, m) in enumerate(measures.items()):
        color = PALETTE[k % len(PALETTE)]
        m = m.set_index("block").reindex(order)
        for i, (_, col, yrange) in enumerate(DEPTH_PANELS):
            r, c = i // 2 + 1, i % 2 + 1
            if col not in m:  # a model without SE blocks has no measures
                continue
            fig.add_trace(go.Scatter(x=order, y=m[col], mode="lines+markers", name=name, legendgroup=name,
                                     showlegend=i == 0, line=dict(color=color, width=2.4), connectgaps=False,
                                     hovertemplate=f"{name}<br>%{{x}}<br>%{{y:.3f}}<extra></extra>"), r, c)
            if f"control_{col}" in m:
                fig.add_trace(go.Scatter(x=order, y=m[f"control_{col}"], mode="lines",
                                         name=f"{name}: untrained control",
                                         legendgroup=f"{name}-control", showlegend=i == 0,
                                         line=dict(color=color, width=1.4, dash="dash"),
                                         hovertemplate=f"{name} untrained<br>%{{x}}<br>%{{y:.3f}}<extra></extra>"),
                              r, c)
            fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, tickangle=-45, row=r, col=c)
            if yrange:
                fig.update_yaxes(range=yrange, row=r, col=c)
    fig.update_annotations(font_size=12)
    return apply_layout(fig, title, height=660)


def knockout_pair(measures: Mapping[str, pd.DataFrame], column: str = "knockout_identity",
                  title: str | None = None) -> go.Figure:
    """Grouped bars: each model's accuracy change (points) when one SE block is knocked out alone."""
    order = _depth_order(measures)
    fig = go.Figure()
    for k, (name, m) in enumerate(measures.items()):
        if column not in m:
            continue
        m = m.set_index("block").reindex(order)
        fig.add_trace(go.Bar(x=order, y=100.0 * m[column].astype(float), name=name,
                             marker_color=PALETTE[k % len(PALETTE)],
                             hovertemplate=f"{name}<br>knock out %{{x}}<br>change %{{y:+.2f}} points<extra></extra>"))
    what = "s := 1 (identity)" if column == "knockout_identity" else "s := reference-set mean"
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="accuracy change (percentage points)")
    fig.update_xaxes(title_text="knocked-out SE block (shallow → deep)", type="category", categoryorder="array",
                     categoryarray=order, tickangle=-45)
    return apply_layout(fig, title or f"Accuracy change when one SE block is knocked out ({what})", height=400,
                   barmode="group")
