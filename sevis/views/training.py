"""Training view: how the excitations emerged, from the snapshots `sevis train --snapshots` kept (embedded@<epoch>).

Per snapshot, over the bundled reference set: accuracy, the per-class excitation statistics (the paper's Fig. 6)
and the depth measures beside the untrained control; across snapshots, when each block becomes class-specific.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sevis.analysis.inference import collect_statistics, split_batches
from sevis.analysis.measures import control_statistics
from sevis.analysis.reference import paper_blocks
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.core.statistics import ExcitationStats, depth_measures
from sevis.errors import ModelError, SevisError
from sevis.figures.plots import PALETTE, Panel, apply_layout, readable_table, table_figure
from sevis.figures.shared_figures import class_depth_frame, depth_profile, fig6
from sevis.models.zoo import LoadedModel, load_model
from sevis.names import DEFAULT_SPEC, EMBEDDED, fig6_default_classes, snapshot_dir, snapshot_epochs
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "training"
TITLE = "Training"

EMERGED_SHARE = 0.5  # a block has become class-specific once its learned part reaches this share of its final one
MIN_LEARNED = 0.05  # a final learned part (trained − control class specificity) below this is no emergence at all


@dataclass
class Snapshot:
    """One snapshot measured over the reference set."""

    epoch: int
    stats: ExcitationStats
    accuracy: float  # on the reference set, measured here
    test_accuracy: float | None  # on the 10k test split, as recorded when the snapshot was saved
    measures: pd.DataFrame  # sevis.core.statistics.depth_measures, with the control's columns


@dataclass
class TrainingHistory:
    """Every snapshot of one embedded model, with the untrained control they are all compared with."""

    base: str
    snapshots: list[Snapshot]
    source: str  # the reference set, in words
    blocks: list[SEBlock]  # the SE blocks every snapshot shares, in depth order

    @property
    def epochs(self) -> list[int]:
        return [s.epoch for s in self.snapshots]

    def at(self, epoch: int) -> Snapshot:
        """Return the snapshot after `epoch` epochs."""
        for s in self.snapshots:
            if s.epoch == epoch:
                return s
        raise ModelError(f"{self.base} has no snapshot after epoch {epoch}; snapshots: {self.epochs}")


def training_history(base: str = DEFAULT_SPEC, epochs: Sequence[int] | None = None,
                     progress: Callable[[float], None] | None = None) -> TrainingHistory:
    """Return the snapshots of embedded model `base` (all of them, or `epochs`) measured over the reference set."""
    epochs = list(epochs) if epochs is not None else snapshot_epochs(base)
    if not epochs:
        raise ModelError(f"{base} has no training snapshots: train it with `sevis train --snapshots 0 1 2 5 ...`")
    snapshots, control, source, blocks = [], None, "", []
    for i, epoch in enumerate(epochs):
        loaded = load_model(f"{base}@{epoch}")
        ref = loaded.reference_set()
        batches = list(split_batches(loaded, ref))
        source = f"the bundled Fashion-MNIST reference set ({len(ref)} test images, {len(ref.classes)} classes)"
        blocks = [b for b, _ in find_se_blocks(loaded.model)]
        if control is None and blocks:  # every snapshot shares the architecture, so one control serves all
            control = control_statistics(loaded, batches)
        stats, figures = collect_statistics(loaded, batches)
        measures = depth_measures(stats, control, {b.name: b.stage for b in blocks})
        snapshots.append(Snapshot(epoch, stats, float(figures["accuracy"]),
                                  (loaded.card.get("snapshot") or {}).get("test_accuracy"), measures))
        if progress:
            progress((i + 1) / len(epochs))
    return TrainingHistory(base, snapshots, source, blocks)


def specificity_by_epoch(history: TrainingHistory) -> pd.DataFrame:
    """Return one row per (snapshot, block): epoch, block, depth, stage, class specificity, the control's, the
    learned part, and the snapshot's accuracy."""
    rows = []
    for s in history.snapshots:
        m = s.measures
        part = pd.DataFrame({"epoch": s.epoch, "block": m["block"], "depth": range(len(m)), "stage": m["stage"],
                             "class_specificity": m["class_specificity"]})
        for col in ("control_class_specificity", "learned_specificity"):
            part[col] = m[col] if col in m else np.nan
        part["accuracy"] = s.accuracy
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def emergence(history: TrainingHistory) -> pd.DataFrame:
    """Return one row per block: its final class specificity, the control's, and the first snapshot epoch at which
    its learned part reached EMERGED_SHARE of its final learned part (NaN when the final learned part stays
    below MIN_LEARNED: the block never became class-specific beyond what an untrained network gives)."""
    table = specificity_by_epoch(history)
    rows = []
    for block, part in table.groupby("block", sort=False):
        part = part.sort_values("epoch")
        final = part.iloc[-1]
        learned = part["class_specificity"] - part["control_class_specificity"]
        final_learned = float(learned.iloc[-1]) if np.isfinite(learned.iloc[-1]) else np.nan
        epoch = np.nan
        if np.isfinite(final_learned) and final_learned >= MIN_LEARNED:
            reached = part.loc[learned >= EMERGED_SHARE * final_learned, "epoch"]
            epoch = float(reached.iloc[0])
        rows.append({"block": block, "stage": final["stage"], "depth": int(final["depth"]),
                     "final_class_specificity": float(final["class_specificity"]),
                     "control_class_specificity": float(final["control_class_specificity"]),
                     "final_learned": final_learned, "class_specific_from_epoch": epoch})
    return pd.DataFrame(rows)


