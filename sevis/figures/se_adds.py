"""What SE adds beyond its input across the architecture families, over the seeds: the Architectures view's panel,
its block-by-block table and the finding its takeaway (and the README's families table) states.

The rows are what_se_adds rows of every SE run whose card holds them (sevis.train.family_evaluation), one run per
seed; sevis.analysis.squeeze.adds_over_seeds turns them into s − z and s − twin per family and block with a paired
bootstrap 95% interval over the seeds. The untrained control was run for seed 0 only: it stays a seed-0 column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.analysis.intervals import BOOTSTRAP_RESAMPLES, MIN_PAIRS, NO_DIFFERENCE, TOO_FEW
from sevis.analysis.squeeze import VERDICT_WORDS, adds_over_seeds, what_se_adds_sentence
from sevis.figures.plots import MISSING, PALETTE, Panel, apply_layout
from sevis.models.families import FAMILY_TITLES
from sevis.names import FAMILY_RUNS

SE_ADDS_NAMES = {"architecture": "architecture", "block": "SE block", "runs": "seeds", "s": "s (excitation)",
                 "z": "z (its input)", "twin": "plain twin, same place", "s_minus_z": "s − z",
                 "s_minus_z_interval": "s − z: 95% interval", "s_minus_z_verdict": "s against z",
                 "s_minus_twin": "s − twin", "s_minus_twin_interval": "s − twin: 95% interval",
                 "s_minus_twin_verdict": "s against the twin", "control": "untrained control's s − z (seed 0)",
                 "beyond": "seed 0 beyond the control?"}
CONTROL_VERDICTS = {True: "adds class information", False: "more class-agnostic than z", None: NO_DIFFERENCE}
WHAT = {"z": "s − z", "twin": "s − twin"}
SE_ADDS_TABLE_CAPTION = (
    "Per SE block: class specificity of s, z and the plain twin's features as means over the seeds; s − z and s − twin "
    "as the mean of each seed's difference with its paired bootstrap 95% interval (none with fewer than "
    f"{MIN_PAIRS} seeds) and what it shows; the untrained control was run for seed 0 only: its range of s − z, and "
    "whether seed 0's s − z lies beyond it.")


def over_seeds(adds: pd.DataFrame) -> pd.DataFrame:
    """Return adds_over_seeds of `adds` (what_se_adds rows with a `run` column) per family, each family's title in
    `architecture`, families in FAMILY_RUNS order."""
    runs = adds.assign(family=[FAMILY_RUNS[r]["family"] for r in adds["run"]])
    order = list(dict.fromkeys(FAMILY_RUNS[r]["family"] for r in FAMILY_RUNS))
    runs = runs.sort_values("family", key=lambda f: f.map(order.index), kind="stable")
    out = adds_over_seeds(runs, "family")
    out.insert(1, "architecture", [FAMILY_TITLES[f] for f in out["family"]])
    return out


def _seeds(n: int) -> str:
    return "no seed with both values" if n == 0 else f"{n} seed{'s' if n != 1 else ''}"


def _detail(row: pd.Series, name: str) -> str:
    """Return "+0.052, [+0.031, +0.070], 5 seeds" for an interval, "2 seeds" without one."""
    pairs = int(row[f"{name}_pairs"])
    if row[f"{name}_verdict"] == TOO_FEW or row[f"{name}_low"] is None or pd.isna(row[f"{name}_low"]):
        return _seeds(pairs)
    return f"{row[name]:+.3f}, [{row[f'{name}_low']:+.3f}, {row[f'{name}_high']:+.3f}], {_seeds(pairs)}"


def verdict_clauses(last: pd.DataFrame, against: str) -> str:
    """Return one clause per verdict of s against `against` ("z" or "twin") in the rows `last` (one per family):
    "s adds class information beyond z for Inception (+0.052, [+0.031, +0.070], 5 seeds); no difference shown for
    ..."; "" without rows."""
    name = f"s_minus_{against}"
    groups: dict[str, list[str]] = {}
    for _, r in last.iterrows():
        groups.setdefault(r[f"{name}_verdict"], []).append(f"{r['architecture']} ({_detail(r, name)})")
    order = ("higher", "lower", NO_DIFFERENCE, TOO_FEW)
    return "; ".join(f"{VERDICT_WORDS[against][v]} for {', '.join(groups[v])}" for v in order if v in groups)


