"""Architecture view: every SE block's shape and parameters, SE's cost per stage and against the reduction ratio r.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from sevis.core.recorder import find_se_blocks
from sevis.figures.plots import PALETTE, Panel, apply_layout, table_figure
from sevis.models.zoo import LoadedModel
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "architecture"
TITLE = "Architecture"


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Architecture view: the SE block table, SE's parameters per stage (and against r for sevis
    ResNets) and the takeaway. numbers: parameters, se_blocks, se_parameters, se_share (SE's parameters over the
    plain model's), top_stage and top_stage_share (the stage holding most of them), reduction (r, sevis ResNets)."""
    result = ViewResult(SLUG, TITLE, architecture_panels(loaded))
    facts = model_summary(loaded)
    base = facts["parameters"] - facts["se_parameters"]
    result.numbers = {"parameters": facts["parameters"], "se_blocks": facts["se_blocks"],
                      "se_parameters": facts["se_parameters"], "se_share": facts["se_parameters"] / max(base, 1)}
    if not facts["se_blocks"]:
        result.notes.append("This model has no SE blocks.")
        return result
    top = _top_stage(loaded)
    result.numbers.update({"top_stage": str(top["stage"]), "top_stage_share": float(top["share"])})
    cfg = _resnet_config(loaded)
    if cfg is not None:
        result.numbers["reduction"] = cfg.reduction
    result.takeaway = architecture_takeaway(loaded)
    return result


def _top_stage(loaded: LoadedModel) -> pd.Series:
    """Return the row of sevis.models.params.se_parameters for the stage holding most of SE's parameters."""
    from sevis.models import params as P
    per_stage = P.se_parameters(loaded.model)
    rows = per_stage[per_stage["stage"].astype(str) != "total"]
    return rows.loc[rows["parameters"].idxmax()]


def _resnet_config(loaded: LoadedModel):
    from sevis.models.resnet import ResNetConfig
    arch = (loaded.card or {}).get("architecture")
    return ResNetConfig.from_dict(arch) if arch else None


def architecture_panels(loaded: LoadedModel, ratios: Sequence[int] = (2, 4, 8, 16, 32, 64)) -> list[Panel]:
    """SE block table, SE's extra parameters per stage (real and the paper's estimate), and against r."""
    from sevis.models import params as P
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    table = blocks_frame(blocks)
    cfg = _resnet_config(loaded)
    caption = ("Every SE block in depth order: its stage, the channels C it rescales, its squeeze width "
               "C/r (hidden units) and its parameters.")
    if cfg is not None and blocks:
        table, caption = _rounded_squeeze_table(table, cfg)
    panels = [Panel("se_blocks", f"SE blocks of {loaded.name}", caption,
                      table_figure(table, f"SE blocks of {loaded.name}"), table)]
    if not blocks:
        return panels
    real = P.se_parameters(loaded.model)
    if cfg is not None:
        estimate = P.paper_estimate(cfg)
    else:  # other models: (2/r)·C² per block with the block's own r = C / squeeze width, i.e. 2·C·(C/r)
        est = pd.DataFrame([{"stage": b.stage, "estimate": 2.0 * b.channels * (b.squeeze_channels or 0)}
                            for b in blocks])
        estimate = est.groupby("stage", sort=False, dropna=False)["estimate"].sum().reset_index()
        estimate = pd.concat([estimate, pd.DataFrame([{"stage": P.TOTAL, "estimate": estimate["estimate"].sum()}])],
                             ignore_index=True)
    per_stage = real.merge(estimate[["stage", "estimate"]], on="stage", how="left") if len(real) else real
    per_stage["stage"] = per_stage["stage"].astype(str)  # "2".."5" and "total": one type for tables/Arrow
    panels.append(Panel(
        "se_params_per_stage", "SE's extra parameters per stage",
        "Parameters inside the SE blocks of each stage (real count, with biases) beside the paper's estimate "
        "(2/r)·N_s·C_s² (biases ignored); the total row sums them, and its C is the widest stage's. Most of SE's "
        "cost sits in the last, widest stage.",
        se_params_by_stage(real, estimate), per_stage))
    if cfg is not None:
        sweep = P.reduction_sweep(cfg, ratios)
        panels.append(Panel(
            "se_params_vs_r", "SE's extra parameters against the reduction ratio r",
            f"How SE's parameter cost changes with the reduction ratio r for this architecture (this model uses "
            f"r = {cfg.reduction}): the exact count and the paper's estimate (2/r)·Σ N_s·C_s². "
            + _floor_words(cfg, sweep), params_vs_r(sweep), sweep))
    return panels


def _rounding_words(cfg) -> str:
    """Return how the model rounds C/r to its hidden width, in words ("a multiple of 8" / "a whole channel")."""
    return f"a multiple of {cfg.se_divisor}" if cfg.se_divisor > 1 else "a whole channel"


def _rounded_squeeze_table(table: pd.DataFrame, cfg) -> tuple[pd.DataFrame, str]:
    """Return the block table with C/r exact beside the rounded squeeze width, and a caption saying how the model
    rounds (from its config: the hidden width is C/r rounded to a multiple of se_divisor, never below it)."""
    from sevis.models import params as P
    table = table.copy()
    rounded = f"squeeze width (rounded to {_rounding_words(cfg)})"
    table.insert(table.columns.get_loc("squeeze width"), "C/r exact", table["channels"] / cfg.reduction)
    table = table.rename(columns={"squeeze width": rounded})
    floor = P.squeeze_floor(cfg)
    caption = (f"Every SE block in depth order: its stage, the channels C it rescales, C/r exact "
               f"(r = {cfg.reduction}), the squeeze width the model uses (hidden units: C/r rounded to "
               f"{_rounding_words(cfg)}, never below {floor}) and its parameters.")
    changed = table[table["C/r exact"] != table[rounded]]
    if len(changed):
        row = changed.iloc[0]
        caption += (f" So C = {row['channels']} gives C/r = {row['C/r exact']:g}, rounded to {row[rounded]}; "
                    f"{len(changed)} of {len(table)} blocks are rounded.")
    else:
        caption += " Here every C/r is already such a width, so nothing is rounded."
    return table, caption


