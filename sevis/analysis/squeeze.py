"""What SE adds beyond its input: the class specificity of s beside that of the squeeze z = GAP(U) it is computed
from, and of the plain twin's pooled features at the same position (the twin, trained without SE, keeps an
identity where the SE block sits, so the same module path names the same place).

Late excitations are class-specific in the paper and here, but so are the features entering the gate: s can only be
said to add class information where it is more class-specific than z. The untrained control's s − z (seeded random
weights, the same seeds as the depth profile) is the baseline: a random gate also changes specificity.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sevis.analysis.intervals import NO_DIFFERENCE, TOO_FEW, paired_bootstrap
from sevis.analysis.measures import CONTROL_SEEDS
from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.core.statistics import ExcitationStats
from sevis.models.zoo import LoadedModel

Batches = Iterable[tuple[torch.Tensor, np.ndarray]]
SQUEEZE_COLUMNS = ["block", "s", "z", "s_minus_z", "twin", "control_s_minus_z", "control_s_minus_z_min",
                   "control_s_minus_z_max", "adds"]


@contextmanager
def pooled_inputs(model: nn.Module, paths: Mapping[str, str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, the global average pool of the input of each module (name -> module path) is kept in the
    yielded dict after every forward pass (N×C): z for an SE module, the feature at that place for an identity."""
    modules = dict(model.named_modules())
    caught: dict[str, torch.Tensor] = {}
    handles = []
    for name, path in paths.items():
        def hook(_module, args, name=name):
            x = args[0]
            caught[name] = (x.mean(dim=(2, 3)) if x.dim() == 4 else x.mean(dim=1) if x.dim() == 3 else x).detach()
        handles.append(modules[path].register_forward_pre_hook(hook))
    try:
        yield caught
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def pooled_statistics(model: nn.Module, paths: Mapping[str, str], batches: Batches,
                      classes: Sequence[str]) -> ExcitationStats:
    """Return per-class statistics of the pooled inputs of the modules at `paths` (name -> path) over `batches`."""
    model.eval()
    stats = None
    with pooled_inputs(model, paths) as caught:
        for x, labels in batches:
            model(x)
            if stats is None:
                stats = ExcitationStats(classes, {n: v.shape[1] for n, v in caught.items()})
            stats.update({n: caught[n] for n in paths}, labels)
    if stats is None:
        raise ValueError("no batches to pool over")
    return stats


def squeeze_statistics(loaded: LoadedModel, batches: Batches) -> ExcitationStats:
    """Return per-class statistics of z, the squeeze each SE block of `loaded` computes its s from."""
    return s_and_z_statistics(loaded, batches)[1]


def twin_statistics(twin: LoadedModel, blocks: Sequence[SEBlock], batches: Batches) -> ExcitationStats | None:
    """Return per-class statistics of the plain twin's pooled features where `blocks` sit in the SE model (the
    twin's module at the same path, an identity); None when the twin has no module at those paths."""
    modules = dict(twin.model.named_modules())
    if not blocks or any(b.path not in modules for b in blocks):
        return None
    return pooled_statistics(twin.model, {b.name: b.path for b in blocks}, batches, twin.classes)


@torch.no_grad()
def s_and_z_statistics(loaded: LoadedModel, batches: Batches) -> tuple[ExcitationStats, ExcitationStats]:
    """Return (statistics of s, statistics of z) of every SE block over `batches`, in one pass. z is read by the
    recorder (the input of W1, whatever the block's layout), so channels-last SE blocks are pooled correctly."""
    from sevis.core.recorder import ExcitationRecorder
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    s_stats = ExcitationStats(loaded.classes, {b.name: b.channels for b in blocks})
    z_stats = ExcitationStats(loaded.classes, {b.name: b.channels for b in blocks})
    loaded.model.eval()
    with ExcitationRecorder(loaded.model, capture_internals=True) as rec:
        for x, labels in batches:
            loaded.model(x)
            squeezes = rec.squeezes
            s_stats.update(rec.pop(), labels)  # pop also forgets this batch's internals
            missing = [b.name for b in blocks if b.name not in squeezes]
            if missing:
                raise ValueError(f"cannot read the squeeze z of {', '.join(missing)}")
            z_stats.update({b.name: squeezes[b.name].reshape(len(labels), -1) for b in blocks}, labels)
    return s_stats, z_stats


