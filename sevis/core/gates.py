"""What range an SE gate gives s, read from the model's gate modules, and the words that explain it (sigmoid:
0 to 1; a ReLU gate, as in the gate-relu ablation: 0 upwards, so s can amplify a channel; tanh: −1 to 1)."""
from __future__ import annotations

from torch import nn

from sevis.core.recorder import find_se_blocks

# Gate class name (lower case, matched as a substring) -> (lowest s, highest s; None = unbounded)
GATE_RANGES = (("sigmoid", (0.0, 1.0)), ("tanh", (-1.0, 1.0)), ("relu", (0.0, None)))


def gate_kinds(model: nn.Module) -> list[str]:
    """Return the class names of the model's SE gates, one per kind, in depth order."""
    kinds: list[str] = []
    for block, _ in find_se_blocks(model):
        try:
            name = type(model.get_submodule(block.gate_path)).__name__
        except AttributeError:
            continue
        if name not in kinds:
            kinds.append(name)
    return kinds


def gate_range(model: nn.Module) -> tuple[float, float | None]:
    """Return (lowest, highest) s the model's gates can give (highest None: no upper bound); (0, 1) when unknown."""
    lo, hi, known = 0.0, 1.0, False
    for kind in gate_kinds(model):
        for key, (a, b) in GATE_RANGES:
            if key in kind.lower():
                lo = min(lo, a) if known else a
                hi = None if b is None or (known and hi is None) else (max(hi, b) if known else b)
                known = True
                break
    return lo, hi


def range_words(model: nn.Module) -> str:
    """Return how to read s for this model's gates, e.g. "0 = suppressed, 1 = passed on unchanged"."""
    lo, hi = gate_range(model)
    words = "0 = suppressed, 1 = passed on unchanged"
    if hi is None:
        words += ", above 1 = amplified (this model's gate is a ReLU, so s has no upper bound)"
    elif hi > 1:
        words += f", up to {hi:g} = amplified"
    if lo < 0:
        words += f", below 0 (down to {lo:g}) = sign flipped (a tanh gate)"
    return words