def se_adds_finding(over: pd.DataFrame) -> str:
    """Return what SE adds at each family's last SE block over the seeds (`over`: over_seeds), as one or two
    sentences: s − z with its paired 95% interval and verdict per family, then s against the plain twin's features
    at the same place where any seed has them; "" without rows."""
    last = over[over["last"].astype(bool)]
    if last.empty:
        return ""
    text = (f"At the last SE block, over the seeds (the mean of spec(s) − spec(z) per seed, paired bootstrap 95% "
            f"interval, none with fewer than {MIN_PAIRS} seeds): {verdict_clauses(last, 'z')}.")
    if (last["s_minus_twin_pairs"] > 0).any():  # no twin in any card: nothing to say about it
        text += (" Against the plain twin's features at the same place (SE seed k against plain seed k): "
                 f"{verdict_clauses(last, 'twin')}.")
    return text


def _num(v, fmt: str) -> str:
    return MISSING if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def _interval(low, high) -> str:
    return MISSING if low is None or high is None or low != low else f"[{low:+.3f}, {high:+.3f}]"


def _control(adds: pd.DataFrame) -> pd.DataFrame:
    """Return seed 0's untrained-control columns per (family, block): its range of s − z and its verdict."""
    seed0 = adds[[FAMILY_RUNS[r]["seed"] == 0 for r in adds["run"]]]
    return pd.DataFrame({"family": [FAMILY_RUNS[r]["family"] for r in seed0["run"]], "block": list(seed0["block"]),
                         "low": list(seed0["control_s_minus_z_min"]), "high": list(seed0["control_s_minus_z_max"]),
                         "adds": list(seed0["adds"])}, columns=["family", "block", "low", "high", "adds"])


def se_adds_table(adds: pd.DataFrame) -> pd.DataFrame:
    """Return what SE adds as read (SE_ADDS_NAMES): per architecture and SE block the seeds, the mean class
    specificity of s, z and the plain twin to 0.01, s − z and s − twin over the seeds to 0.001 with their 95% interval
    and verdict, and seed 0's untrained-control range of s − z with whether seed 0's s − z lies beyond it."""
    over = over_seeds(adds)
    ctrl = _control(adds).set_index(["family", "block"])
    f = lambda v: _num(v, ".2f")  # noqa: E731  (class specificity lies in [0, 1])
    d = lambda v: _num(v, "+.3f")  # noqa: E731  (differences, down to the control's thousandths)
    control, beyond = [], []
    for fam, block in zip(over["family"], over["block"]):
        c = ctrl.loc[(fam, block)] if (fam, block) in ctrl.index else None
        lo, hi = (MISSING, MISSING) if c is None else (d(c["low"]), d(c["high"]))
        control.append(lo if lo == hi else f"{lo} to {hi}")
        # a result read back from a prepared file holds NaN where the computation said None (no verdict)
        known = c is not None and lo != MISSING
        beyond.append(CONTROL_VERDICTS[None if pd.isna(c["adds"]) else bool(c["adds"])] if known else MISSING)
    return pd.DataFrame({
        SE_ADDS_NAMES["architecture"]: over["architecture"], SE_ADDS_NAMES["block"]: over["block"],
        SE_ADDS_NAMES["runs"]: [str(int(n)) for n in over["runs"]],
        SE_ADDS_NAMES["s"]: [f(v) for v in over["s"]], SE_ADDS_NAMES["z"]: [f(v) for v in over["z"]],
        SE_ADDS_NAMES["twin"]: [f(v) for v in over["twin"]],
        **{SE_ADDS_NAMES[k]: v for name in ("s_minus_z", "s_minus_twin") for k, v in (
            (name, [d(x) if p else MISSING for x, p in zip(over[name], over[f"{name}_pairs"])]),
            (f"{name}_interval", [_interval(a, b) for a, b in zip(over[f"{name}_low"], over[f"{name}_high"])]),
            (f"{name}_verdict", [VERDICT_WORDS[name[8:]][v] for v in over[f"{name}_verdict"]]))},
        SE_ADDS_NAMES["control"]: control, SE_ADDS_NAMES["beyond"]: beyond,
    })


def se_adds_sentences(adds: pd.DataFrame) -> list[str]:
    """Return one sentence per seed-0 SE run in `adds` on its gates beside the untrained control (the control ran
    for seed 0 only)."""
    seed0 = adds[[FAMILY_RUNS[r]["seed"] == 0 for r in adds["run"]]]
    return [what_se_adds_sentence(FAMILY_TITLES[FAMILY_RUNS[run]["family"]].join(("SE-", "")), rows)
            for run, rows in seed0.groupby("run", sort=False)]


