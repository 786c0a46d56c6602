"""Tour steps that need no image and no search (sevis.views.tour assembles them): where SE sits, what the model's
findings against the paper are, what SE costs, SE in another architecture (the trained SE-Inception of the
families), and how the excitations became class-specific during training (the default model's snapshots). Each
returns a TourStep: a title, two sentences computed from numbers, its panels, and what it lacks here, said plainly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sevis.analysis.reference import reference_statistics
from sevis.analysis.snapshot_measures import SnapshotSpecificity
from sevis.core.recorder import find_se_blocks
from sevis.core.statistics import depth_measures
from sevis.figures.plots import Panel, table_figure
from sevis.figures.se_diagram import unit_figure, unit_sentences, unit_shapes
from sevis.figures.shared_figures import depth_profile
from sevis.figures.tour_figures import emergence_figure, stage_cost_figure
from sevis.figures.tour_words import listing, num, pct, plural, quoted
from sevis.models.params import count_parameters, se_parameters
from sevis.models.zoo import LoadedModel

STEP_TITLES = {
    "where": "Where SE sits", "block": "One block, step by step", "image": "One image: early vs late blocks",
    "class_depth": "Class × depth: Fig. 6 and the depth profile", "knockout": "A knock-out that flips a prediction",
    "channel": "The most class-selective channel", "paper": "What this model does not show of the paper",
    "cost": "What SE costs: its parameters", "training": "How the excitations emerge during training",
    "inception": "Beyond ResNet: SE in an Inception network"}
NEEDS_LABELS = ("This step needs a labelled reference set with at least two classes of 5 or more images: name a "
                "folder with one sub-folder per class in the sidebar.")
NEEDS_TRAINING = ("This model has random weights, so this step shows what the architecture alone does; nothing here "
                  "was learned.")
INCEPTION_RUN = "se-inception"  # sevis.names.FAMILY_RUNS: the family model the Inception step loads
SIGNIFICANT_GAIN = 0.02  # a mean class specificity changing less than this over training counts as unchanged


@dataclass
class TourStep:
    key: str
    title: str
    sentences: list[str]
    panels: list[Panel] = field(default_factory=list)
    formula: str | None = None  # LaTeX, for the block step
    needs: str | None = None  # what the step lacks here (labels, trained weights), in words; None when complete


# ---------------------------------------------------------------------------------------- 1. where
def where_step(loaded: LoadedModel) -> TourStep:
    """The unit around the first SE block drawn from the model's shapes (and an Inception module where there is one)."""
    u = unit_shapes(loaded)
    if u is None:
        return TourStep("where", STEP_TITLES["where"],
                        [f"{loaded.name} has no SE blocks.", "There is nothing to show."])
    units = [u]
    inc = unit_shapes(loaded, prefer="inception")
    if inc is not None and inc.unit_path != u.unit_path:
        units.append(inc)
    panels = [Panel(f"tour_where_{x.block.name}", f"Where SE sits: {x.block.name}",
                    "Drawn from this model's own layers and shapes (one forward pass): the SE block (orange) squeezes "
                    "its input U to one number per channel, excites them through a bottleneck and scales U.",
                    unit_figure(x), pd.DataFrame([{"layer": l.text, "output": "×".join(map(str, l.out_shape))}
                                                  for b in x.branches for l in b]))
                  for x in units]
    return TourStep("where", STEP_TITLES["where"], unit_sentences(units[-1]), panels)


