"""`sevis check`: is every SE block of a model wired in?

For each SE block the recorder finds: does its gate run in a forward pass, does its output matter (setting s to 1
changes the logits), does it matter as a function of the input (setting s to its mean over the inputs, a fixed
per-channel scale, changes the logits), and what its gates look like (the share of s near 0, near 0.5 and near 1, and
how much s varies between images). A near-constant gate applies a fixed scale: knocking it out with s := 1 removes
that scale and can cost accuracy although the block does nothing input-dependent, so "matters" and "near-constant"
are reported separately. A block that is registered but never called (senet.pytorch issue 22: an SE-Inception whose
SE layers never ran) or whose output is thrown away looks like any other in the module tree; only running it shows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from sevis.analysis.paper import CONSTANT_SPREAD
from sevis.core.recorder import ExcitationRecorder, find_se_blocks
from sevis.models.zoo import LoadedModel

NEAR = 0.05  # s within this of 0, 0.5 or 1 counts as near it
# Near-constant: s varies between images by less than this (std over images, averaged over channels). s lies in
# [0, 1] for a sigmoid gate; 0.01 is a fifth of the 0.05 band the paper's Fig. 6 reading uses.
NEAR_CONSTANT_SPREAD = 0.01
RELATIVE_TOLERANCE = 1e-6  # logits changing by less than this times their largest magnitude did not change
CHECK_COLUMNS = ["block", "path", "channels", "calls", "runs", "logit_change", "matters", "logit_change_mean",
                 "input_dependent", "near_0", "near_half", "near_1", "spread", "constant", "near_constant", "verdict"]
FAILING = ("never runs", "changes nothing")


def check_inputs(loaded: LoadedModel, images: int = 100) -> tuple[torch.Tensor, str]:
    """Return (a batch of inputs, what they are): the first reference images of every class for Fashion-MNIST models,
    else seeded random images of the model's input size."""
    from sevis.analysis.inference import split_batches
    from sevis.data.fashion_mnist import Split
    if loaded.dataset == "fashion-mnist":
        ref = loaded.reference_set()
        per_class = max(1, images // len(ref.classes))
        idx = np.concatenate([np.flatnonzero(ref.labels == c)[:per_class] for c in range(len(ref.classes))])
        x = torch.cat([b for b, _ in split_batches(loaded, Split(ref.images[idx], ref.labels[idx]))])
        return x, f"{len(x)} reference images ({per_class} per class)"
    channels = _input_channels(loaded.model)
    size = loaded.input_size
    x = torch.randn(min(images, 8), channels, size, size, generator=torch.Generator().manual_seed(0))
    return x, f"{len(x)} random {size}×{size} images (seed 0)"


def _input_channels(model: nn.Module) -> int:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


@torch.no_grad()
def check_model(model: nn.Module, x: torch.Tensor) -> pd.DataFrame:
    """Return one row per SE block found in `model` (CHECK_COLUMNS) after running it on `x`: how often the gate ran
    per forward pass, the largest logit change when s := 1 and when s := its mean over `x` (a fixed scale), the
    shares of s near 0 / 0.5 / 1, the spread of s across images (std, mean over channels), and a verdict: "ok", "a
    fixed scale …" / "a near-constant scale …" (matters, but s hardly depends on the image), "never runs", "changes
    nothing" or "s is 1 already"."""
    model.eval()
    found = [b for b, _ in find_se_blocks(model)]
    with ExcitationRecorder(model) as rec:
        logits = model(x)
    excitations = rec.excitations
    scale = max(1.0, float(logits.abs().max()))
    rows = []
    for block in found:
        s = excitations[block.name].double()
        calls = s.shape[0] // len(x)
        change = change_mean = None
        if calls:
            with ExcitationRecorder(model, blocks=[block.name], overrides={block.name: "identity"}, record=False):
                change = float((model(x) - logits).abs().max())
            mean_s = s.mean(0).float()  # the block's mean s over these inputs: a fixed scale per channel
            with ExcitationRecorder(model, blocks=[block.name], overrides={block.name: mean_s}, record=False):
                change_mean = float((model(x) - logits).abs().max())
        matters = None if change is None else change > RELATIVE_TOLERANCE * scale
        input_dependent = None if change_mean is None else change_mean > RELATIVE_TOLERANCE * scale
        spread = float(s.std(0).mean()) if len(s) > 1 else None
        near_constant = None if spread is None else spread < NEAR_CONSTANT_SPREAD
        if not calls:
            verdict = "never runs"
        elif matters and near_constant:
            verdict = ("a fixed scale (the same s for every image)" if spread < CONSTANT_SPREAD
                       else "a near-constant scale (s hardly depends on the image)")
        elif matters:
            verdict = "ok"
        elif bool((s == 1).all()):
            verdict = "s is 1 already"  # wired in, but saturated: s := 1 cannot change anything
        else:
            verdict = "changes nothing"
        rows.append({"block": block.name, "path": block.path, "channels": block.channels, "calls": calls,
                     "runs": bool(calls), "logit_change": change, "matters": matters,
                     "logit_change_mean": change_mean, "input_dependent": input_dependent,
                     "near_0": _share(s, lambda v: v < NEAR), "near_half": _share(s, lambda v: (v - 0.5).abs() < NEAR),
                     "near_1": _share(s, lambda v: v > 1 - NEAR), "spread": spread,
                     "constant": None if spread is None else spread < CONSTANT_SPREAD,
                     "near_constant": near_constant, "verdict": verdict})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _share(s: torch.Tensor, test) -> float | None:
    return float(test(s).double().mean()) if s.numel() else None


def check_failed(table: pd.DataFrame) -> bool:
    """Return whether a found block never runs or changes nothing (`sevis check` then exits with 1)."""
    return bool(table["verdict"].isin(FAILING).any()) if len(table) else False


def check_summary(table: pd.DataFrame, inputs: str) -> str:
    """Return one sentence on the whole check, from the table."""
    if table.empty:
        return f"No SE block found (checked on {inputs})."
    bad = table[table["verdict"].isin(FAILING)]
    n = len(table)
    head = f"{n} SE block{'s' if n != 1 else ''} found, checked on {inputs}: "
    fixed = list(table.loc[table["near_constant"].fillna(False).astype(bool) & table["runs"], "block"])
    fixed_words = (f"; near-constant gates (a fixed scale, not a function of the input): {', '.join(fixed)}"
                   if fixed else "")
    if bad.empty:
        saturated = table[table["verdict"] == "s is 1 already"]
        tail = (f"; {len(saturated)} with s = 1 everywhere (wired in, no effect on these images)"
                if len(saturated) else "")
        return head + f"every one runs and {'matters' if saturated.empty else 'is wired in'}{tail}{fixed_words}."
    parts = [f"{v}: {', '.join(bad.loc[bad['verdict'] == v, 'block'])}" for v in FAILING if (bad["verdict"] == v).any()]
    return head + "; ".join(parts) + fixed_words + "."


def format_check(table: pd.DataFrame, inputs: str) -> str:
    """Return the text `sevis check` prints: one line per block and the summary sentence."""
    lines = []
    if len(table):
        width = max(5, *(len(b) for b in table["block"]))
        lines.append(f"{'block':<{width}}  {'C':>5} {'calls':>5} {'Δlogit(s:=1)':>12} {'Δlogit(s:=mean)':>15} "
                     f"{'s≈0':>6} {'s≈.5':>6} {'s≈1':>6} {'spread':>7}  verdict")
        for r in table.itertuples():
            change = "-" if r.logit_change is None else f"{r.logit_change:.2e}"
            change_mean = "-" if r.logit_change_mean is None else f"{r.logit_change_mean:.2e}"
            shares = ["-" if v is None else f"{100 * v:5.1f}%" for v in (r.near_0, r.near_half, r.near_1)]
            spread = "-" if r.spread is None else f"{r.spread:.4f}"
            lines.append(f"{r.block:<{width}}  {r.channels:>5} {r.calls:>5} {change:>12} {change_mean:>15} "
                         f"{shares[0]:>6} {shares[1]:>6} {shares[2]:>6} {spread:>7}  {r.verdict}")
    lines.append(check_summary(table, inputs))
    return "\n".join(lines)


def check_loaded(loaded: LoadedModel, images: int = 100) -> tuple[pd.DataFrame, str]:
    """Return (the check table, what it ran on) for a loaded model."""
    x, inputs = check_inputs(loaded, images)
    return check_model(loaded.model, x), inputs

