"""What SE costs in parameters: the real count per stage, and the paper's estimate (2/r)·Σ_s N_s·C_s².

Three views, all as pandas DataFrames with one row per stage and a last row whose stage is "total":

- `se_parameters(model)`: the real count, i.e. the parameters inside the SE modules of any model (ours,
  timm, torchvision), grouped by stage via `find_se_blocks`.
- `paper_estimate(cfg)` / `parameter_breakdown(cfg)`: the paper's estimate for a ResNetConfig beside the
  exact count computed analytically from the config (no model is built).
- `reduction_sweep(cfg, ratios)`: both for several reduction ratios r, with the model's total parameter
  count (counted on torch's "meta" device, so even SE-ResNet-101 allocates no weights).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

import pandas as pd
import torch
from torch import nn

from sevis.core.recorder import find_se_blocks
from sevis.core.se import make_divisible
from sevis.models.resnet import BLOCKS, ResNetConfig, SEResNet, architecture_config

TOTAL = "total"


def _resolve(cfg: ResNetConfig | str) -> ResNetConfig:
    return architecture_config(cfg) if isinstance(cfg, str) else cfg


def _with_total(rows: list[dict], columns: list[str], sum_columns: Iterable[str],
                max_columns: Iterable[str] = ("channels",)) -> pd.DataFrame:
    """Return `rows` as a frame with a last row (stage "total") holding the sums of `sum_columns` and the
    largest value of `max_columns` (the widest C of the model), so the total row has no empty cell."""
    total: dict = {"stage": TOTAL}
    for col in sum_columns:
        total[col] = sum(row[col] for row in rows)
    for col in max_columns:
        total[col] = max((row[col] for row in rows), default=0)
    missing = [c for c in columns if c not in total]
    if missing:
        raise ValueError(f"no total for column(s) {', '.join(missing)}")
    return pd.DataFrame(rows + [total], columns=columns)


def count_parameters(model: nn.Module) -> int:
    """Return the number of parameters of `model` (works for models on the meta device too)."""
    return sum(p.numel() for p in model.parameters())


def build_on_meta(cfg: ResNetConfig | str) -> SEResNet:
    """Return an SEResNet whose parameters live on the meta device: shapes only, no memory, no init cost."""
    with torch.device("meta"):
        return SEResNet(_resolve(cfg))


def se_parameters(model: nn.Module) -> pd.DataFrame:
    """Return the parameters inside the SE modules of `model`, per stage and in total.

    Columns: stage (the paper's 2–5 for ResNet-shaped models; the first index of the module path
    otherwise; "total" in the last row), blocks, channels (the largest C in the stage), parameters,
    share (of all SE parameters), of_base (parameters / the model's parameters without SE).
    """
    blocks = [b for b, _ in find_se_blocks(model)]
    total_model = count_parameters(model)
    se_total = sum(b.parameters for b in blocks)
    base = total_model - se_total
    by_stage: dict = {}
    for b in blocks:
        row = by_stage.setdefault(b.stage, {"stage": b.stage, "blocks": 0, "channels": 0, "parameters": 0})
        row["blocks"] += 1
        row["channels"] = max(row["channels"], b.channels)
        row["parameters"] += b.parameters
    rows = list(by_stage.values())
    for row in rows:
        row["share"] = row["parameters"] / se_total if se_total else 0.0
        row["of_base"] = row["parameters"] / base if base else 0.0
    return _with_total(rows, ["stage", "blocks", "channels", "parameters", "share", "of_base"],
                       ["blocks", "parameters", "share", "of_base"])


def _block_se_channels(cfg: ResNetConfig) -> list[tuple[int, int]]:
    """Return (stage, C seen by the SE layer) for every residual block of `cfg` that has (or, with se=False, would
    have) one, in depth order."""
    expansion = BLOCKS[cfg.block].expansion
    out, in_ch = [], cfg.stem_width
    for i, (n_blocks, width) in enumerate(zip(cfg.layers, cfg.widths)):
        for _ in range(n_blocks):
            out_ch = width * expansion
            if cfg.se_stages is None or i + 2 in cfg.se_stages:
                out.append((i + 2, {"pre": in_ch, "3x3": width}.get(cfg.integration, out_ch)))
            in_ch = out_ch
    return out


def _se_layer_parameters(channels: int, cfg: ResNetConfig) -> int:
    """Parameters of one sevis SqueezeExcite layer (two 1×1 convs with biases), as SqueezeExcite builds it."""
    hidden = make_divisible(channels / cfg.reduction, cfg.se_divisor)
    return channels * hidden + hidden + hidden * channels + channels


def squeeze_widths(cfg: ResNetConfig | str) -> pd.DataFrame:
    """Return, for every SE block of `cfg` in depth order, C, the exact C/r and the hidden width the model uses.

    SqueezeExcite rounds C/r to the nearest multiple of cfg.se_divisor, never below se_divisor itself (nor below
    90% of C/r). Columns: stage, channels, exact (C/r), hidden (the rounded width), at_floor (hidden is the
    smallest width the rounding allows, se_divisor).
    """
    cfg = _resolve(cfg)
    rows = []
    for stage, channels in _block_se_channels(cfg):
        hidden = make_divisible(channels / cfg.reduction, cfg.se_divisor)
        rows.append({"stage": stage, "channels": channels, "exact": channels / cfg.reduction, "hidden": hidden,
                     "at_floor": hidden == squeeze_floor(cfg)})
    return pd.DataFrame(rows, columns=["stage", "channels", "exact", "hidden", "at_floor"])


def squeeze_floor(cfg: ResNetConfig | str) -> int:
    """Return the smallest hidden width an SE block of `cfg` can have (se_divisor, at least one channel)."""
    cfg = _resolve(cfg)
    return make_divisible(0.0, cfg.se_divisor)


def floor_ratio(cfg: ResNetConfig | str, ratios: Iterable[int]) -> int | None:
    """Return the smallest r in `ratios` from which on every SE block of `cfg` sits at its minimal hidden width
    (so SE's parameter count stops shrinking with r), or None when that never happens within `ratios`."""
    cfg = _resolve(cfg)
    found = None
    for r in sorted({int(r) for r in ratios}, reverse=True):
        if not squeeze_widths(replace(cfg, reduction=r))["at_floor"].all():
            break
        found = r
    return found


def paper_estimate(cfg: ResNetConfig | str) -> pd.DataFrame:
    """Return the paper's estimate of SE's extra parameters, (2/r)·N_s·C_s² per stage and in total.

    C_s is the stage's output width (biases ignored, as in the paper). Columns: stage, blocks (N_s),
    channels (C_s), estimate.
    """
    cfg = _resolve(cfg)
    expansion = BLOCKS[cfg.block].expansion
    with_se = [cfg.se_stages is None or i + 2 in cfg.se_stages for i in range(len(cfg.layers))]
    rows = [{"stage": i + 2, "blocks": n, "channels": w * expansion,
             "estimate": 2.0 / cfg.reduction * n * (w * expansion) ** 2 if with_se[i] else 0.0}
            for i, (n, w) in enumerate(zip(cfg.layers, cfg.widths))]
    return _with_total(rows, ["stage", "blocks", "channels", "estimate"], ["blocks", "estimate"])


def parameter_breakdown(cfg: ResNetConfig | str) -> pd.DataFrame:
    """Return, per stage and in total, SE's exact extra parameters (computed from the config, with the
    rounding of the hidden width and the biases) beside the paper's estimate.

    Columns: stage, blocks, channels, parameters (exact), estimate (paper), rel_error (estimate/exact − 1).
    For a config with se=False the exact count is still what SE *would* add.
    """
    cfg = _resolve(cfg)
    est = paper_estimate(cfg)
    exact: dict[int, int] = {}
    for stage, channels in _block_se_channels(cfg):
        exact[stage] = exact.get(stage, 0) + _se_layer_parameters(channels, cfg)
    df = est.copy()
    df.insert(3, "parameters", [exact.get(s, 0) for s in df["stage"][:-1]] + [sum(exact.values())])
    df["rel_error"] = df["estimate"] / df["parameters"].where(df["parameters"] > 0) - 1.0
    return df


def reduction_sweep(cfg: ResNetConfig | str, ratios: Iterable[int] = (4, 8, 16, 32)) -> pd.DataFrame:
    """Return, for each reduction ratio r, the SE model's parameters, the plain model's, SE's exact extra
    parameters and the paper's estimate — the "how it changes with r" view (the paper's ablation table
    lists 35.7M, 30.7M, 28.1M, 26.9M for SE-ResNet-50 at r = 4, 8, 16, 32).

    Columns: r, parameters (SE model), base_parameters (plain model), se_parameters (exact extra),
    estimate (paper), rel_error, se_share (se_parameters / base_parameters).
    No weights are allocated: the models are built on the meta device.
    """
    cfg = _resolve(cfg)
    base = count_parameters(build_on_meta(replace(cfg, se=False)))
    rows = []
    for r in ratios:
        r = int(r)
        if r < 1:
            raise ValueError(f"reduction ratio must be a positive integer, got {r}")
        cfg_r = replace(cfg, se=True, reduction=r)
        breakdown = parameter_breakdown(cfg_r).iloc[-1]
        total = count_parameters(build_on_meta(cfg_r))
        se = int(breakdown["parameters"])
        rows.append({"r": r, "parameters": total, "base_parameters": base, "se_parameters": se,
                     "estimate": float(breakdown["estimate"]), "rel_error": float(breakdown["rel_error"]),
                     "se_share": se / base})
    return pd.DataFrame(rows)