def se_adds_panel(adds: pd.DataFrame) -> Panel:
    """Return what SE adds in each SE family over the seeds: per block the mean class specificity of s, of its input
    z and of the plain twin's features at the same place (top), and s − z and s − twin with their 95% intervals
    (bottom), one column per architecture; the finding and seed 0's control sentences as caption. Its data are the
    per-run rows."""
    over = over_seeds(adds)
    families = list(dict.fromkeys(over["family"]))
    runs = {f: int(over.loc[over["family"] == f, "runs"].max()) for f in families}
    titles = [f"SE-{FAMILY_TITLES[f]} ({runs[f]} seed{'s' if runs[f] != 1 else ''})" for f in families]
    fig = make_subplots(rows=2, cols=max(len(families), 1), subplot_titles=titles, shared_yaxes="rows",
                        horizontal_spacing=0.04, vertical_spacing=0.16, row_heights=[0.55, 0.45])
    for k, fam in enumerate(families):
        rows = over[over["family"] == fam]
        x = list(rows["block"])
        for col, name, dash, color in (("s", "s (the excitation)", "solid", PALETTE[0]),
                                       ("z", "z = GAP(U), its input", "dash", PALETTE[1]),
                                       ("twin", "plain twin's features, same place", "dot", PALETTE[2])):
            y = pd.to_numeric(rows[col], errors="coerce")
            if y.notna().any():
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{name}, mean over seeds",
                                         legendgroup=col, showlegend=k == 0, line=dict(dash=dash, color=color),
                                         hovertemplate=f"{titles[k]} %{{x}}<br>{name}: %{{y:.2f}}<extra></extra>"),
                              row=1, col=k + 1)
        for against, color, symbol in (("z", PALETTE[3], "circle"), ("twin", PALETTE[4], "diamond-open")):
            name = f"s_minus_{against}"
            y = pd.to_numeric(rows[name], errors="coerce")
            lo, hi = (pd.to_numeric(rows[f"{name}_{e}"], errors="coerce") for e in ("low", "high"))
            if y.notna().any():
                fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=f"{WHAT[against]}, 95% interval",
                                         legendgroup=name, showlegend=k == 0,
                                         marker=dict(color=color, size=8, symbol=symbol),
                                         error_y=dict(type="data", symmetric=False, array=(hi - y).fillna(0),
                                                      arrayminus=(y - lo).fillna(0), visible=True),
                                         hovertemplate=f"{titles[k]} %{{x}}<br>{WHAT[against]}: %{{y:+.3f}}"
                                                       "<extra></extra>"), row=2, col=k + 1)
        fig.add_hline(y=0, line=dict(color="#444", width=1), row=2, col=k + 1)
        for r in (1, 2):
            fig.update_xaxes(type="category", tickangle=-60, showticklabels=r == 2, row=r, col=k + 1)
    fig.update_yaxes(title_text="class specificity", range=[0, 1], row=1, col=1)
    ends = pd.to_numeric(pd.concat([over[f"s_minus_{a}{e}"] for a in WHAT for e in ("", "_low", "_high")]),
                         errors="coerce").abs()
    top = float(ends.max()) if ends.notna().any() else 0.0
    top = min(1.0, max(0.05, 1.1 * top))  # a difference of class specificities lies in [-1, 1]
    fig.update_yaxes(title_text="difference in class specificity", range=[-top, top], row=2, col=1)
    sentences = se_adds_sentences(adds)
    control = (" Beside the untrained control (seed 0 only: a random gate also changes specificity; s adds class "
               "information where s − z lies above every seed of the control's s − z). " + " ".join(sentences)
               if sentences else "")
    finding = se_adds_finding(over)
    return Panel("architectures_what_se_adds", "What SE adds beyond its input, per architecture",
                 "Over the reference set, per SE block of each SE model: the class specificity (share of the variance "
                 "between class means) of the excitation s, of the squeeze z it is computed from, and of the plain "
                 "twin's pooled features at the same place (trained without SE, the same seed), means over the seeds "
                 "(top); below, spec(s) − spec(z) and spec(s) − spec(twin) as the mean over the seeds with a paired "
                 f"bootstrap 95% interval ({BOOTSTRAP_RESAMPLES:,} resamples of the seeds; none with fewer than "
                 f"{MIN_PAIRS}). " + finding + control,
                 apply_layout(fig, "What SE adds beyond its input, per architecture", height=620), adds)
