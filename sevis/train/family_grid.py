"""The paper's other SE architectures trained small: `sevis family` trains every model of sevis.names.FAMILY_RUNS
(SE-Inception, SE-ResNeXt, SE-MobileNet, SE-VGG and their plain twins, five seeds each) on one schedule.

Like `sevis ablate` (and with its helpers): finished runs are skipped, an interrupted one resumes from its per-epoch
checkpoint, several processes share the grid through lock files; weights go to pretrained/families/<run>.safetensors
(half precision) with a card holding accuracy, parameters, SE's extra parameters, the CPU time per image and the
reference-set evaluation with the untrained control (sevis.train.family_evaluation adds the accuracy on unseen
backgrounds, the near-constant gates and what SE adds). `summary` reads the cards back; `architecture_table` sets SE
beside plain per architecture, SE − plain as the mean over seed pairs with a paired bootstrap 95% interval on both
test sets, beside the paper's rows (Tables 2-3).
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from sevis.analysis.intervals import MIN_PAIRS, paired_bootstrap  # noqa: F401 (MIN_PAIRS: the views)
from sevis.analysis.paper import CONSTANT_SPREAD
from sevis.models.checkpoint import read_card, write_card
from sevis.names import FAMILY_RUNS, family_dir
from sevis.train.ablations import ABLATION_SCHEDULE, read_state_dtypes, save_trained
from sevis.train.runs import RunGrid, claim_lock

# One schedule for every architecture, the ablation grid's: 30k training garments (fresh in-context samples every
# epoch, evaluated on the full 10k test split) for 5 epochs. All 40 runs (5 seeds) take about 2.5 hours on two CPU
# cores (measured: 57-94 s per epoch for the Inception and ResNeXt runs, 26-76 s for MobileNet and VGG).
FAMILY_SCHEDULE = dict(ABLATION_SCHEDULE)
TIMING_REPEATS = 200  # batch-1 forward passes timed per model (after TIMING_WARMUP untimed ones)
TIMING_WARMUP = 20
PAIRED_TIMING = (f"median of {TIMING_REPEATS} batch-1 forward passes, 1 torch thread, thread CPU time, in alternating "
                 "rounds with its SE / plain twin (seed 0's weights)")
SUMMARY_COLUMNS = ["name", "model", "family", "se", "seed", "test_accuracy", "test_accuracy_fp32", "parameters",
                   "se_parameters", "cpu_ms", "seconds", "epochs", "train_images", "constant_blocks",
                   "near_constant_blocks", "unseen_accuracy", "paired_timing"]

# The paper's rows (ImageNet top-1 / top-5 error, GFLOPs, CPU ms) where ../shared/paper-facts.md gives numbers;
# for the others the paper reports gains across ResNeXt, VGG and MobileNet without numbers in that sheet.
PAPER_ROWS: dict[str, dict] = {
    "resnet": {"row": "ResNet-50 vs SE-ResNet-50 (Table 2)", "plain_top1": 24.80, "se_top1": 23.29,
               "plain_gflops": 3.86, "se_gflops": 3.87, "plain_cpu_ms": 164.0, "se_cpu_ms": 167.0},
    "inception": {"row": "BN-Inception vs SE-BN-Inception (Table 2)", "plain_top1": 25.38, "se_top1": 24.23,
                  "plain_gflops": 2.03, "se_gflops": 2.04, "plain_cpu_ms": None, "se_cpu_ms": None},
    "resnext": {"row": "ResNeXt-50 vs SE-ResNeXt-50 (Table 2: SE helps)"},
    "mobilenet": {"row": "MobileNet vs SE-MobileNet (Table 3: SE helps)"},
    "vgg": {"row": "VGG-16 vs SE-VGG-16 (Table 2: SE helps)"},
}


FAMILY_GRID = RunGrid(FAMILY_RUNS, family_dir, "family", "architecture model", "sevis family --models")


def run(name: str) -> dict:
    """Return run `name` of FAMILY_RUNS (model, arch, seed, se, family); a ModelError names the known ones."""
    return FAMILY_GRID.lookup(name)


def train_config(name: str, threads: int = 1, **schedule):
    """Return the TrainConfig of run `name` on FAMILY_SCHEDULE (updated by `schedule`: tiny runs in tests)."""
    from sevis.train.trainer import TrainConfig
    r = run(name)
    return TrainConfig(arch=r["arch"], data="context", seed=r["seed"], threads=threads,
                       **{**FAMILY_SCHEDULE, **schedule})


def weights_file(name: str, out_dir: str | Path | None = None) -> Path:
    """Return where run `name`'s weights live."""
    return FAMILY_GRID.weights_file(name, out_dir)