def _floor_words(cfg, sweep: pd.DataFrame) -> str:
    """Return why the real count stops following the estimate at large r, computed from the config: the hidden
    width cannot fall below its minimum (se_divisor, at least one channel)."""
    from dataclasses import replace

    from sevis.models import params as P
    floor, start = P.squeeze_floor(cfg), P.floor_ratio(cfg, sweep["r"])
    unit = "channel" if floor == 1 else "channels"
    why = (f"the hidden width is C/r rounded to {_rounding_words(cfg)}, and never below {floor} {unit}")
    if start is not None:
        flat = int(sweep.loc[sweep["r"] == start, "se_parameters"].iloc[0])
        return (f"From r = {start} on, every SE block's hidden width is at its minimum ({why}), so the real count "
                f"stays at {flat:,} while the estimate keeps halving.")
    widest = int(sweep["r"].max())
    at_floor = P.squeeze_widths(replace(cfg, reduction=widest))["at_floor"]
    if at_floor.any():
        return (f"At r = {widest}, {int(at_floor.sum())} of {len(at_floor)} SE blocks are at their minimum hidden "
                f"width ({why}), so the real count falls more slowly than the estimate there.")
    return "Halving r roughly doubles the cost."


def model_summary(loaded: LoadedModel) -> dict:
    """Return headline facts about a model for the sidebar."""
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    return {"name": loaded.name, "source": loaded.source, "classes": len(loaded.classes),
            "parameters": loaded.num_parameters, "se_blocks": len(blocks),
            "se_parameters": sum(b.parameters for b in blocks), "dataset": loaded.dataset,
            "test_accuracy": (loaded.card or {}).get("test_accuracy")}


def architecture_takeaway(loaded: LoadedModel) -> str | None:
    """Return SE's parameter cost and where most of it sits."""
    facts = model_summary(loaded)
    if not facts["se_blocks"]:
        return None
    top = _top_stage(loaded)
    base = facts["parameters"] - facts["se_parameters"]
    return (f"SE adds {facts['se_parameters']:,} parameters ({facts['se_parameters'] / max(base, 1):.1%} of the plain "
            f"model) in {facts['se_blocks']} blocks; stage {top['stage']} holds {top['share']:.0%} of them.")


def blocks_frame(blocks: Sequence) -> pd.DataFrame:
    """Return the SE blocks (sevis.core.recorder.SEBlock) as a table for the architecture view."""
    return pd.DataFrame([{
        "block": b.name, "depth": b.index, "stage": b.stage, "channels": b.channels,
        "squeeze width": b.squeeze_channels, "parameters": b.parameters, "type": b.kind, "module path": b.path,
    } for b in blocks], columns=["block", "depth", "stage", "channels", "squeeze width", "parameters", "type",
                                 "module path"])


def se_params_by_stage(frame: pd.DataFrame, estimate: pd.DataFrame | None = None,
                       title: str = "SE's extra parameters per stage") -> go.Figure:
    """Bars of SE's real extra parameters per stage (from sevis.models.params.se_parameters), with the paper's
    estimate (2/r)·N_s·C_s² beside them when given."""
    rows = frame[frame["stage"].astype(str) != "total"]
    stages = [f"stage {s}" for s in rows["stage"]]
    fig = go.Figure(go.Bar(x=stages, y=rows["parameters"], name="real count", marker_color=PALETTE[0],
                           hovertemplate="%{x}: %{y:,} parameters<extra>real</extra>"))
    if estimate is not None and len(estimate):
        est = estimate[estimate["stage"].astype(str) != "total"]
        fig.add_trace(go.Bar(x=[f"stage {s}" for s in est["stage"]], y=est["estimate"],
                             name="paper estimate (2/r)·N·C²", marker_color=PALETTE[1],
                             hovertemplate="%{x}: %{y:,.0f}<extra>paper estimate</extra>"))
    fig.update_yaxes(title_text="parameters")
    fig.update_xaxes(title_text="stage")
    return apply_layout(fig, title, height=360, barmode="group")


def params_vs_r(sweep: pd.DataFrame, title: str = "SE's extra parameters against the reduction ratio r") -> go.Figure:
    """Lines of SE's exact extra parameters and the paper's estimate against r (sevis.models.params.reduction_sweep)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=sweep["r"], y=sweep["se_parameters"], mode="lines+markers", name="real count",
                             line=dict(color=PALETTE[0], width=2.4), customdata=100 * sweep["se_share"],
                             hovertemplate="r = %{x}<br>%{y:,} extra parameters (%{customdata:.1f}% of the plain "
                                           "model)<extra></extra>"))
    fig.add_trace(go.Scatter(x=sweep["r"], y=sweep["estimate"], mode="lines+markers",
                             name="paper estimate (2/r)·Σ N·C²", line=dict(color=PALETTE[1], dash="dash"),
                             hovertemplate="r = %{x}<br>%{y:,.0f}<extra>estimate</extra>"))
    fig.update_xaxes(title_text="reduction ratio r", type="log", tickvals=list(sweep["r"]),
                     ticktext=[str(r) for r in sweep["r"]])
    fig.update_yaxes(title_text="extra parameters from SE")
    return apply_layout(fig, title, height=360)
