"""The Ablations view's computation: the paper's ablation table beside ours, and two variants side by side.

The table and the depth profiles come from the variants' model cards (sevis.ablations wrote them when it trained
each variant: accuracy on the 10k test split, the measures and knock-out sweeps on the reference set); Fig. 6 and
what each gate lets s do are measured here over the bundled reference set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures as F
from .ablations import NOISE_SEEDS, comparison_table, noise_floor, summary, weights_file
from .analysis import ExcitationStats
from .checkpoint import read_card
from .errors import ModelError
from .names import ABLATIONS, fig6_default_classes
from .paper import CONSTANT_SPREAD
from .recorder import find_se_blocks
from .views import ReferenceStats, paper_blocks, reference_statistics
from .zoo import LoadedModel, load_checkpoint

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


def load_variant(name: str, out_dir: str | Path | None = None) -> Variant:
    """Return variant `name` with its reference-set statistics, its card's measures and its gate facts."""
    path = weights_file(name, out_dir)
    if not path.exists():
        raise ModelError(f"the ablation {name} is not trained yet: run `sevis ablate --variants {name}`")
    loaded = load_checkpoint(path)
    loaded.spec = f"ablation:{name}"
    card = read_card(path)
    rows = (card.get("evaluation") or {}).get("excitation") or []
    measures = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["block"])
    reference = reference_statistics(loaded)
    return Variant(name, loaded, reference, measures, gate_facts(reference.stats))


def gate_facts(stats: ExcitationStats) -> pd.DataFrame:
    """Return, per SE block of the reference statistics, what the gate lets s do: the share of values below 0,
    exactly 0 and above 1, the share of channels whose mean s exceeds 0.9, the mean of s, and whether s is the
    same for every image (`constant`)."""
    rows = [{"block": block, **stats.outside_shares(block), "saturated": stats.saturation(block),
             "mean_s": float(stats.overall_mean(block).mean()),
             "constant": stats.spread(block) < CONSTANT_SPREAD} for block in stats.blocks]  # as the cards' spread
    return pd.DataFrame(rows, columns=["block", "below_zero", "zero", "above_one", "saturated", "mean_s", "constant"])


# ------------------------------------------------------------------------------------------- panels
def table_panel(table: pd.DataFrame | None = None, out_dir: str | Path | None = None) -> F.Panel:
    """Return the paper's ablation rows beside ours (sevis.ablations.comparison_table) as a panel."""
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
    return F.Panel("ablation_table", "The paper's ablations beside ours", caption,
                   F.table_figure(display_table(cmp), "The paper's ablations beside ours"), cmp)


def stale_note(table: pd.DataFrame) -> str | None:
    """Return a warning naming the variants an older data pipeline trained, or None when all are current."""
    stale = list(table.loc[table["stale"].astype(bool), "name"]) if "stale" in table and len(table) else []
    if not stale:
        return None
    return (f"{len(stale)} of {len(table)} variants ({', '.join(stale)}) were trained before the fix of the "
            "in-context training data (2026-11-24: each training canvas held a shrunken in-context image instead of "
            "the garment), so their numbers compare variants under that flawed recipe; `sevis ablate` trains them "
            "again.")


def display_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """Return the comparison table as text for reading: two decimals, signed changes, "—" where there is no value."""
    def num(v, fmt: str) -> str:
        return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)

    out = pd.DataFrame({
        "axis": cmp["axis"], "variant": cmp["variant"], "paper's row": cmp["paper"],
        "paper top-1 err %": [num(v, ".2f") for v in cmp["paper_top1_err"]],
        "paper Δ err": [num(v, "+.2f") for v in cmp["paper_delta"]],
        "paper params (M)": [num(v, ".1f") for v in cmp["paper_params_m"]],
        "our accuracy %": [num(v, ".2f") for v in cmp["accuracy"]],
        "our Δ acc (points)": [num(v, "+.2f") for v in cmp["delta"]],
        "inside noise?": ["—" if v is None or v != v else ("yes" if v else "no") for v in cmp["within_noise"]],
        "SE extra params %": [num(v, ".1f") for v in cmp["se_extra"]],
    }) if len(cmp) else pd.DataFrame(columns=DISPLAY_COLUMNS)
    return out


def deltas_panel(table: pd.DataFrame) -> F.Panel:
    """Return the accuracy changes against the baseline (ours, and the paper's error changes) as bars."""
    cmp = comparison_table(table)
    return F.Panel("ablation_deltas", "Accuracy change against the baseline",
                   "Blue: our accuracy change against the baseline (mean of its seeds), in points; orange: the paper's "
                   "top-1 error change with the sign flipped, so up is better in both. The grey band is the noise "
                   "floor: changes inside it are not told apart from seed-to-seed variation.",
                   F.ablation_deltas(cmp, noise_floor(table)["seeds"]), cmp)


