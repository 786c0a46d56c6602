"""A model's depth profile over a labelled set: its statistics, its untrained control's, the knock-out sweeps,
the measures per block and the paper-vs-model table (used by `sevis evaluate`, model cards and the app)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from sevis.analysis.control import untrained_control
from sevis.analysis.inference import collect_statistics
from sevis.analysis.knockout import knockout_sweep
from sevis.analysis.paper import paper_vs_model
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.core.statistics import ExcitationStats, depth_measures
from sevis.models.zoo import LoadedModel

Batches = Sequence[tuple[torch.Tensor, np.ndarray]]
CONTROL_SEEDS = (0, 1, 2)  # the untrained control is measured with each: its mean and range, not one draw


@dataclass
class ModelMeasures:
    """Everything the depth profile shows for one model over one labelled set."""

    stats: ExcitationStats
    figures: dict  # accuracy, per_class_accuracy, images
    control: list[ExcitationStats] | None  # one per seed of CONTROL_SEEDS
    knockout_identity: pd.DataFrame | None
    knockout_mean: pd.DataFrame | None
    measures: pd.DataFrame  # one row per block (sevis.core.statistics.depth_measures)
    paper: pd.DataFrame  # one row per finding (sevis.analysis.paper.paper_vs_model)


def control_statistics(loaded: LoadedModel, batches: Batches, calibration: Batches | None = None,
                       seed: int = 0, progress: Callable[[int], None] | None = None,
                       classes: Sequence[str] | None = None) -> ExcitationStats:
    """Return the untrained control's statistics over `batches` (labels index `classes`, default the model's),
    its BatchNorm recalibrated on `calibration` (default: the same batches; the images only, never the labels)."""
    control = untrained_control(loaded, (x for x, _ in (calibration or batches)), seed=seed)
    return collect_statistics(control, batches, progress=progress, classes=classes)[0]


def control_statistics_seeds(loaded: LoadedModel, batches: Batches, calibration: Batches | None = None,
                             seeds: Sequence[int] = CONTROL_SEEDS, progress: Callable[[int], None] | None = None,
                             classes: Sequence[str] | None = None) -> list[ExcitationStats]:
    """Return the untrained control's statistics for each seed in `seeds` (control_statistics, one per seed)."""
    return [control_statistics(loaded, batches, calibration, seed, progress, classes) for seed in seeds]


def measure_model(loaded: LoadedModel, batches: Batches, calibration: Batches | None = None,
                  control: bool = True, knockout: bool = True,
                  progress: Callable[[int], None] | None = None) -> ModelMeasures:
    """Return the depth profile of `loaded` over labelled `batches` (a list, iterated several times).

    `progress` is called with the number of images after each batch of each pass."""
    stats, figures = collect_statistics(loaded, batches, progress=progress)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    ctrl = (control_statistics_seeds(loaded, batches, calibration, progress=progress) if control and blocks
            else None)
    ko_id = ko_mean = None
    if knockout and blocks:
        ko_id = knockout_sweep(loaded, batches, "identity", progress=progress)
        means = {b: stats.overall_mean(b) for b in stats.blocks}
        ko_mean = knockout_sweep(loaded, batches, "mean", means=means, progress=progress)
    measures, paper = measures_and_paper(stats, ctrl, blocks, ko_id, ko_mean)
    return ModelMeasures(stats, figures, ctrl, ko_id, ko_mean, measures, paper)


def measures_and_paper(stats: ExcitationStats, control: "ExcitationStats | Sequence[ExcitationStats] | None",
                       blocks: Sequence[SEBlock],
                       knockout_identity: pd.DataFrame | None = None,
                       knockout_mean: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (the depth measures per block with the knock-out changes, the paper-vs-model table)."""
    measures = depth_measures(stats, control, {b.name: b.stage for b in blocks})
    for name, sweep in (("knockout_identity", knockout_identity), ("knockout_mean", knockout_mean)):
        if sweep is not None:
            measures[name] = measures["block"].map(sweep.set_index("block")["change"])
    return measures, paper_vs_model(measures, knockout_identity, knockout_mean)