def _blocks_words(names: Sequence[str], limit: int = 4) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def first_epoch_shares(history: TrainingHistory) -> tuple[int | None, dict[int, float]]:
    """Return (the first trained snapshot's epoch, stage -> the mean share of their final learned specificity its
    emerging blocks hold then); (None, {}) when there is no such snapshot before the last one."""
    trained = [s for s in history.snapshots if s.epoch > 0]
    if len(trained) < 2:
        return None, {}
    early = trained[0].measures.set_index("block")
    if "learned_specificity" not in early:
        return None, {}
    emerged = emergence(history).dropna(subset=["class_specific_from_epoch"])
    share = emerged.assign(early=emerged["block"].map(early["learned_specificity"]))
    share["share"] = share["early"] / share["final_learned"]
    return trained[0].epoch, {int(st): float(v) for st, v in share.groupby("stage", sort=True)["share"].mean().items()
                              if np.isfinite(v)}


def _first_epoch_shares(history: TrainingHistory) -> str:
    """Return a sentence on how much of its final learned specificity each stage has after the first trained
    snapshot ("" when there is none, or it is the last)."""
    epoch, shares = first_epoch_shares(history)
    parts = [f"stage {st} {100 * v:.0f}%" for st, v in shares.items()]
    return (f" After epoch {epoch}, the blocks hold on average this share of their final learned "
            f"specificity: {', '.join(parts)}.") if parts else ""