def fig6_panel(v: Variant, classes: list[str], blocks: list[str], n: int = 50) -> F.Panel | None:
    """Return variant `v`'s Fig. 6 at `blocks` (those it has; else its own paper blocks) for `classes`; None when
    it has no SE block."""
    own = [b for b in blocks if b in v.ref.stats.blocks] or paper_blocks([b for b, _ in find_se_blocks(v.loaded.model)])
    if not own:
        return None
    frame = F.class_depth_frame(v.ref.stats, classes, own, "uniform", n, 0)
    return F.Panel(f"fig6_{v.name}", f"{v.name}: mean excitation per class (Fig. 6)",
                   f"{v.name} ({ABLATIONS[v.name]['change']}) over {v.ref.source}; {n} channels sampled uniformly "
                   "(seed 0). Coloured lines: class means; dashed black: all images.",
                   F.fig6(frame, cols=3, title=f"{v.name}: mean excitation per class"), frame)


def profile_panel(a: Variant, b: Variant) -> F.Panel:
    """Return the two variants' depth profiles (card measures on the reference set) overlaid."""
    data = pd.concat([a.measures.assign(variant=a.name), b.measures.assign(variant=b.name)], ignore_index=True)
    return F.Panel("ablation_depth_profiles", f"Depth profiles: {a.name} and {b.name}",
                   "The Class × depth view's measures per SE block over the reference set, one colour per variant, its "
                   "untrained control dashed in the same colour. Blocks a variant has no SE in leave gaps.",
                   F.depth_profile_pair({a.name: a.measures, b.name: b.measures},
                                        f"Depth profiles: {a.name} and {b.name}"), data)


def knockout_panel(a: Variant, b: Variant) -> F.Panel:
    """Return the two variants' knock-out sweeps (s := 1 per block, from their cards) side by side."""
    data = pd.concat([m[["block", c]].assign(variant=v.name) for v, m in ((a, a.measures), (b, b.measures))
                      for c in ["knockout_identity"] if c in m], ignore_index=True)
    return F.Panel("ablation_knockouts", f"Knock-out sweeps: {a.name} and {b.name}",
                   "Accuracy change on the reference set when one SE block's s is set to 1 (the block passes its "
                   "input unchanged), one bar per variant and block.",
                   F.knockout_pair({a.name: a.measures, b.name: b.measures}), data)


def pair_panels(a: Variant, b: Variant, classes: list[str] | None = None,
                blocks: list[str] | None = None) -> list[F.Panel | None]:
    """Return Fig. 6 of each variant at the same blocks and classes (None for a variant without SE), their depth
    profiles and knock-out sweeps."""
    classes = classes or fig6_default_classes(a.ref.stats.classes)
    blocks = blocks or paper_blocks([blk for blk, _ in find_se_blocks(a.loaded.model)]
                                    or [blk for blk, _ in find_se_blocks(b.loaded.model)])
    return [fig6_panel(a, classes, blocks), fig6_panel(b, classes, blocks), profile_panel(a, b), knockout_panel(a, b)]


# ------------------------------------------------------------------------------------------ takeaway
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
    floor = noise_floor(table)["range"]
    acc_a, acc_b = float(rows.at[a.name, "test_accuracy"]), float(rows.at[b.name, "test_accuracy"])
    diff = 100 * (acc_b - acc_a)
    verdict = ("no noise floor yet (train the baseline's extra seeds)" if floor is None
               else f"inside the noise floor of {100 * floor:.2f} points" if abs(diff) <= 100 * floor
               else f"outside the noise floor of {100 * floor:.2f} points")
    parts = [f"{b.name} scores {100 * acc_b:.2f}% against {a.name}'s {100 * acc_a:.2f}% ({diff:+.2f} points, "
             f"{verdict})."]
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
    return " ".join(parts)


def lab_panels(a: str, b: str, classes: list[str] | None = None, out_dir: str | Path | None = None) -> tuple[list[F.Panel], str | None]:
    """Return every panel of the Ablations view for variants `a` and `b`, and its takeaway (`sevis export
    ablations`)."""
    table = summary(out_dir)
    if table.empty:
        raise ModelError("no ablation variant is trained yet: run `sevis ablate`")
    va, vb = load_variant(a, out_dir), load_variant(b, out_dir)
    panels = [table_panel(table), deltas_panel(table)] + [p for p in pair_panels(va, vb, classes) if p is not None]
    return panels, pair_takeaway(table, va, vb)