# ---------------------------------------------------------------------------------------- the paper
def paper_step(paper: pd.DataFrame | None, source: str, random_weights: bool) -> TourStep:
    """The paper's Section 7.2 findings this model does not show, said plainly."""
    if random_weights:
        return TourStep("paper", STEP_TITLES["paper"], [
            "The paper's findings are about trained networks, and these weights are random.",
            "So none of them can be checked on this model: pick a trained model to see which hold."],
            needs=NEEDS_TRAINING)
    if paper is None or not len(paper):
        return TourStep("paper", STEP_TITLES["paper"], [
            f"The paper's findings are checked per class, and {source} has too few labelled images per class.",
            "So this model's agreement with the paper cannot be judged here."], needs=NEEDS_LABELS)
    no = paper[paper["shows"] == "no"]
    na = paper[paper["shows"] == "n/a"]
    yes = paper[paper["shows"] == "yes"]
    first = (f"Of the paper's {len(paper)} findings, this model shows {len(yes)}"
             + (f" ({listing(quoted(yes['finding']))})" if len(yes) else "")
             + (f" and does not show {listing(quoted(no['finding']))}." if len(no) else "; it contradicts none."))
    if len(no):
        row = no.iloc[0]
        second = (f"{row['finding'].capitalize()}: the paper sees '{row['paper']}', while here {row['this_model']} "
                  f"(the criterion: {row['criterion']}).")
    elif len(na):
        second = (f"{listing(quoted(na['finding']))} cannot be judged here: "
                  f"{na.iloc[0]['this_model']}.")
    else:
        second = "Every finding the paper states for Fig. 6 holds in this model by the criteria in the table."
    frame = paper[["finding", "paper", "blocks", "this_model", "criterion", "shows"]]
    return TourStep("paper", STEP_TITLES["paper"], [first, second], [
        Panel("tour_paper_vs_model", "The paper's findings in this model", f"Checked on {source}; the verdict "
              "follows the criterion in its row.", table_figure(frame, "The paper's findings in this model"), frame)])


# ---------------------------------------------------------------------------------------- cost
def cost_numbers(loaded: LoadedModel) -> dict[str, int]:
    """Return SE's parameters and those of the same network without them (the numbers the cost step states)."""
    table = se_parameters(loaded.model)
    total = int(table.loc[table["stage"] == "total", "parameters"].sum())
    return {"se_parameters": total, "parameters_without_se": count_parameters(loaded.model) - total}


def cost_step(loaded: LoadedModel) -> TourStep:
    """SE's extra parameters, per stage and against the network without them."""
    table = se_parameters(loaded.model)
    rows = table[table["stage"] != "total"]
    numbers = cost_numbers(loaded)
    total, base = numbers["se_parameters"], numbers["parameters_without_se"]
    labels = [f"stage {s}" for s in rows["stage"]]
    fig = stage_cost_figure(labels, rows["parameters"], rows["share"])
    first = (f"SE adds {total:,} parameters to the {base:,} of the same network without it "
             f"(+{total / max(base, 1):.1%}); the paper's SE-ResNet-50 adds about 10% (2.5M to 25M).")
    if len(rows):
        k = int(np.argmax(rows["parameters"].to_numpy()))
        r = rows.iloc[k]
        second = (f"Stage {r['stage']} holds {r['share']:.0%} of them: an SE block costs about 2C²/r parameters, and "
                  f"that stage's blocks have C = {int(r['channels'])} channels.")
    else:
        second = "No SE parameters were found."
    return TourStep("cost", STEP_TITLES["cost"], [first, second],
                    [Panel("tour_se_cost", "SE's extra parameters per stage", "Parameters inside the SE blocks of each "
                           "stage; the share of all SE parameters is written on each bar.", fig, rows)])


# ---------------------------------------------------------------------------------------- SE-Inception
def inception_measures(family: LoadedModel) -> pd.DataFrame:
    """Return SE-Inception's depth measures per SE block: those its card recorded when `sevis family` evaluated it
    (with the untrained control), else measured here over the bundled reference set (without the control)."""
    rows = (family.card.get("evaluation") or {}).get("excitation") or []
    frame = pd.DataFrame(rows)
    if len(frame) and "class_specificity" in frame:
        return frame
    blocks = [b for b, _ in find_se_blocks(family.model)]
    return depth_measures(reference_statistics(family).stats, None, {b.name: b.stage for b in blocks})


