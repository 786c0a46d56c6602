"""The paper's ablations (Tables 10-16) at small scale: variants of the default model, one schedule, one table.

Each variant is the default model (`embedded`: SE-ResNet-50's layout on Fashion-MNIST in context) with one change
(sevis.names.ABLATIONS). `ablate` trains the missing ones on ABLATION_SCHEDULE, resumes an interrupted one from its
per-epoch checkpoint and skips finished ones; weights go to pretrained/ablations/<name>.safetensors (half
precision) with a model card holding the evaluation on the reference set. `summary` reads the cards back;
`comparison_table` sets them beside the paper's rows, with the spread of the baseline over seeds as the noise floor.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from sevis.analysis.paper import CONSTANT_SPREAD
from sevis.models.checkpoint import read_card, save_checkpoint, write_card
from sevis.names import ABLATION_AXES, ABLATIONS, EMBEDDED, ablation_dir
from sevis.train.runs import RunGrid, claim_lock

DEFAULT_ARCH = EMBEDDED["embedded"]  # every variant changes this architecture in one way
# One shorter schedule for every variant (the default model trains 30 epochs on all 60k garments): 5 epochs on the
# first 30k training garments, fresh in-context samples every epoch, evaluated on the full 10k test split.
ABLATION_SCHEDULE = {"epochs": 5, "train_images": 30_000}
# The baseline and its reruns with other seeds: the range of their accuracy is the noise floor.
NOISE_SEEDS = tuple(n for n in ABLATIONS if n == "baseline" or n.startswith("baseline-seed"))
SUMMARY_COLUMNS = ["name", "axis", "change", "seed", "test_accuracy", "test_accuracy_fp32", "parameters",
                   "se_parameters", "se_share", "seconds", "epochs", "train_images", "stale", "constant_blocks"]

# The paper's ablation rows (SE-ResNet-50 on ImageNet; ../shared/paper-facts.md): top-1 / top-5 error and
# parameters in millions where the paper gives them. "no-stage-5" has no table row: the paper's text says dropping
# SE from the last stage cuts SE's extra parameters from ~10% to ~4% at a top-5 cost below 0.1%.
PAPER_ROWS: dict[str, dict] = {
    "baseline": {"row": "SE-ResNet-50 (r = 16, avg, sigmoid, all stages, standard)", "top1": 22.28, "top5": 6.03,
                 "params_m": 28.1},
    "r4": {"row": "r = 4", "top1": 22.25, "top5": 6.09, "params_m": 35.7},
    "r8": {"row": "r = 8", "top1": 22.26, "top5": 5.99, "params_m": 30.7},
    "r32": {"row": "r = 32", "top1": 22.72, "top5": 6.20, "params_m": 26.9},
    "squeeze-max": {"row": "max pooling squeeze", "top1": 22.57, "top5": 6.09, "params_m": None},
    "gate-relu": {"row": "ReLU excitation", "top1": 23.47, "top5": 6.98, "params_m": None},
    "gate-tanh": {"row": "tanh excitation", "top1": 23.00, "top5": 6.38, "params_m": None},
    "stage-2": {"row": "SE in stage 2 only", "top1": 23.03, "top5": 6.48, "params_m": None},
    "stage-3": {"row": "SE in stage 3 only", "top1": 23.04, "top5": 6.32, "params_m": None},
    "stage-4": {"row": "SE in stage 4 only", "top1": 22.68, "top5": 6.22, "params_m": None},
    "no-stage-5": {"row": "SE in stages 2-4 (text: ~4% extra parameters, < 0.1% top-5 cost)", "top1": None,
                   "top5": None, "params_m": None},
    "integration-pre": {"row": "PRE integration", "top1": 22.23, "top5": 6.00, "params_m": None},
    "integration-post": {"row": "POST integration", "top1": 22.78, "top5": 6.35, "params_m": None},
    "integration-identity": {"row": "identity integration", "top1": 22.20, "top5": 6.15, "params_m": None},
    "se-3x3": {"row": "SE after the 3×3 convolution", "top1": 22.48, "top5": 6.02, "params_m": 25.8},
    "plain": {"row": "ResNet-50 (no SE)", "top1": 23.30, "top5": 6.55, "params_m": 25.6},
}


ABLATION_GRID = RunGrid(ABLATIONS, ablation_dir, "ablation", "ablation", "sevis ablate --variants")


def variant(name: str) -> dict:
    """Return the variant `name` (axis, change, overrides, seed); a ModelError names the known ones."""
    return ABLATION_GRID.lookup(name)


def train_config(name: str, threads: int = 1, **schedule):
    """Return the TrainConfig of variant `name` on ABLATION_SCHEDULE (updated by `schedule`: tiny runs in tests)."""
    from sevis.train.trainer import TrainConfig
    v = variant(name)
    overrides = {k: (tuple(val) if isinstance(val, list) else val) for k, val in v["overrides"].items()}
    return TrainConfig(arch=DEFAULT_ARCH, data="context", seed=v["seed"], threads=threads, arch_overrides=overrides,
                       **{**ABLATION_SCHEDULE, **schedule})


def weights_file(name: str, out_dir: str | Path | None = None) -> Path:
    """Return where variant `name`'s weights live."""
    return ABLATION_GRID.weights_file(name, out_dir)


