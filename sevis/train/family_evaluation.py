"""What the architecture runs' cards hold beyond training (issue 25), filled into finished runs by `sevis family`
before it trains more (or by `sevis family --evaluate-only`), resumable: each card is written as soon as its run is
evaluated, and a card that has an entry is skipped.

- `unseen_accuracy`: accuracy on a second test distribution, held-out garments on backgrounds the training recipe
  never used (sevis.data.unseen_backgrounds; 2,000 images, one fixed seed, the same for every run), overall and per
  background kind;
- `near_constant_blocks`: the SE blocks whose s hardly depends on the image (`sevis check`'s NEAR_CONSTANT_SPREAD on
  the spread the card's reference-set evaluation measured);
- `what_se_adds` (every SE run whose plain twin of the same seed is trained): per SE block the class specificity of
  s, of its input z and of the twin's pooled features at the same place (one pass of each model over the bundled
  reference set: seconds), and for runs of CONTROL_RUN_SEEDS also s − z beside the untrained control's
  (sevis.analysis.squeeze.what_se_adds). The control runs a random network three times, so only seed 0 (the run the
  Architectures view opens on) gets it; other seeds' rows hold None there. Measured niced beside two training runs on
  2 cores: 2.5 s (SE-VGG) to 8 s (SE-Inception) per run without the control, 12-24 s with it. The seeds together give
  s − z and s − twin with paired intervals (sevis.analysis.squeeze.adds_over_seeds).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from sevis.data.fashion_mnist import Split
from sevis.data.unseen_backgrounds import accuracy_by_kind, recipe_of, unseen_split, unseen_test_record
from sevis.models.checkpoint import read_card, write_card
from sevis.names import FAMILY_RUNS, FAMILY_SEEDS, family_dir
from sevis.train.family_grid import is_finished, near_constant_blocks, weights_file, write_summary
from sevis.train.runs import claim_lock

UNSEEN_TEST = unseen_test_record("smooth")  # a card holding another
WHAT_SE_ADDS_SEEDS = FAMILY_SEEDS  # ... test set is evaluated again; what SE adds: every seed's SE run, but
CONTROL_RUN_SEEDS = (0,)  # the untrained control (three passes of a random network) only for these seeds' runs


def predictions(model, split: Split, batch_size: int = 500) -> np.ndarray:
    """Return the class `model` predicts for every image of an in-context uint8 split (normalised as in training)."""
    import torch

    from sevis.train.trainer import data_normalisation, normalise
    mean, std = data_normalisation("context")
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(split), batch_size):
            out.append(model(normalise(torch.from_numpy(split.images[i:i + batch_size]), mean, std)).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def unseen_record(loaded, test: tuple[Split, list[str]] | None = None) -> dict:
    """Return the card entry of a loaded run on the unseen-background test set: accuracy, per kind, what the set is."""
    recipe = recipe_of(loaded.card)  # `test` is the smooth recipe's set, shared by the runs of one pass
    split, kinds = test if test is not None and recipe == "smooth" else unseen_split(recipe=recipe)
    pred = predictions(loaded.model, split)
    return {"unseen_accuracy": round(float((pred == split.labels).mean()), 6),
            "unseen_accuracy_by_kind": {k: round(v, 6) for k, v in accuracy_by_kind(pred, split.labels, kinds).items()},
            "unseen_test": unseen_test_record(recipe)}


def _json(v):
    """Return `v` as a card value: numpy scalars unwrapped, floats rounded to 6 digits, NaN as None."""
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 6)
    return v


def what_se_adds_rows(name: str, out_dir: str | Path | None = None, control: bool | None = None) -> list[dict]:
    """Return what SE adds in SE run `name` (sevis.analysis.squeeze.what_se_adds over the bundled reference set, with
    the plain twin of the same seed) as card rows; with the untrained control when `control` (default: the run's seed
    is one of CONTROL_RUN_SEEDS), else its columns None."""
    from sevis.analysis.measures import CONTROL_SEEDS
    from sevis.analysis.reference import reference_batches
    from sevis.analysis.squeeze import s_and_z_statistics, what_se_adds
    from sevis.models.zoo import load_checkpoint
    control = FAMILY_RUNS[name]["seed"] in CONTROL_RUN_SEEDS if control is None else control
    loaded = load_checkpoint(weights_file(name, out_dir))
    twin = load_checkpoint(weights_file(twin_of(name), out_dir))
    batches, _ = reference_batches(loaded)
    s_stats, z_stats = s_and_z_statistics(loaded, batches)
    frame = what_se_adds(loaded, s_stats, batches, twin, CONTROL_SEEDS if control else (), z_stats)
    return [{k: _json(v) for k, v in row.items()} for row in frame.to_dict("records")]


def twin_of(name: str) -> str:
    """Return the plain run of the same seed as SE run `name` (se-vgg-seed1 -> vgg-seed1)."""
    return name.removeprefix("se-")


def wants_what_se_adds(name: str, out_dir: str | Path | None = None) -> bool:
    """Return whether run `name` should get what SE adds: an SE run of WHAT_SE_ADDS_SEEDS with its twin trained (a
    card that has the entry keeps it: one written before CONTROL_RUN_SEEDS existed holds the control too)."""
    r = FAMILY_RUNS[name]
    return bool(r["se"] and r["seed"] in WHAT_SE_ADDS_SEEDS and is_finished(twin_of(name), out_dir))


def missing_entries(name: str, out_dir: str | Path | None = None) -> list[str]:
    """Return which entries finished run `name`'s card lacks ("unseen", "near_constant", "what_se_adds")."""
    card = read_card(weights_file(name, out_dir))
    f = card.get("family") or {}
    out = []
    if f.get("unseen_test") != unseen_test_record(recipe_of(card)) or f.get("unseen_accuracy") is None:
        out.append("unseen")
    if "near_constant_blocks" not in f:
        out.append("near_constant")
    if "what_se_adds" not in f and wants_what_se_adds(name, out_dir):
        out.append("what_se_adds")
    return out


