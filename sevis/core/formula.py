"""The excitation formula a model really computes, read from its SE modules: the gate (σ, hard-σ, tanh, ReLU …)
and the activation δ between W1 and W2 (ReLU, SiLU …), so the app never shows σ(W₂·ReLU(W₁·z)) for a model
whose SE blocks compute hard-σ(W₂·ReLU(W₁·z)) or σ(W₂·SiLU(W₁·z)).
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from torch import nn

from sevis.core.recorder import SEBlock, find_se_blocks, se_internals

# Module class names (lower case) → the symbol shown; unknown ones show their class name.
_GATES = {"sigmoid": "σ", "hardsigmoid": "hard-σ", "hard_sigmoid": "hard-σ", "tanh": "tanh", "relu": "ReLU",
          "relu6": "ReLU6", "gatesigmoid": "σ"}
_ACTS = {"relu": "ReLU", "relu6": "ReLU6", "silu": "SiLU", "swish": "SiLU", "hardswish": "hard-swish",
         "gelu": "GELU", "sigmoid": "σ", "tanh": "tanh", "identity": "identity"}


def _symbol(module: nn.Module | None, table: dict[str, str]) -> str | None:
    if module is None:
        return None
    name = type(module).__name__.lower()
    # timm wraps some gates: a module holding a function (e.g. GateSigmoid, or create_act_layer's partials).
    for key in (name, getattr(getattr(module, "fn", None), "__name__", "").lower()):
        if key in table:
            return table[key]
    return type(module).__name__


def block_formula(model: nn.Module, block: SEBlock) -> tuple[str, str | None]:
    """Return (gate symbol, activation symbol or None when there is no readable W1) of one SE block."""
    gate = model.get_submodule(block.gate_path)
    module = model.get_submodule(block.path) if block.path else model
    _, act = se_internals(module)
    return _symbol(gate, _GATES) or "σ", _symbol(act, _ACTS)


def excitation_formula(model: nn.Module, blocks: Sequence[SEBlock] | None = None) -> str:
    """Return the excitation formula of `model`'s SE blocks, e.g. "s = σ(W₂·ReLU(W₁·z))"; where blocks differ,
    the most common form with "(most blocks)"; "" for a model without SE blocks."""
    blocks = list(blocks) if blocks is not None else [b for b, _ in find_se_blocks(model)]
    if not blocks:
        return ""
    forms = Counter(block_formula(model, b) for b in blocks)
    (gate, act), count = forms.most_common(1)[0]
    inner = f"W₂·{act}(W₁·z)" if act else "W·z"
    text = f"s = {gate}({inner})"
    return text if count == len(blocks) else f"{text} (most blocks)"