def _control_s_minus_z(loaded: LoadedModel, batches: list, seeds: Sequence[int]) -> list[dict[str, float]]:
    """Return, per control seed, s − z class specificity per block of the untrained control (BatchNorm recalibrated
    on the same images, as the depth profile's control)."""
    from sevis.analysis.control import untrained_control
    out = []
    for seed in seeds:
        s_stats, z_stats = s_and_z_statistics(untrained_control(loaded, (x for x, _ in batches), seed=seed), batches)
        out.append({b: s_stats.class_specificity(b) - z_stats.class_specificity(b) for b in s_stats.blocks})
    return out


def what_se_adds(loaded: LoadedModel, s_stats: ExcitationStats, batches: list, twin: LoadedModel | None = None,
                 seeds: Sequence[int] = CONTROL_SEEDS, z_stats: ExcitationStats | None = None) -> pd.DataFrame:
    """Return one row per SE block (SQUEEZE_COLUMNS): the class specificity of s (from `s_stats`, the view's own
    statistics), of its input z, s − z, of the plain twin's features at that place, the untrained control's s − z
    (mean and range over `seeds`), and `adds`: True when s − z exceeds every control seed's (s is more class-specific
    than its input by more than a random gate makes it), False when below every seed's, None in between (no
    difference shown). Without `seeds` the control columns are NaN and `adds` None: the cheap part (one pass of the
    model, one of the twin, none of the control; `z_stats` saves the model's pass when s_and_z_statistics gave it)."""
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    z_stats = z_stats if z_stats is not None else squeeze_statistics(loaded, batches)
    twin_stats = twin_statistics(twin, blocks, batches) if twin is not None else None
    control = _control_s_minus_z(loaded, batches, seeds) if seeds else []
    rows = []
    for b in blocks:
        s, z = s_stats.class_specificity(b.name), z_stats.class_specificity(b.name)
        diff = s - z
        ctrl = np.array([c[b.name] for c in control], np.float64)
        ctrl = ctrl[np.isfinite(ctrl)]
        adds = None
        if np.isfinite(diff) and len(ctrl):
            adds = True if diff > ctrl.max() else False if diff < ctrl.min() else None
        rows.append({"block": b.name, "s": s, "z": z, "s_minus_z": diff,
                     "twin": twin_stats.class_specificity(b.name) if twin_stats is not None else float("nan"),
                     "control_s_minus_z": float(ctrl.mean()) if len(ctrl) else float("nan"),
                     "control_s_minus_z_min": float(ctrl.min()) if len(ctrl) else float("nan"),
                     "control_s_minus_z_max": float(ctrl.max()) if len(ctrl) else float("nan"), "adds": adds})
    return pd.DataFrame(rows, columns=SQUEEZE_COLUMNS)


# What each verdict of a paired interval says, for s against z and for s against the plain twin's features.
VERDICT_WORDS = {"z": {"higher": "s adds class information beyond z", "lower": "s holds less than z",
                       NO_DIFFERENCE: NO_DIFFERENCE, TOO_FEW: TOO_FEW},
                 "twin": {"higher": "s holds more class information than the plain twin's features",
                          "lower": "s holds less than the plain twin's features", NO_DIFFERENCE: NO_DIFFERENCE,
                          TOO_FEW: TOO_FEW}}
OVER_SEEDS_COLUMNS = ["block", "last", "runs", "s", "z", "twin"] + [
    f"{d}{k}" for d in ("s_minus_z", "s_minus_twin") for k in ("", "_low", "_high", "_pairs", "_verdict")]


def _floats(values) -> list[float]:
    """Return `values` as floats, None (a card's NaN) as NaN."""
    return [_value(v) for v in values]