def _lock_file(name: str, out_dir: str | Path | None) -> Path:
    return FAMILY_GRID.lock_file(name, out_dir)


def is_finished(name: str, out_dir: str | Path | None = None) -> bool:
    """Return whether run `name` has weights and a card with its family record (`sevis family` skips it)."""
    return FAMILY_GRID.has_record(name, out_dir)


def status(name: str, out_dir: str | Path | None = None) -> str:
    """Return "trained", "training (process N)", "interrupted" (a checkpoint to resume from) or "missing"."""
    return FAMILY_GRID.status(name, out_dir)


def cpu_ms_per_image(model, size: int = 36, repeats: int = TIMING_REPEATS) -> float:
    """Return the median CPU time of one forward pass of one image (batch 1, one torch thread), in ms.

    Thread CPU time, not wall time: another process on the same core (a second `sevis family`) then barely moves it."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.zeros(1, 1, size, size)
    times = []
    try:
        with torch.inference_mode():
            for i in range(TIMING_WARMUP + repeats):
                t0 = time.thread_time_ns()
                model(x)
                if i >= TIMING_WARMUP:
                    times.append(time.thread_time_ns() - t0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) / 1e6


def paired_cpu_ms(se_model, plain_model, size: int = 36, rounds: int = 10, per_round: int = TIMING_REPEATS // 10
                  ) -> tuple[float, float]:
    """Return the median CPU ms per image (batch 1, one thread) of two models timed in alternating rounds, so that
    both see the same load on the machine (timed apart, a busy core moves one and not the other)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.zeros(1, 1, size, size)
    times: tuple[list[int], list[int]] = ([], [])
    try:
        with torch.inference_mode():
            for model in (se_model, plain_model):
                for _ in range(TIMING_WARMUP):
                    model(x)
            for _ in range(rounds):
                for model, out in zip((se_model, plain_model), times):
                    for _ in range(per_round):
                        t0 = time.thread_time_ns()
                        model(x)
                        out.append(time.thread_time_ns() - t0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[0]) / 1e6, statistics.median(times[1]) / 1e6


