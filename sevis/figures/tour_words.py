"""The Tour's words (sevis.views.tour): numbers, ranges, lists and percentages as its sentences print them, never
"nan" or "from X to X"."""
from __future__ import annotations

import math
from typing import Sequence


def num(v: float, fmt: str = ".2f") -> str:
    """Return `v` formatted, or "undefined" for NaN/None (never "nan" in a sentence)."""
    return "undefined" if v is None or not math.isfinite(float(v)) else format(float(v), fmt)


def span(lo: float, hi: float, fmt: str = ".2f") -> str:
    """Return "from a to b", or "all equal to a" when both print the same (never "from X to X")."""
    a, b = num(lo, fmt), num(hi, fmt)
    return f"all equal to {a}" if a == b else f"from {a} to {b}"


def listing(items: Sequence[str]) -> str:
    items = list(items)
    return "" if not items else items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def pct(p: float) -> str:
    """Return a probability as a percentage that never prints a non-zero value as 0%."""
    p = float(p)
    return "under 0.1%" if 0 < p < 0.001 else f"{p:.1%}" if p < 0.1 else f"{p:.0%}"


def energy_words(ratio: float) -> str:
    """Return what scaling did to U's energy (sum of squares): keeps a share, or multiplies it (gates above 1)."""
    if not math.isfinite(ratio):
        return "leaves U's energy undefined"
    return f"keeps {ratio:.0%} of U's energy" if ratio <= 1 else f"multiplies U's energy by {ratio:.1f}"


def quoted(items) -> list[str]:
    return [f"'{i}'" for i in items]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