def _mean(values: list[float]) -> float:
    v = np.array(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def adds_over_seeds(runs: pd.DataFrame, by: str = "family") -> pd.DataFrame:
    """Return what SE adds over the seeds, one row per (`by`, SE block) of `runs` (what_se_adds rows of several runs
    with a `by` column, one run per seed), in the order the blocks come: `by`, OVER_SEEDS_COLUMNS. `last` marks each
    group's last block, `runs` counts its runs, s, z and twin are means over the runs; s − z is the mean of the
    paired differences spec(s) − spec(z) of each run with its paired bootstrap 95% interval (intervals.paired_bootstrap;
    None with fewer than MIN_PAIRS runs) and verdict ("higher", "lower", NO_DIFFERENCE, TOO_FEW: VERDICT_WORDS["z"]
    says it); s − twin the same with spec(s) of SE seed k against the plain twin's features of seed k (VERDICT_WORDS
    ["twin"]). A run missing a value (a constant gate, no twin) drops out of that pair."""
    rows = []
    for key, group in runs.groupby(by, sort=False):
        blocks = list(dict.fromkeys(group["block"]))
        for i, block in enumerate(blocks):
            g = group[group["block"] == block]
            s, z, twin = _floats(g["s"]), _floats(g["z"]), _floats(g["twin"])
            row = {by: key, "block": block, "last": i == len(blocks) - 1, "runs": len(g), "s": _mean(s),
                   "z": _mean(z), "twin": _mean(twin)}
            for name, other in (("s_minus_z", z), ("s_minus_twin", twin)):
                iv = paired_bootstrap(s, other)
                row.update({name: iv.mean, f"{name}_low": iv.low, f"{name}_high": iv.high, f"{name}_pairs": iv.pairs,
                            f"{name}_verdict": iv.verdict})
            rows.append(row)
    return pd.DataFrame(rows, columns=[by] + OVER_SEEDS_COLUMNS)


def _value(v) -> float:
    return float("nan") if v is None else float(v)


def _adds(v) -> bool | None:
    """Return an `adds` cell as True, False or None (numpy booleans, NaN from a frame, None from a card)."""
    return None if v is None or v != v else bool(v)


def what_se_adds_sentence(title: str, adds: pd.DataFrame) -> str:
    """Return one sentence on what SE adds in model `title` (rows of what_se_adds): at how many blocks s is more and
    at how many less class-specific than its input z beyond the untrained control, and at its last block s beside
    z and the plain twin's features, saying which it is there: the gate adds class information, s mirrors its input,
    or s is more class-agnostic than its input."""
    def f(v) -> str:
        v = _value(v)
        return f"{v:.2f}" if np.isfinite(v) else "undefined (the same for every image)"

    n = len(adds)
    if n == 0:
        return f"{title} has no SE block: nothing for SE to add."
    verdicts = [_adds(a) for a in adds["adds"]]
    more = [b for b, a in zip(adds["block"], verdicts) if a is True]
    less = [b for b, a in zip(adds["block"], verdicts) if a is False]
    if not more and not less:
        text = (f"In {title}, at none of its {n} SE blocks is s more or less class-specific than its input z by more "
                "than the untrained control's gate makes it")
    else:
        parts = []
        if more:
            parts.append(f"more class-specific than its input z at {len(more)} of {n} SE blocks ({', '.join(more)})")
        if less:
            parts.append(f"less at {len(less)} ({', '.join(less)})" if more else
                         f"less class-specific than its input z at {len(less)} of {n} SE blocks ({', '.join(less)})")
        text = f"In {title}, beyond the untrained control's range, s is {' and '.join(parts)}"
    last = adds.iloc[-1]
    twin = _value(last["twin"])
    twin_words = f" and the plain twin's features there {f(twin)}" if np.isfinite(twin) else ""
    which = {True: "there the gate adds class information beyond its input",
             False: "there the gate is more class-agnostic than its input",
             None: "there s mirrors its input (no difference shown)"}[_adds(last["adds"])]
    return (f"{text}; at its last block, {last['block']}, s has class specificity {f(last['s'])}, its input z "
            f"{f(last['z'])}{twin_words}: {which}.")