def time_families(out_dir: str | Path | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Time every architecture whose SE model and plain twin are trained (seed 0) in alternating rounds, write the
    times into the cards of every run of both, and the summary; return the families timed. `sevis family` runs it
    once the grid is complete (one process at a time, through a lock)."""
    from sevis.models.zoo import load_checkpoint
    timed = []
    lock = Path(out_dir or family_dir()) / "timing.lock"
    if claim_lock(lock) is not None:
        return timed
    try:
        for family in dict.fromkeys(r["family"] for r in FAMILY_RUNS.values()):
            se, plain = f"se-{family}", family
            if not (is_finished(se, out_dir) and is_finished(plain, out_dir)):
                continue
            ms = paired_cpu_ms(*(load_checkpoint(weights_file(n, out_dir)).model.eval() for n in (se, plain)))
            for name, r in FAMILY_RUNS.items():
                if r["model"] in (se, plain) and is_finished(name, out_dir):
                    card = read_card(weights_file(name, out_dir))
                    card["family"]["cpu_ms_per_image"] = round(ms[0] if r["se"] else ms[1], 4)
                    card["family"]["cpu_timing"] = PAIRED_TIMING
                    write_card(weights_file(name, out_dir), card)
            log(f"{family}: {ms[0]:.2f} ms per image with SE, {ms[1]:.2f} without")
            timed.append(family)
        write_summary(out_dir)
    finally:
        lock.unlink(missing_ok=True)
    return timed


def train_run(name: str, out_dir: str | Path | None = None, log: Callable[[str], None] = print,
              evaluate_reference: bool = True, stop_after: int | None = None, threads: int = 1,
              **schedule) -> Path | None:
    """Train run `name` (resuming its checkpoint), save it with its card, time and evaluate it; return the weights
    path, or None when `stop_after` ended the run early (tests of resuming)."""
    from sevis.core.recorder import find_se_blocks
    from sevis.train.trainer import model_card, resume_path, train

    cfg = train_config(name, threads, **schedule)
    out = weights_file(name, out_dir)
    resume = resume_path(out)
    model, history = train(cfg, log=log, checkpoint=resume, stop_after=stop_after)
    if len(history["test_accuracy"]) < cfg.epochs:
        return None
    command = f"sevis family --models {name}"
    loaded, card, test_acc, fp32_acc, test = save_trained(
        model, cfg, history, out, model_card(model, cfg, history, f"family:{name}", command), command,
        evaluate_reference, log, name)
    r = run(name)
    cpu_ms = cpu_ms_per_image(loaded.model.eval(), loaded.input_size)
    # The family record comes last: a card without it (a run stopped while evaluating) is not finished, and the next
    # `sevis family` resumes from the checkpoint, which is kept until here.
    card["family"] = {"name": name, "model": r["model"], "family": r["family"], "se": r["se"], "seed": r["seed"],
                      "title": loaded.model.title, "schedule": {**FAMILY_SCHEDULE, **schedule},
                      "test_images": len(test), "test_accuracy": round(test_acc, 6), "test_accuracy_fp32": fp32_acc,
                      "dtype": sorted(read_state_dtypes(out))[0], "parameters": loaded.num_parameters,
                      "se_parameters": sum(b.parameters for b, _ in find_se_blocks(loaded.model)),
                      "cpu_ms_per_image": round(cpu_ms, 4),
                      "cpu_timing": f"median of {TIMING_REPEATS} batch-1 forward passes, 1 torch thread, "
                                    "thread CPU time",
                      "seconds": card["training"]["seconds"]}
    write_card(out, card)
    resume.unlink(missing_ok=True)
    write_summary(out.parent)
    log(f"{name}: test accuracy {test_acc:.4f} (float32 {fp32_acc:.4f}), {cpu_ms:.2f} ms per image; saved {out}")
    return out


def train_families(names: Sequence[str] | None = None, out_dir: str | Path | None = None,
                   log: Callable[[str], None] = print, evaluate_reference: bool = True, threads: int = 1,
                   after_run: Callable[[str], object] | None = None, **schedule) -> list[Path]:
    """Train every run in `names` (default: all of FAMILY_RUNS) that is not finished, in order; return the finished
    weights. Finished runs are skipped, one held by another live process too; an interrupted one resumes.
    `after_run(name)` is called after each run this process finished (`sevis family`: its further evaluation)."""
    names = list(names or FAMILY_RUNS)
    for n in names:
        run(n)
    done = []
    for n in names:
        if is_finished(n, out_dir):
            log(f"{n}: finished, skipped")
            done.append(weights_file(n, out_dir))
            continue
        lock = _lock_file(n, out_dir)
        owner = claim_lock(lock)
        if owner is not None:
            log(f"{n}: being trained by process {owner}, skipped")
            continue
        try:
            log(f"{n}: {run(n)['arch']}, seed {run(n)['seed']}")
            finished = train_run(n, out_dir, log=log, evaluate_reference=evaluate_reference, threads=threads,
                                 **schedule) is not None
        finally:
            lock.unlink(missing_ok=True)
        if finished:
            done.append(weights_file(n, out_dir))
            if after_run is not None:
                after_run(n)
    if all(is_finished(n, out_dir) for n in FAMILY_RUNS) and not all(
            read_card(weights_file(n, out_dir))["family"].get("cpu_timing") == PAIRED_TIMING for n in FAMILY_RUNS):
        log("every run is trained: timing each SE model against its plain twin")
        time_families(out_dir, log)
    return done


# ------------------------------------------------------------------------------------------- summary
def summary(out_dir: str | Path | None = None) -> pd.DataFrame:
    """Return one row per finished run (SUMMARY_COLUMNS), in FAMILY_RUNS order; `constant_blocks` lists the SE
    blocks whose s was the same for every reference image."""
    rows = []
    for name in FAMILY_RUNS:
        if not is_finished(name, out_dir):
            continue
        card = read_card(weights_file(name, out_dir))
        f = card["family"]
        rows.append({"name": name, "model": f["model"], "family": f["family"], "se": f["se"], "seed": f["seed"],
                     "test_accuracy": f["test_accuracy"], "test_accuracy_fp32": f["test_accuracy_fp32"],
                     "parameters": f["parameters"], "se_parameters": f["se_parameters"],
                     "cpu_ms": f["cpu_ms_per_image"], "seconds": f["seconds"], "epochs": f["schedule"]["epochs"],
                     "train_images": f["schedule"].get("train_images", 0),
                     "constant_blocks": gates_below(card, CONSTANT_SPREAD),
                     "near_constant_blocks": f.get("near_constant_blocks", near_constant_blocks(card)),
                     "unseen_accuracy": f.get("unseen_accuracy"),
                     "paired_timing": f.get("cpu_timing") == PAIRED_TIMING})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def gates_below(card: dict, spread: float) -> list[str]:
    """Return the SE blocks whose s varied between reference images (std, mean over channels: the card's `spread`)
    by less than `spread`."""
    return [r["block"] for r in (card.get("evaluation") or {}).get("excitation") or []
            if r.get("spread") is not None and r["spread"] < spread]


def near_constant_blocks(card: dict) -> list[str]:
    """Return the card's near-constant gates: `sevis check`'s criterion (spread < NEAR_CONSTANT_SPREAD, through
    sevis.analysis.reports.near_constant_blocks), a fixed scale rather than a function of the input."""
    from sevis.analysis.reports import near_constant_blocks as from_rows
    return from_rows((card.get("evaluation") or {}).get("excitation") or [])


def paired_difference(se: pd.DataFrame, plain: pd.DataFrame, column: str) -> dict:
    """Return SE − plain of `column` (accuracies, 0-1) over the seeds both have a value for, in points: the means of
    each (%), the mean difference and its paired bootstrap 95% interval (sevis.analysis.intervals; None with fewer
    than MIN_PAIRS pairs), the verdict, the number of pairs and their seeds."""
    a = se.dropna(subset=[column]).set_index("seed")[column]
    b = plain.dropna(subset=[column]).set_index("seed")[column]
    seeds = sorted(set(a.index) & set(b.index))
    iv = paired_bootstrap([100 * float(a[k]) for k in seeds], [100 * float(b[k]) for k in seeds])

    def r(v):
        return None if v is None else round(v, 2)
    return {"pairs": iv.pairs, "seeds": [int(k) for k in seeds],
            "se": r(100 * float(a[seeds].mean())) if seeds else None,
            "plain": r(100 * float(b[seeds].mean())) if seeds else None,
            "delta": r(iv.mean), "low": r(iv.low), "high": r(iv.high), "verdict": iv.verdict}


def architecture_table(table: pd.DataFrame) -> pd.DataFrame:
    """Return one row per architecture with both SE and plain trained. On each test set (the in-context test split;
    `unseen_`: the unseen-background set) over the seeds trained for both (seed k of SE paired with seed k of plain):
    the accuracy of each (mean, %), SE − plain (points) with its paired bootstrap 95% interval (`_low`, `_high`;
    None with fewer than MIN_PAIRS pairs), the verdict ("higher", "lower", "no difference shown" when the interval
    spans 0, "too few seeds") and the pairs. Then parameters, SE's extra parameters (% of plain), CPU ms per image of
    each and the time SE adds (%), and the paper's row (top-1 error of each, its change; None where the sheet has
    none)."""
    rows = []
    for family in dict.fromkeys(FAMILY_RUNS[n]["family"] for n in FAMILY_RUNS):
        se, plain = table[(table["family"] == family) & table["se"]], table[(table["family"] == family) & ~table["se"]]
        if se.empty or plain.empty:
            continue
        test, unseen = (paired_difference(se, plain, c) for c in ("test_accuracy", "unseen_accuracy"))
        # CPU time from the runs timed against their twin in alternating rounds where there are such (a run timed
        # alone, on a busy machine, is not comparable), else from every run
        se_ms, plain_ms = (float((g[g["paired_timing"]] if g["paired_timing"].any() else g)["cpu_ms"].median())
                           for g in (se, plain))
        paper = PAPER_ROWS.get(family, {})
        p_se, p_plain = paper.get("se_top1"), paper.get("plain_top1")
        rows.append({
            "family": family, "se_model": f"se-{family}", "plain_model": family,
            "pairs": test["pairs"], "seeds": test["seeds"],
            "se_accuracy": test["se"], "plain_accuracy": test["plain"], "delta": test["delta"],
            "delta_low": test["low"], "delta_high": test["high"], "verdict": test["verdict"],
            "unseen_pairs": unseen["pairs"], "se_unseen": unseen["se"], "plain_unseen": unseen["plain"],
            "unseen_delta": unseen["delta"], "unseen_low": unseen["low"], "unseen_high": unseen["high"],
            "unseen_verdict": unseen["verdict"],
            "se_parameters": int(se["parameters"].iloc[0]), "plain_parameters": int(plain["parameters"].iloc[0]),
            "se_extra": round(100 * float(se["se_parameters"].iloc[0]) / float(plain["parameters"].iloc[0]), 1),
            "se_cpu_ms": round(se_ms, 3), "plain_cpu_ms": round(plain_ms, 3),
            "time_change": round(100 * (se_ms / plain_ms - 1), 1),
            "paper": paper.get("row", ""), "paper_se_top1_err": p_se, "paper_plain_top1_err": p_plain,
            "paper_delta": None if p_se is None or p_plain is None else round(p_plain - p_se, 2),
        })
    return pd.DataFrame(rows)


def write_summary(out_dir: str | Path | None = None) -> Path:
    """Write summary.json (the runs and the per-architecture table) beside the weights; return its path."""
    out_dir = Path(out_dir or family_dir())
    table = summary(out_dir)
    doc = {"schedule": FAMILY_SCHEDULE, "runs": json.loads(table.to_json(orient="records")),
           "architectures": json.loads(architecture_table(table).to_json(orient="records"))}
    path = out_dir / "summary.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path