def placement_words(loaded: LoadedModel) -> str:
    """Return how the current model's first SE block sits compared with SE-Inception's, as a clause: "whereas
    fmnist_se_resnet50 puts SE on a residual branch, before the shortcut is added"."""
    u = unit_shapes(loaded)
    name = loaded.name
    if u is None:
        return f"whereas {name} has no SE block"
    if u.kind == "residual":
        return (f"whereas {name} puts SE on a residual branch, before the shortcut is added" if u.integration ==
                "standard" else f"whereas {name} puts SE '{u.integration}' in its residual units")
    if u.kind == "inception":
        return f"as {name} does"
    return f"whereas {name} puts SE after the layers of its blocks"


def inception_step(loaded: LoadedModel, family: LoadedModel | None, missing: str | None = None) -> TourStep:
    """SE-Inception (trained by `sevis family`): where its SE blocks sit (on the concatenation of an Inception
    module's branches, drawn from its shapes) and its class specificity by depth beside the untrained control;
    the first sentence compares the placement with the current model's. Without the weights: one sentence."""
    title = STEP_TITLES["inception"]
    if family is None:
        return TourStep("inception", title, [f"The trained SE-Inception model is not in this installation ("
                                             f"{missing or 'its weights are missing'}), so this step has nothing "
                                             "to show."])
    u = unit_shapes(family, prefer="inception") or unit_shapes(family)
    measures = inception_measures(family)
    accuracy = (family.card.get("evaluation") or {}).get("accuracy")
    acc = f", {pct(accuracy)} correct on the reference set" if accuracy is not None else ""
    if u is not None and u.kind == "inception":
        first = (f"SE-Inception ({len(measures)} SE blocks{acc}) puts each SE block on an Inception module's output: "
                 f"at {u.block.name} its {len(u.branches)} branches are concatenated into {u.block.channels} "
                 f"channels, which SE rescales, {placement_words(loaded)}.")
    else:
        first = (f"This SE-Inception ({len(measures)} SE blocks{acc}) has no Inception module with parallel branches "
                 f"to draw ({placement_words(loaded)}).")
    part = measures.dropna(subset=["class_specificity"]) if len(measures) else measures
    if not len(part):
        second = "Its s is the same for every image at every block, so class specificity is undefined."
    else:
        spec = part["class_specificity"].to_numpy(np.float64)
        k = int(np.argmax(spec))
        second = (f"Its class specificity is {num(spec[0])} at {part['block'].iloc[0]} and {num(spec[-1])} at "
                  f"{part['block'].iloc[-1]}, highest at {part['block'].iloc[k]} ({num(spec[k])})")
        control = (part["control_class_specificity"].to_numpy(np.float64) if "control_class_specificity" in part
                   else np.array([np.nan]))
        if np.isfinite(control).any():
            learned = float(spec[k] - control[k]) if np.isfinite(control[k]) else float("nan")
            second += f"; its untrained control reaches at most {num(np.nanmax(control))}" + (
                f", so {learned / spec[k]:.0%} of the peak at {part['block'].iloc[k]} was learned." if
                np.isfinite(learned) and learned > 0 and spec[k] > 0 else
                f", so the peak at {part['block'].iloc[k]} is no higher than the untrained network's.")
        else:
            second += "."
    panels = []
    if u is not None:
        panels.append(Panel("tour_inception_where", f"Where SE sits in SE-Inception: {u.block.name}",
                            "Drawn from SE-Inception's own layers and shapes (one forward pass): the branches run "
                            "side by side, are concatenated, and the SE block (orange) rescales the concatenation.",
                            unit_figure(u), pd.DataFrame([{"branch": i + 1, "layer": l.text,
                                                           "output": "×".join(map(str, l.out_shape))}
                                                          for i, b in enumerate(u.branches) for l in b])))
    if len(part):
        panels.append(Panel("tour_inception_depth", "SE-Inception: the excitations by depth",
                            "Four measures per SE block of SE-Inception over the bundled reference set, the trained "
                            "model solid, its untrained control dashed where it was measured (from the model card "
                            "`sevis family` wrote).",
                            depth_profile(measures, title="SE-Inception: how the excitations depend on the class, "
                                                          "from shallow to deep blocks"), measures))
    return TourStep("inception", title, [first, second], panels)