def evaluate_run(name: str, out_dir: str | Path | None = None, entries: Sequence[str] | None = None,
                 test: tuple[Split, list[str]] | None = None) -> dict:
    """Fill `entries` (default: every missing one) into finished run `name`'s card and write it; return what was
    added."""
    from sevis.models.zoo import load_checkpoint
    entries = missing_entries(name, out_dir) if entries is None else list(entries)
    added: dict = {}
    path = weights_file(name, out_dir)
    if "unseen" in entries:
        added.update(unseen_record(load_checkpoint(path), test))
    if "near_constant" in entries:
        added["near_constant_blocks"] = near_constant_blocks(read_card(path))
    if "what_se_adds" in entries:
        added["what_se_adds"] = what_se_adds_rows(name, out_dir)
    if added:
        card = read_card(path)  # read again: the card is written by this process only once the run is finished
        card["family"].update(added)
        write_card(path, card)
    return added


def evaluate_finished(names: Sequence[str] | None = None, out_dir: str | Path | None = None,
                      log: Callable[[str], None] = print, what_se_adds: bool = True) -> list[str]:
    """Fill the missing entries into every finished run of `names` (default all), the cheap ones (unseen accuracy,
    near-constant gates) for all runs first, then what SE adds; return the runs evaluated. One process at a time
    (a lock file); another one finds the lock and skips."""
    names = [n for n in (names or FAMILY_RUNS) if is_finished(n, out_dir)]
    lock = Path(out_dir or family_dir()) / "evaluate.lock"
    owner = claim_lock(lock)
    if owner is not None:
        log(f"process {owner} is evaluating the finished runs: skipped")
        return []
    done: list[str] = []
    test = None
    try:
        for stage in (("unseen", "near_constant"), ("what_se_adds",) if what_se_adds else ()):
            for n in names:
                todo = [e for e in missing_entries(n, out_dir) if e in stage]
                if not todo:
                    continue
                if "unseen" in todo and test is None:
                    test = unseen_split()
                log(f"{n}: evaluating {', '.join(todo)}")
                added = evaluate_run(n, out_dir, todo, test)
                if "unseen_accuracy" in added:
                    log(f"{n}: accuracy on unseen backgrounds {added['unseen_accuracy']:.4f}")
                done.append(n)
        write_summary(out_dir)  # also rewrites a summary an older `sevis family` wrote without these entries
    finally:
        lock.unlink(missing_ok=True)
    return list(dict.fromkeys(done))


def what_se_adds_frame(names: Sequence[str], out_dir: str | Path | None = None) -> pd.DataFrame:
    """Return what SE adds in the runs of `names` whose card holds it: one row per SE block with the run and
    sevis.analysis.squeeze.SQUEEZE_COLUMNS (`adds` True, False or None)."""
    from sevis.analysis.squeeze import SQUEEZE_COLUMNS
    frames = []
    for name in names:
        rows = (read_card(weights_file(name, out_dir)).get("family") or {}).get("what_se_adds")
        if rows:
            frame = pd.DataFrame(rows, columns=SQUEEZE_COLUMNS).astype({"adds": object})
            frame["adds"] = [None if a is None or a != a else bool(a) for a in frame["adds"]]
            frames.append(frame.assign(run=name))
    cols = ["run"] + SQUEEZE_COLUMNS
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
