"""Tables as a reader sees them, on screen and in exported images: human column names, 2-3 significant digits,
yes/no, a dash where there is no value (readable_table), and the height a table figure needs to show every row."""
from __future__ import annotations

import math
import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

# Human names of the data columns tables show (snake_case in the data and the CSV files, words on screen). A view
# passes its own names for columns only it has; any other column shows with its underscores as spaces.
COLUMN_NAMES: dict[str, str] = {
    "block": "SE block", "channels": "channels C", "squeeze width": "squeeze width C/r", "type": "SE type",
    "final_class_specificity": "class specificity (final)", "control_class_specificity": "untrained control",
    "class_specific_from_epoch": "class-specific from epoch", "learned_specificity": "learned specificity",
    "class_specificity": "class specificity", "this_model": "this model", "se_parameters": "SE parameters",
}
MISSING = "—"  # a cell without a value: never "nan" or "None"


def significant(x: float, digits: int = 3) -> str:
    """Return `x` with `digits` significant digits in plain notation (never an exponent), thousands separated:
    0.0001234 → "0.000123", 0.5 → "0.5", 12.345 → "12.3", 12345.6 → "12,346"; MISSING when not finite."""
    if x is None or not math.isfinite(float(x)):
        return MISSING
    x = float(x)
    if x == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if re.fullmatch(r"-0[.,]?0*", text) else text


def human_column(name, names: Mapping[str, str] | None = None) -> str:
    """Return the header a table shows for data column `name`: `names`, else COLUMN_NAMES, else with its
    underscores as spaces."""
    name = str(name)
    return (names or {}).get(name) or COLUMN_NAMES.get(name) or name.replace("_", " ")


def readable_table(frame: pd.DataFrame, names: Mapping[str, str] | None = None, *, percent: Iterable[str] = (),
                   signed: Iterable[str] = (), digits: int = 3, text: bool = True) -> pd.DataFrame:
    """Return `frame` as a reader sees it, the one formatter of every table on screen and in exported images:
    human column names (human_column), numbers to `digits` significant digits (integers whole, with thousands
    separators), `percent` columns (fractions) as percentages, `signed` columns with their sign, yes/no for
    booleans and MISSING where there is no value. text=True: every cell as text (static tables, figures);
    text=False: numbers stay numbers, rounded, for a sortable interactive table (percent columns as percentage
    points, their header marked "(%)")."""
    percent, signed = set(percent), set(signed)
    out = {}
    for col in frame.columns:
        v = frame[col]
        header = human_column(col, names)
        number = pd.api.types.is_numeric_dtype(v) and not pd.api.types.is_bool_dtype(v)
        if number and not text:
            x = v.astype(float) * (100 if col in percent else 1)
            keep = pd.api.types.is_integer_dtype(v) and col not in percent
            out[header + (" (%)" if col in percent and "%" not in header else "")] = (
                v if keep else x.map(lambda a: float(significant(a, digits).replace(",", "")) if math.isfinite(a)
                                     else float("nan")))
            continue
        cells = []
        for x in v:
            if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
                cells.append(MISSING)
            elif isinstance(x, (bool, np.bool_)):
                cells.append("yes" if x else "no")
            elif isinstance(x, (int, np.integer)) and col not in percent:
                cells.append(f"{'+' if col in signed and x > 0 else ''}{int(x):,}")
            elif isinstance(x, (float, np.floating, int, np.integer)):
                shown = significant(100 * float(x) if col in percent else float(x), digits)
                sign = "+" if col in signed and float(x) > 0 and shown != "0" else ""
                cells.append(sign + shown + ("%" if col in percent and shown != MISSING else ""))
            else:
                cells.append(str(x))
        out[header] = cells
    return pd.DataFrame(out, index=frame.index)


TABLE_CHARS = 110  # characters across a table figure at 13 px (about its 1000 px width)


def table_row_lines(cells: Sequence[Sequence[str]], chars: int = TABLE_CHARS) -> list[int]:
    """Return, per row of a table given as columns of cell texts, the lines its longest cell wraps to when the
    table is `chars` characters wide (shared evenly by the columns)."""
    per_col = max(8, chars // max(len(cells), 1))
    rows = len(cells[0]) if cells else 0
    return [max([1] + [math.ceil(len(re.sub(r"<[^>]+>", "", str(col[i]))) / per_col) for col in cells])
            for i in range(rows)]


def table_height(cells: Sequence[Sequence[str]], header: Sequence[str], line_px: int = 20,
                 chars: int = TABLE_CHARS, top: int = 50, bottom: int = 10) -> int:
    """Return the height in px that shows every row of a table figure (no scrolling inside it): its header and
    each row with the lines its longest cell wraps to, `line_px` per line plus padding."""
    head = max(table_row_lines([[h] for h in header], chars)) if header else 1
    return top + bottom + (line_px * head + 10) + sum(line_px * n + 10 for n in table_row_lines(cells, chars))