# ---------------------------------------------------------------------------------------- training
def snapshot_label(epoch: int) -> str:
    return "epoch 0 (untrained)" if epoch == 0 else f"after epoch {epoch}"


def training_step(loaded: LoadedModel, snap: SnapshotSpecificity | None, missing: str | None = None) -> TourStep:
    """How class specificity emerged during training: per SE block at every snapshot of the default model (or the
    current one, when it is that model or one of its snapshots), epoch 0 being the untrained initialisation."""
    title = STEP_TITLES["training"]
    if snap is None:
        return TourStep("training", title, [f"The training snapshots are not in this installation ("
                                            f"{missing or 'no snapshot files'}), so this step has nothing to show."])
    own = str(loaded.spec).partition("@")[0] == snap.base
    epoch = str(loaded.spec).partition("@")[2]
    whose = f"In {snap.base}'s training snapshots" + (
        f" (this model is the one after epoch {epoch})" if own and epoch.isdigit() else
        "" if own else f" ({loaded.name} kept none)")
    if snap.problem:
        return TourStep("training", title, [f"{whose}, the reference set is {snap.source}.",
                                            "It has too few labelled images per class for class specificity, so "
                                            "its emergence is not shown."], needs=NEEDS_LABELS)
    matrix, means = snap.by_epoch(), snap.mean_by_epoch()
    epochs = snap.epochs
    labels = [snapshot_label(e) for e in epochs]
    fig = emergence_figure(matrix, labels, f"Class specificity of every SE block at each snapshot of {snap.base}")
    data = matrix.reset_index()
    panel = Panel("tour_training_emergence", f"Class specificity during the training of {snap.base}",
                  f"Over {snap.source}: one row per training snapshot (epoch 0 is the initialisation, the untrained "
                  "network), one column per SE block; each cell is the share of the variance of s that lies between "
                  "class means (0 = every class gets the same s).", fig, data)
    e0, en = epochs[0], epochs[-1]
    start, end = means.get(e0, np.nan), means.get(en, np.nan)
    when0 = "Before training (epoch 0)" if e0 == 0 else f"At the first snapshot (after epoch {e0})"
    final = matrix.loc[en]
    if not np.isfinite(end):
        sentences = [f"{whose}, s is the same for every image at every block, so class specificity is undefined.",
                     "There is nothing to follow over the snapshots."]
        return TourStep("training", title, sentences, [panel])
    top = str(final.idxmax())
    first = (f"{whose}, {when0[0].lower() + when0[1:]} the blocks' class specificity averages {num(start)}; after "
             f"{plural(en, 'epoch')} it averages {num(end)}, highest at {top} ({num(final[top])}).")
    if len(epochs) < 2:
        second = "Only one snapshot is here, so there is no change to follow."
    elif abs(end - start) < SIGNIFICANT_GAIN or not np.isfinite(start):
        second = (f"Training changes it little ({num(end - start, '+.2f')} on average), so the class dependence "
                  "here is mostly what the untrained network already gives." if np.isfinite(start) else
                  "At the first snapshot it is undefined (every image gets the same s).")
    else:
        e1 = epochs[1]
        share = (means[e1] - start) / (end - start)
        acc = snap.table.groupby("epoch")["accuracy"].first()
        accuracy = (f", while reference accuracy went from {pct(acc[e0])} to {pct(acc[e1])} (finally {pct(acc[en])})"
                    if acc.notna().all() else "")
        second = (f"After {plural(e1, 'epoch')} it is already {num(means[e1])}: {share:.0%} of the whole change "
                  f"had happened by then{accuracy}.")
    return TourStep("training", title, [first, second], [panel])