def training_takeaway(history: TrainingHistory) -> str:
    """Return what the snapshots show, in sentences computed from them: accuracy from first to last snapshot,
    and when the blocks became class-specific, by stage."""
    first, last = history.snapshots[0], history.snapshots[-1]
    if len(history.snapshots) == 1:
        return (f"One snapshot only (epoch {first.epoch}): reference-set accuracy {first.accuracy:.1%}; when the "
                "blocks became class-specific needs two or more.")
    text = (f"Reference-set accuracy goes from {first.accuracy:.1%} at epoch {first.epoch} to "
            f"{last.accuracy:.1%} at epoch {last.epoch}.")
    table = emergence(history)
    if table.empty:
        return text + " This model has no SE blocks, so there are no excitations to follow."
    emerged = table.dropna(subset=["class_specific_from_epoch"])
    never = table[table["class_specific_from_epoch"].isna()]
    if emerged.empty:
        return text + (f" No block's class specificity ends {MIN_LEARNED:.2f} or more above the untrained control's:"
                       " the excitations never became class-specific beyond what the data and architecture give.")
    at_init = emerged[emerged["class_specific_from_epoch"] == 0]  # the untrained network already had it
    trained = emerged[emerged["class_specific_from_epoch"] > 0]
    if len(at_init):
        text += (f" {_blocks_words(at_init['block'])} {'is' if len(at_init) == 1 else 'are'} already at half of "
                 f"{'its' if len(at_init) == 1 else 'their'} final learned specificity at initialisation.")
    when = trained["class_specific_from_epoch"]
    if len(trained) and when.min() == when.max():
        text += (f" Every {'other ' if len(at_init) else ''}block that becomes class-specific (half of its final "
                 f"learned specificity reached) does so by epoch {int(when.min())}.")
    elif len(trained):
        stages = [f"stage {int(st)} by epoch {int(e.min())}" if e.min() == e.max() else
                  f"stage {int(st)} between epochs {int(e.min())} and {int(e.max())}"
                  for st, e in trained.groupby("stage", sort=True)["class_specific_from_epoch"]]
        earliest = trained.loc[when == when.min(), "block"]
        text += (f" Blocks become class-specific (half of their final learned specificity reached): "
                 f"{'; '.join(stages)}; first {_blocks_words(earliest)} (epoch {int(when.min())}).")
    text += _first_epoch_shares(history)
    if len(never):
        text += (f" {_blocks_words(never['block'])} never {'rises' if len(never) == 1 else 'rise'} "
                 f"{MIN_LEARNED:.2f} above the untrained control.")
    return text


EMERGENCE_NAMES = {"final_class_specificity": "class specificity (final)",
                   "control_class_specificity": "untrained control", "final_learned": "learned (final − control)",
                   "class_specific_from_epoch": "class-specific from epoch"}


def emergence_words(table: pd.DataFrame) -> pd.DataFrame:
    """Return the emergence table as a reader sees it (plots.readable_table: human names, 2-3 significant
    digits), with 'never' where a block never became class-specific."""
    table = table.copy()
    epochs = table["class_specific_from_epoch"]
    table["class_specific_from_epoch"] = [
        "never" if not np.isfinite(e) else str(int(e)) for e in epochs.astype(float)]
    return readable_table(table, EMERGENCE_NAMES, digits=2)


