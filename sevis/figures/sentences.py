"""The one place the app's sentences are built from numbers, so that none can break.

Every view's takeaway formats its numbers here: undefined values (NaN, None, ±inf: 0/0, constant s, random
weights) become words, equal before/after values say "does not change" instead of "from X to X", a curve is
described as rising, falling, flat or not monotonic, and a shown difference is computed from the rounded
numbers on screen so that it adds up. `finish` is the last guard every takeaway passes through.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

UNDEFINED = "undefined"


def is_number(v) -> bool:
    """Return True when `v` is a finite real number (not None, NaN or ±inf)."""
    try:
        return v is not None and not isinstance(v, bool) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def num(v, spec: str = ".2f", undefined: str = UNDEFINED) -> str:
    """Return `v` formatted with `spec`, or `undefined` when it is not a finite number; never "-0.00"."""
    if not is_number(v):
        return undefined
    text = format(float(v), spec)
    return text[1:] if re.fullmatch(r"-0[.,]?0*%?", text) else text


def rounded(v, spec: str = ".2f") -> float:
    """Return `v` as shown with `spec` (percent specs give a fraction again), NaN when undefined."""
    if not is_number(v):
        return float("nan")
    text = num(v, spec)
    return float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)


def pct(p) -> str:
    """Return a probability as a percentage, with more digits near 0 and 1 so small changes stay visible."""
    if not is_number(p):
        return UNDEFINED
    return num(p, ".3%") if p > 0.999 or p < 0.001 else num(p, ".1%")


def same(a, b, spec: str = ".2f") -> bool:
    """Return True when `a` and `b` read the same once formatted with `spec` (both undefined counts as same)."""
    return num(a, spec) == num(b, spec)


def change(before, after, spec: str = ".2f", formatter=None) -> str:
    """Return "goes from A to B", or "stays at A" when both read the same, or says what is undefined."""
    f = formatter or (lambda v: num(v, spec))
    a, b = f(before), f(after)
    if a == UNDEFINED and b == UNDEFINED:
        return "is undefined before and after"
    if a == b:
        return f"does not change ({a})"
    return f"goes from {a} to {b}"


def difference(a, b, spec: str = ".2f") -> tuple[str, str, str]:
    """Return (a, b, a − b) as shown: the difference of the rounded numbers, so the arithmetic adds up on screen."""
    ra, rb = rounded(a, spec), rounded(b, spec)
    d = ra - rb if is_number(ra) and is_number(rb) else float("nan")
    sign_spec = "+" + spec if not spec.startswith("+") else spec
    return num(a, spec), num(b, spec), num(round(d, 10), sign_spec)


def listing(items: Sequence[str], word: str = "and") -> str:
    """Return "a", "a and b" or "a, b and c"."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def curve(values: Sequence, labels: Sequence[str], spec: str = ".2f") -> str:
    """Return how a curve over `labels` runs, as a clause: "rises from A at X to B at Y", "falls …",
    "stays at A from X to Y", or "is not monotonic: A at X, highest B at Z, C at Y" (undefined points are
    named as such)."""
    pts = [(num(v, spec), rounded(v, spec), str(lab)) for v, lab in zip(values, labels)]
    defined = [(t, r, lab) for t, r, lab in pts if is_number(r)]
    missing = [lab for t, r, lab in pts if not is_number(r)]
    tail = f" (undefined at {listing(missing)})" if missing else ""
    if not defined:
        return f"is undefined at every block ({listing(missing)})"
    if len(defined) == 1:
        t, _, lab = defined[0]
        return f"is {t} at {lab}" + tail
    (t0, r0, l0), (t1, r1, l1) = defined[0], defined[-1]
    rs = [r for _, r, _ in defined]
    steps = [b - a for a, b in zip(rs, rs[1:])]
    if all(s == 0 for s in steps):
        return f"stays at {t0} from {l0} to {l1}" + tail
    if all(s >= 0 for s in steps):
        return f"rises from {t0} at {l0} to {t1} at {l1}" + tail
    if all(s <= 0 for s in steps):
        return f"falls from {t0} at {l0} to {t1} at {l1}" + tail
    hi = max(range(len(defined)), key=lambda i: rs[i])
    lo = min(range(len(defined)), key=lambda i: rs[i])
    if 0 < hi < len(defined) - 1 or 0 < lo < len(defined) - 1:
        inner = hi if 0 < hi < len(defined) - 1 else lo
        word = "highest" if inner == hi else "lowest"
        ti, _, li = defined[inner]
        return f"is not monotonic: {t0} at {l0}, {word} {ti} at {li}, {t1} at {l1}" + tail
    # The ends are the extremes, with a reversal in between: name the largest one.
    rising = r1 > r0
    i, j = max(((a, b) for a in range(len(rs)) for b in range(a + 1, len(rs))),
               key=lambda ab: (rs[ab[0]] - rs[ab[1]]) if rising else (rs[ab[1]] - rs[ab[0]]))
    (ta, _, la), (tb, _, lb) = defined[i], defined[j]
    return (f"{'rises' if rising else 'falls'} from {t0} at {l0} to {t1} at {l1}, but not monotonically: "
            f"{ta} at {la}, then {tb} at {lb}" + tail)


_FORBIDDEN = re.compile(r"(?<![\w.])(nan|NaN|inf|-inf|None)(?![\w])")
_FROM_TO = re.compile(r"from (\S+?) to \1(?=[\s,.;)]|$)")


def finish(text: str | None, capitalise: bool = True) -> str | None:
    """Return `text` as a finished sentence: spaces normalised, first letter capitalised (unless it starts with
    a name: `capitalise` False), a full stop at the end; a last guard turns any leftover undefined number into
    "undefined" and "from X to X" into "at X (unchanged)" (the builders above avoid both; this keeps a new sentence
    from ever showing them)."""
    if text is None:
        return None
    text = re.sub(r"\s+", " ", str(text)).strip()
    if not text:
        return None
    text = _FORBIDDEN.sub(UNDEFINED, text)
    text = _FROM_TO.sub(lambda m: f"at {m.group(1)} (unchanged)", text)
    if capitalise:
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def broken(text: str | None) -> list[str]:
    """Return what is wrong with a sentence a view shows: "nan", "None", "inf" or "from X to X" (empty: fine)."""
    if not text:
        return []
    found = [m.group(1) for m in _FORBIDDEN.finditer(text)]
    found += [m.group(0) for m in _FROM_TO.finditer(text)]
    return found