def is_trained(name: str, out_dir: str | Path | None = None) -> bool:
    """Return whether variant `name` has weights and a card with its ablation record (current or stale)."""
    return ABLATION_GRID.has_record(name, out_dir)


def is_stale(name: str, out_dir: str | Path | None = None) -> bool:
    """Return whether trained variant `name` came from an older training-data pipeline
    (sevis.train.trainer.DATA_VERSION)."""
    from sevis.train.trainer import DATA_VERSION
    return read_card(weights_file(name, out_dir)).get("training", {}).get("data_version", 1) != DATA_VERSION


def is_finished(name: str, out_dir: str | Path | None = None) -> bool:
    """Return whether variant `name` is trained with today's data pipeline (`sevis ablate` skips it)."""
    return is_trained(name, out_dir) and not is_stale(name, out_dir)


HALF_TOLERANCE = 0.0005  # half precision is used when it moves test accuracy by at most 0.05 points
MAX_BYTES = 2 * 1024 * 1024  # per variant's weights file


def _float32_bytes(model) -> int:
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


def read_state_dtypes(path: Path) -> set:
    """Return the dtypes of the floating-point tensors in a safetensors file."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return {f.get_slice(k).get_dtype() for k in f.keys() if f.get_slice(k).get_dtype() in ("F16", "F32", "BF16")}


def _half(model):
    import copy
    return copy.deepcopy(model).half()  # BN statistics and all: half the bytes, and evaluation says what it costs


def train_variant(name: str, out_dir: str | Path | None = None, log: Callable[[str], None] = print,
                  evaluate_reference: bool = True, stop_after: int | None = None, threads: int = 1,
                  **schedule) -> Path | None:
    """Train variant `name` (resuming its checkpoint), save it in half precision with its card, evaluate it; return
    the weights path, or None when `stop_after` ended the run early (tests of resuming)."""
    from sevis.train.trainer import model_card, resume_path, train

    cfg = train_config(name, threads, **schedule)
    out = weights_file(name, out_dir)
    resume = resume_path(out)
    model, history = train(cfg, log=log, checkpoint=resume, stop_after=stop_after)
    if len(history["test_accuracy"]) < cfg.epochs:
        return None
    command = f"sevis ablate --variants {name}"
    loaded, card, test_acc, fp32_acc, test = save_trained(
        model, cfg, history, out, model_card(model, cfg, history, f"ablation:{name}", command), command,
        evaluate_reference, log, name)
    v = variant(name)
    # The ablation record comes last: a card without it (a run stopped while evaluating) is not trained, and the
    # next `sevis ablate` resumes from the checkpoint, which is kept until here.
    card["ablation"] = {"name": name, "axis": v["axis"], "change": v["change"], "seed": v["seed"],
                        "overrides": v["overrides"], "schedule": {**ABLATION_SCHEDULE, **schedule},
                        "test_images": len(test), "test_accuracy": round(test_acc, 6),
                        "test_accuracy_fp32": fp32_acc, "dtype": sorted(read_state_dtypes(out))[0],
                        "parameters": loaded.num_parameters,
                        "se_parameters": loaded.num_parameters - plain_parameters(),
                        "seconds": card["training"]["seconds"]}
    write_card(out, card)
    resume.unlink(missing_ok=True)
    write_summary(out.parent)
    log(f"{name}: test accuracy {test_acc:.4f} (float32 {fp32_acc:.4f}); saved {out}")
    return out


def save_trained(model, cfg, history: dict, out: Path, card: dict, command: str, evaluate_reference: bool,
                 log: Callable[[str], None], name: str):
    """Save a freshly trained model at `out` with `card`: half precision, or float32 when half moves test accuracy by
    more than HALF_TOLERANCE (and float32 fits MAX_BYTES); with `evaluate_reference`, the reference-set evaluation
    (control, knock-outs) goes into the card. Return (the saved model as users load it, the card, its test
    accuracy, the float32 accuracy training ended with, the test split used). The card is written; the caller adds
    its own record last, which marks the run finished."""
    import torch

    from sevis.analysis.reports import evaluate, evaluation_report
    from sevis.data.fashion_mnist import load_split
    from sevis.models.zoo import load_checkpoint
    from sevis.train.trainer import Split, accuracy

    test = load_split("test", "context")
    if cfg.test_images:
        test = Split(test.images[:cfg.test_images], test.labels[:cfg.test_images])
    save_checkpoint(_half(model), out, card)
    loaded = load_checkpoint(out)  # what users get: the half-precision weights, back in float32
    test_acc, _ = accuracy(loaded.model, test, torch.device("cpu"), data="context")
    fp32_acc = history.get("test_accuracy_after_bn", history["test_accuracy"][-1])
    if abs(test_acc - fp32_acc) > HALF_TOLERANCE and _float32_bytes(model) <= MAX_BYTES:
        # Half precision moved the accuracy by more than 0.05 points: keep float32, which still fits.
        save_checkpoint(model, out, card)
        loaded = load_checkpoint(out)
        test_acc, _ = accuracy(loaded.model, test, torch.device("cpu"), data="context")
    card = read_card(out)
    if evaluate_reference:
        log(f"{name}: evaluating on the reference set (control, knock-outs)")
        mm = evaluate(loaded, "reference")
        card["evaluation"] = evaluation_report(mm, loaded.classes, "reference", command)
    return loaded, card, test_acc, fp32_acc, test


def plain_parameters() -> int:
    """Return the parameters of the default model without SE (the `plain` variant), counted on the meta device."""
    from sevis.models.params import build_on_meta, count_parameters
    from sevis.models.resnet import architecture_config
    return count_parameters(build_on_meta(architecture_config(DEFAULT_ARCH, se=False)))


def ablate(names: Sequence[str] | None = None, out_dir: str | Path | None = None, log: Callable[[str], None] = print,
           evaluate_reference: bool = True, threads: int = 1, **schedule) -> list[Path]:
    """Train every variant in `names` (default: all) that is not finished, in order; return the finished weights.

    Finished variants are skipped, an interrupted one resumes after its last epoch: re-run until done."""
    names = list(names or ABLATIONS)
    for n in names:
        variant(n)
    done = []
    for n in names:
        if is_finished(n, out_dir):
            log(f"{n}: finished, skipped")
            done.append(weights_file(n, out_dir))
            continue
        if is_trained(n, out_dir):
            log(f"{n}: trained with an older data pipeline: training it again")
        owner = _claim(n, out_dir)
        if owner is not None:  # another `sevis ablate` (a second core, a second terminal) trains it right now
            log(f"{n}: being trained by process {owner}, skipped")
            continue
        try:
            log(f"{n}: {variant(n)['change']}")
            if train_variant(n, out_dir, log=log, evaluate_reference=evaluate_reference, threads=threads,
                             **schedule) is not None:
                done.append(weights_file(n, out_dir))
        finally:
            _lock_file(n, out_dir).unlink(missing_ok=True)
    return done


def status(name: str, out_dir: str | Path | None = None) -> str:
    """Return "trained", "stale (older data pipeline)", "training (process N)", "interrupted" (a checkpoint to resume
    from) or "missing"."""
    if is_finished(name, out_dir):
        return "trained"
    if is_trained(name, out_dir) and not _lock_file(name, out_dir).exists():
        return "stale (older data pipeline)"
    return ABLATION_GRID.status(name, out_dir, finished=False)


def _lock_file(name: str, out_dir: str | Path | None) -> Path:
    return ABLATION_GRID.lock_file(name, out_dir)


def _claim(name: str, out_dir: str | Path | None) -> int | None:
    """Take variant `name` for this process; return the pid of a live process that holds it already, else None."""
    return claim_lock(_lock_file(name, out_dir))


# ------------------------------------------------------------------------------------------- summary
def summary(out_dir: str | Path | None = None) -> pd.DataFrame:
    """Return one row per trained variant (SUMMARY_COLUMNS), in the order of sevis.names.ABLATIONS; `stale` marks
    those an older data pipeline trained (`sevis ablate` trains them again); `constant_blocks` lists the SE blocks
    whose s was the same for every reference image (their card's spread is 0)."""
    rows = []
    for name in ABLATIONS:
        if not is_trained(name, out_dir):
            continue
        card = read_card(weights_file(name, out_dir))
        a = card["ablation"]
        rows.append({"name": name, "axis": a["axis"], "change": a["change"], "seed": a["seed"],
                     "test_accuracy": a["test_accuracy"], "test_accuracy_fp32": a["test_accuracy_fp32"],
                     "parameters": a["parameters"], "se_parameters": a["se_parameters"],
                     "se_share": a["se_parameters"] / (a["parameters"] - a["se_parameters"]),
                     "seconds": a["seconds"], "epochs": a["schedule"]["epochs"],
                     "train_images": a["schedule"].get("train_images", 0), "stale": is_stale(name, out_dir),
                     "constant_blocks": [r["block"] for r in (card.get("evaluation") or {}).get("excitation") or []
                                         if r.get("spread") is not None and r["spread"] < CONSTANT_SPREAD]})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def write_summary(out_dir: str | Path | None = None) -> Path:
    """Write summary.json (rows and the noise floor) beside the variants' weights; return its path."""
    out_dir = Path(out_dir or ablation_dir())
    table = summary(out_dir)
    floor = noise_floor(table)
    doc = {"noise_floor": floor,
           "variants": json.loads(table.to_json(orient="records"))}
    path = out_dir / "summary.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def noise_floor(table: pd.DataFrame) -> dict:
    """Return the baseline's accuracy over its seeds: mean, range (max - min, the noise floor) and how many seeds."""
    acc = table.loc[table["name"].isin(NOISE_SEEDS), "test_accuracy"].astype(float)
    if acc.empty:
        return {"seeds": 0, "mean": None, "range": None}
    return {"seeds": int(len(acc)), "mean": round(float(acc.mean()), 6),
            "range": round(float(acc.max() - acc.min()), 6) if len(acc) > 1 else None}


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """Return the paper's rows beside ours, one row per variant (the baseline's extra seeds folded into the floor).

    Columns: axis, variant, paper (its row), paper_top1_err, paper_delta (top-1 error change vs the paper's
    SE-ResNet-50, in points; negative is better), paper_params_m, accuracy (ours, %), delta (accuracy change vs
    the baseline's seed mean, in points; positive is better), noise_floor (points), within_noise, se_extra (SE's
    extra parameters over `plain`, % of plain)."""
    floor = noise_floor(table)
    base = floor["mean"]
    spread = floor["range"]
    base_err = PAPER_ROWS["baseline"]["top1"]
    rows = []
    for _, r in table.iterrows():
        if r["name"] in NOISE_SEEDS[1:]:
            continue
        paper = PAPER_ROWS.get(r["name"], {})
        acc = float(r["test_accuracy"]) if r["name"] != "baseline" or base is None else base
        delta = None if base is None or r["name"] == "baseline" else round(100 * (acc - base), 2)
        rows.append({
            "axis": r["axis"], "variant": r["name"], "paper": paper.get("row", ""),
            "paper_top1_err": paper.get("top1"),
            "paper_delta": None if paper.get("top1") is None or r["name"] == "baseline"
            else round(paper["top1"] - base_err, 2),
            "paper_params_m": paper.get("params_m"),
            "accuracy": round(100 * acc, 2),
            "delta": delta,
            "noise_floor": None if spread is None else round(100 * spread, 2),
            "within_noise": None if delta is None or spread is None else bool(abs(delta) <= 100 * spread),
            "se_extra": round(100 * float(r["se_share"]), 1),
        })
    order = {a: i for i, a in enumerate(ABLATION_AXES)}
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df.sort_values("axis", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def grid_findings(table: pd.DataFrame) -> list[str]:
    """Return what the grid says, one sentence per finding, computed from the trained variants: removing SE, the
    best variant of each axis beside the paper's, how often a change points the paper's way, the cost of dropping
    SE from the last stage, and how rough the noise floor is. Empty until the baseline's seeds give a floor.
    Stale variants (an older data pipeline trained them) are left out: they follow another recipe."""
    stale = table.loc[table["stale"].astype(bool), "name"].tolist()
    table = table[~table["name"].isin(stale)]
    floor = noise_floor(table)
    cmp = comparison_table(table)
    if cmp.empty or floor["range"] is None:
        return []
    points = 100 * floor["range"]
    rows = cmp.set_index("variant")

    def where(delta: float) -> str:
        return "inside" if abs(delta) <= points else "outside"

    out = []
    if "plain" in rows.index:
        d, p = rows.at["plain", "delta"], rows.at["plain", "paper_delta"]
        out.append(f"Without SE (`plain`) accuracy changes by {d:+.2f} points ({where(d)} the noise floor); in the "
                   f"paper top-1 error changes by {p:+.2f}: {'the same' if (d < 0) == (p > 0) else 'the opposite'} "
                   "direction.")
    for axis in ABLATION_AXES:
        group = cmp[cmp["axis"] == axis]
        if axis in ("baseline", "no SE") or group.empty:
            continue
        ours = group.loc[group["delta"].idxmax()]
        ours_text = (f"`{ours['variant']}` ({ours['delta']:+.2f})" if ours["delta"] > 0
                     else f"the baseline (every variant lower, best `{ours['variant']}` {ours['delta']:+.2f})")
        known = group.dropna(subset=["paper_delta"])
        paper_text = ""
        if not known.empty:
            best = known.loc[known["paper_delta"].idxmin()]
            paper_text = (f"; in the paper `{best['variant']}` ({best['paper_delta']:+.2f} err)"
                          if best["paper_delta"] < 0
                          else "; in the paper the baseline")
        quiet = " (every change inside the noise floor)" if group["within_noise"].all() else ""
        out.append(f"{axis.capitalize()}: best here {ours_text}{paper_text}{quiet}.")
    both = cmp.dropna(subset=["paper_delta", "delta"])
    both = both[(~both["within_noise"].astype(bool)) & (both["paper_delta"] != 0)]
    if len(both):
        agree = (both["delta"] > 0) == (both["paper_delta"] < 0)
        against = ", ".join(f"`{v}`" for v in both.loc[~agree, "variant"])
        out.append(f"Of the {len(both)} changes outside the noise floor, {int(agree.sum())} point the paper's way"
                   + (f" (not: {against})." if against else "."))
    if "no-stage-5" in rows.index and "baseline" in rows.index:
        d = rows.at["no-stage-5", "delta"]
        out.append(f"SE in stages 2-4 only (`no-stage-5`) adds {rows.at['no-stage-5', 'se_extra']:.1f}% parameters "
                   f"instead of {rows.at['baseline', 'se_extra']:.1f}% and changes accuracy by {d:+.2f} points "
                   f"({where(d)} the noise floor); the paper: about 4% instead of 10%, under 0.1% top-5 cost.")
    constant = [(r["name"], b) for _, r in table.iterrows() for b in (r.get("constant_blocks") or [])]
    if constant:
        by_block: dict[str, list[str]] = {}
        for name, block in constant:
            by_block.setdefault(block, []).append(f"`{name}`")
        out.append("SE blocks that give every image the same s, a fixed per-channel scale with no excitation left: "
                   + "; ".join(f"{b} in {', '.join(names)}" for b, names in by_block.items()) + ".")
    out.append(f"The noise floor is the range of {floor['seeds']} seeds ({points:.2f} points): {floor['seeds']} runs "
               "give only a "
               "rough idea of the seed-to-seed spread, so a change near it may still be chance.")
    if stale:
        out.append(f"Left out until retrained (older data pipeline): {', '.join(f'`{n}`' for n in stale)}.")
    return out