def accuracy_figure(history: TrainingHistory) -> go.Figure:
    """Accuracy against epoch: measured on the reference set, and as recorded on the test split."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=history.epochs, y=[s.accuracy for s in history.snapshots], mode="lines+markers",
                             name="reference set (measured here)", line=dict(color=PALETTE[3], width=2.4)))
    recorded = [(s.epoch, s.test_accuracy) for s in history.snapshots if s.test_accuracy is not None]
    if recorded:
        fig.add_trace(go.Scatter(x=[e for e, _ in recorded], y=[a for _, a in recorded], mode="lines+markers",
                                 name="test split (recorded in training)", line=dict(color="#555555", dash="dash")))
    fig.update_xaxes(title_text="epoch (0 = initialisation)", tickmode="array", tickvals=list(history.epochs))
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], tickformat=".0%")
    return apply_layout(fig, "Accuracy at each snapshot", height=380)


def specificity_heatmap(history: TrainingHistory) -> go.Figure:
    """Learned class specificity (trained − untrained control) of every block (rows) at every snapshot (columns)."""
    table = specificity_by_epoch(history)
    grid = table.pivot(index="block", columns="epoch", values="learned_specificity")
    grid = grid.loc[list(dict.fromkeys(table["block"]))]
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[str(e) for e in grid.columns], y=list(grid.index),
                               colorscale="Viridis", zmin=min(0.0, float(np.nanmin(grid.to_numpy()))),
                               colorbar=dict(title="learned"),
                               hovertemplate="epoch %{x}<br>%{y}<br>learned specificity %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="epoch (0 = initialisation)", type="category")
    fig.update_yaxes(autorange="reversed", title_text="SE block (shallow at the top)")
    return apply_layout(fig, "When each block becomes class-specific: learned class specificity",
                        height=max(360, 22 * len(grid) + 160))


def training_panels(history: TrainingHistory, epoch: int, classes: Sequence[str], blocks: Sequence[str],
                    channels: str = "uniform", n: int | None = 50, seed: int = 0) -> list[Panel]:
    """Return the view's panels: the overview (training_overview_panels) and the snapshot after `epoch`
    (snapshot_panels)."""
    return training_overview_panels(history) + snapshot_panels(history, epoch, classes, blocks, channels, n, seed)


def training_overview_panels(history: TrainingHistory) -> list[Panel]:
    """Return accuracy over the snapshots, the block × epoch emergence map and the emergence table."""
    spec, table = specificity_by_epoch(history), emergence(history)
    return [
        Panel("training_accuracy", "Accuracy at each snapshot",
              f"Over {history.source}, for every snapshot of {history.base} (epoch 0 is the initialisation); the "
              "dashed line is the test-split accuracy recorded when the snapshot was saved.",
              accuracy_figure(history),
              pd.DataFrame({"epoch": history.epochs, "reference_accuracy": [s.accuracy for s in history.snapshots],
                            "test_accuracy": [s.test_accuracy for s in history.snapshots]})),
        Panel("training_emergence", "When each block becomes class-specific",
              f"Over {history.source}. Each cell is a block's class specificity at a snapshot minus the untrained "
              "control's (same architecture, seeded random weights, BatchNorm recalibrated): what training added. "
              f"A block counts as class-specific from the first snapshot where this reaches {EMERGED_SHARE:.0%} of "
              "its final value.", specificity_heatmap(history), spec),
        Panel("training_emergence_table", "The epoch each block became class-specific",
              f"From the snapshots of {history.base}: final class specificity, the untrained control's, and the "
              f"first epoch at which the learned part reached {EMERGED_SHARE:.0%} of its final value (never when "
              f"it ends below {MIN_LEARNED:.2f}).",
              table_figure(emergence_words(table), "The epoch each block became class-specific"), table),
    ]


def snapshot_panels(history: TrainingHistory, epoch: int, classes: Sequence[str], blocks: Sequence[str],
                    channels: str = "uniform", n: int | None = 50, seed: int = 0) -> list[Panel]:
    """Return the snapshot after `epoch`: its Fig. 6 and its depth profile beside the untrained control."""
    snap = history.at(epoch)
    frame = class_depth_frame(snap.stats, classes, blocks, channels, n, seed)
    return [
        Panel(f"training_fig6_epoch_{epoch:03d}", f"Mean excitation per class after epoch {epoch} (Fig. 6)",
              f"Over {history.source}, the snapshot after epoch {epoch} (reference-set accuracy {snap.accuracy:.1%})."
              " Each coloured line is one class's mean s, the dashed black line the mean over all images: where "
              "they part, the block is class-specific.",
              fig6(frame, title=f"Mean excitation per class after epoch {epoch} (the paper's Fig. 6)"), frame),
        Panel(f"training_depth_epoch_{epoch:03d}", f"Depth profile after epoch {epoch}, beside the untrained control",
              f"Over {history.source}, the snapshot after epoch {epoch}: four measures per SE block, solid; the "
              "untrained control dashed; the learned part (trained − control) dotted.",
              depth_profile(snap.measures, title=f"How the excitations depend on the class after epoch {epoch}"),
              snap.measures),
    ]


def snapshot_base(spec: str) -> str:
    """Return the embedded model whose snapshots the view shows for model `spec`: the model itself (or the one a
    snapshot belongs to) when it has snapshots, else the default model."""
    name = str(spec).partition("@")[0]
    return name if name in EMBEDDED and snapshot_epochs(name) else DEFAULT_SPEC


_LOCK = threading.Lock()
_HISTORIES: dict[tuple, TrainingHistory] = {}  # (base, its snapshot files and their mtimes) -> measured history


def cached_history(base: str, progress: Progress | None = None) -> TrainingHistory:
    """Return training_history(base) over every snapshot, measured once per process (it measures every snapshot over
    the reference set: minutes); a new or retrained snapshot is measured afresh."""
    files = sorted(snapshot_dir(base).glob("epoch_*.safetensors"))
    key = (base, tuple((f.name, f.stat().st_mtime_ns) for f in files))
    with _LOCK:
        if key in _HISTORIES:
            return _HISTORIES[key]
    history = training_history(base, progress=progress)
    with _LOCK:
        for old in [k for k in _HISTORIES if k[0] == base]:
            del _HISTORIES[old]
        _HISTORIES[key] = history
    return history


def snapshot_choices(loaded_base: LoadedModel) -> tuple[list[str], list[str], list[str]]:
    """Return (the classes, the SE blocks, the blocks Fig. 6 opens with) of a snapshot model (the app's pickers)."""
    blocks = [b for b, _ in find_se_blocks(loaded_base.model)]
    return list(loaded_base.classes), [b.name for b in blocks], paper_blocks(blocks)


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Training view for the snapshots of the embedded model picked (snapshot_base): accuracy at each
    snapshot, when each block becomes class-specific (map and table), then for every snapshot (or `request.epoch`'s
    alone) its Fig. 6 (at `request.classes` and `request.blocks`, `request.channels` / `n` / `seed` as in Class ×
    depth: 50 evenly spaced channels by default) and its depth profile; the app shows the snapshot its slider picks.

    numbers: reference-set accuracy per snapshot (`accuracy/epoch_<e>`), the test accuracy recorded when it was saved
    (`test_accuracy/epoch_<e>`), per block the first epoch it is class-specific (`class_specific_from_epoch/<block>`,
    None: never) and its final class specificity (`final_class_specificity/<block>`), and per stage the share of
    their final learned specificity its blocks hold after the first trained snapshot (`first_epoch_share/stage_<n>`).
    """
    result = ViewResult(SLUG, TITLE)
    base = snapshot_base(loaded.spec)
    if not snapshot_epochs(base):
        result.notes.append(f"{base} has no training snapshots. Train it with `sevis train --snapshots 0 1 2 5 10 20` "
                            "to keep them.")
        return result
    if base != str(loaded.spec).partition("@")[0]:
        result.notes.append(f"{loaded.name} has no training snapshots; these are {base}'s.")
    history = cached_history(base, progress)
    stats = history.snapshots[-1].stats
    classes = list(request.classes) if request.classes else fig6_default_classes(stats.classes)
    blocks = list(request.blocks) if request.blocks else paper_blocks(history.blocks)
    unknown = [c for c in classes if c not in stats.classes] + [b for b in blocks if b not in stats.blocks]
    if unknown:
        raise SevisError(f"unknown class(es) or block(s) {', '.join(unknown)}; classes: {', '.join(stats.classes)}; "
                         f"blocks: {', '.join(stats.blocks)}")
    if request.epoch is not None:
        history.at(request.epoch)  # a ModelError names the snapshots there
    result.panels = training_overview_panels(history)
    for epoch in history.epochs if request.epoch is None else [request.epoch]:
        result.panels += snapshot_panels(history, epoch, classes, blocks, request.channels or "uniform",
                                         request.n or 50, request.seed)
    result.takeaway = training_takeaway(history)
    for s in history.snapshots:
        result.numbers[f"accuracy/epoch_{s.epoch}"] = s.accuracy
        result.numbers[f"test_accuracy/epoch_{s.epoch}"] = s.test_accuracy
    for _, row in emergence(history).iterrows():
        epoch = row["class_specific_from_epoch"]
        result.numbers[f"class_specific_from_epoch/{row['block']}"] = int(epoch) if np.isfinite(epoch) else None
        result.numbers[f"final_class_specificity/{row['block']}"] = float(row["final_class_specificity"])
    for stage, share in first_epoch_shares(history)[1].items():
        result.numbers[f"first_epoch_share/stage_{stage}"] = share
    return result
