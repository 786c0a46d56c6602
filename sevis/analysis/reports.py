"""What the CLI prints and writes: excitation summaries, excitation files, evaluation reports.

Pure functions over InferenceResult / ExcitationStats, so the CLI stays glue and the app can reuse them.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from sevis.core.recorder import SEBlock
from sevis.errors import DatasetError, ExportError, ModelError
from sevis.models.checkpoint import card_path, read_card, write_card

# pandas (and sevis.core.statistics, which imports it) load when first needed: `sevis predict` skips them
if TYPE_CHECKING:
    import pandas as pd


EXCITATION_FORMATS = (".csv", ".json", ".npz")


# ------------------------------------------------------------------------------------------ predict
def excitation_summary(excitations: Mapping[str, np.ndarray]) -> list[dict]:
    """Return one row (a dict) per block for one image's excitations: block, channels, mean, min, max of s.

    Plain dicts, not a DataFrame: `sevis predict` then never imports pandas."""
    rows = []
    for name, s in excitations.items():
        s = np.asarray(s, np.float64).ravel()
        rows.append({"block": name, "channels": s.size,
                     "mean": float(s.mean()) if s.size else math.nan,
                     "min": float(s.min()) if s.size else math.nan,
                     "max": float(s.max()) if s.size else math.nan})
    return rows


def prediction_records(loaded, paths: Sequence[str], result, k: int) -> list[dict]:
    """Return `sevis predict --json`'s records for one batch: per image its name, top-k classes and the domain
    verdict (sevis.analysis.domain; None for models without a reference set)."""
    from sevis.analysis.domain import domain_verdicts
    from sevis.data.preprocess import open_image
    verdicts = domain_verdicts(loaded, [open_image(p) for p in paths]) or [None] * len(paths)
    return [{"name": p, "top": [{"class": c, "probability": round(q, 6)} for c, q in top],
             "domain": v.to_dict() if v is not None else None}
            for p, top, v in zip(paths, result.topk(k), verdicts)]


def format_prediction(image: str, top: Sequence[tuple[str, float]], summary: Sequence[Mapping]) -> str:
    """Return the text block `sevis predict` prints for one image."""
    lines = [image]
    width = max([len(c) for c, _ in top] + [5])
    for cls, p in top:
        lines.append(f"  {cls:<{width}}  {100 * p:6.2f}%")
    if len(summary):
        bw = max(len(row["block"]) for row in summary)
        lines.append(f"  {'excitation s':<{bw}}  {'mean':>6} {'min':>6} {'max':>6}   (C)")
        for row in summary:
            lines.append(f"  {row['block']:<{bw}}  {row['mean']:6.3f} {row['min']:6.3f} {row['max']:6.3f}   "
                         f"({row['channels']})")
    else:
        lines.append("  (this model has no SE blocks)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ excite
@dataclass
class ExcitationRecords:
    """Per-image, per-block excitation vectors of a set of images."""

    images: list[str]
    excitations: "OrderedDict[str, np.ndarray]"  # block -> N×C
    blocks: list[SEBlock] = field(default_factory=list)
    model: str = ""
    predictions: list[str] = field(default_factory=list)

    def long_frame(self) -> pd.DataFrame:
        """Return the long format: one row per (image, block, channel) with s."""
        import pandas as pd
        frames = []
        for name, s in self.excitations.items():
            n, c = s.shape
            frames.append(pd.DataFrame({
                "image": np.repeat(np.asarray(self.images, dtype=object), c),
                "block": name,
                "channel": np.tile(np.arange(c), n),
                "s": s.reshape(-1).astype(np.float64),
            }))
        if not frames:
            return pd.DataFrame(columns=["image", "block", "channel", "s"])
        df = pd.concat(frames, ignore_index=True)
        order = {img: i for i, img in enumerate(dict.fromkeys(self.images))}
        df["_img"] = df["image"].map(order)
        return df.sort_values(["_img"], kind="stable").drop(columns="_img").reset_index(drop=True)


def write_excitations(records: ExcitationRecords, out: str | os.PathLike) -> Path:
    """Write `records` as .csv (long: image,block,channel,s), .json or .npz, atomically (a temporary file beside
    it, then one rename: a run stopped half-way leaves the previous file whole); return the path."""
    from sevis.files import atomic_path
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXCITATION_FORMATS:
        raise ExportError(f"cannot write excitations to {out.name}: use a .csv, .json or .npz file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            _write_records(records, tmp, suffix)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    return out


def _write_records(records: ExcitationRecords, out: Path, suffix: str) -> None:
    """Write `records` to `out` in the format `suffix` names."""
    if suffix == ".csv":
        records.long_frame().to_csv(out, index=False, float_format="%.8g", quoting=csv.QUOTE_MINIMAL)
    elif suffix == ".json":
        doc = {
            "model": records.model,
            "blocks": [{"name": b.name, "stage": b.stage, "channels": b.channels, "path": b.path,
                        "kind": b.kind} for b in records.blocks],
            "images": [
                {"image": img,
                 **({"prediction": records.predictions[i]} if records.predictions else {}),
                 "excitations": {name: [float(v) for v in s[i]] for name, s in records.excitations.items()}}
                for i, img in enumerate(records.images)
            ],
        }
        out.write_text(json.dumps(doc, indent=1) + "\n")
    else:
        arrays = {f"s/{name}": np.asarray(s, np.float32) for name, s in records.excitations.items()}
        with open(out, "wb") as fh:  # a file object: numpy would add .npz to the temporary file's name
            np.savez_compressed(fh, images=np.asarray(records.images, dtype=str),
                                blocks=np.asarray(list(records.excitations), dtype=str),
                                model=np.asarray(records.model), **arrays)


def read_excitations(path: str | os.PathLike) -> ExcitationRecords:
    """Read a file written by `write_excitations` back (for checks and for the app)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd
        df = pd.read_csv(path)
        images = list(dict.fromkeys(df["image"].astype(str)))
        exc: OrderedDict[str, np.ndarray] = OrderedDict()
        for name in dict.fromkeys(df["block"]):
            part = df[df["block"] == name]
            c = int(part["channel"].max()) + 1
            arr = np.full((len(images), c), np.nan)
            rows = part["image"].astype(str).map({img: i for i, img in enumerate(images)}).to_numpy()
            arr[rows, part["channel"].to_numpy()] = part["s"].to_numpy()
            exc[str(name)] = arr
        return ExcitationRecords(images, exc)
    if suffix == ".json":
        doc = json.loads(path.read_text())
        images = [d["image"] for d in doc["images"]]
        names = [b["name"] for b in doc["blocks"]]
        exc = OrderedDict((n, np.array([d["excitations"][n] for d in doc["images"]],
                                       np.float64).reshape(len(images), -1))
                          for n in names)
        preds = [d["prediction"] for d in doc["images"] if "prediction" in d]
        return ExcitationRecords(images, exc, model=doc.get("model", ""), predictions=preds)
    if suffix == ".npz":
        with np.load(path) as data:
            names = [str(n) for n in data["blocks"]]
            return ExcitationRecords([str(i) for i in data["images"]],
                                     OrderedDict((n, data[f"s/{n}"]) for n in names), model=str(data["model"]))
    raise ExportError(f"cannot read excitations from {path.name}: use a .csv, .json or .npz file")


# ------------------------------------------------------------------------------------------ evaluate
def _plain(v):
    """Return `v` as a JSON-friendly Python value (numpy scalars unwrapped, NaN → None, floats rounded)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else round(v, 6)
    return v


def evaluation_split(name: str, variant: str = "centred"):
    """Return the Fashion-MNIST split `name` (train, test, or reference: the bundled 100 images per class) as a
    model trained on data `variant` (centred or context) sees it."""
    from sevis.data.fashion_mnist import load_reference_set, load_split
    if name == "reference":
        return load_reference_set(variant=variant)
    if name in ("train", "test"):
        return load_split(name, variant)
    raise DatasetError(f"unknown split {name!r}; choose test, train or reference")


def evaluate(loaded, split_name: str = "test", batch_size: int = 250, control: bool = True, knockout: bool = True,
             progress: Callable[[int], None] | None = None):
    """Run a Fashion-MNIST model over a split; return its ModelMeasures (statistics, accuracy, the untrained
    control's statistics with BatchNorm recalibrated on the reference set, knock-out sweeps, measures, paper
    table); `progress` counts images over evaluation_passes(control, knockout) passes."""
    from sevis.analysis.inference import split_batches
    from sevis.analysis.measures import measure_model
    if loaded.dataset != "fashion-mnist":
        raise ModelError(f"{loaded.spec} is not a Fashion-MNIST model: `sevis evaluate` measures the embedded "
                         "models and sevis checkpoints trained on Fashion-MNIST")
    split = evaluation_split(split_name, loaded.data_variant)
    batches = list(split_batches(loaded, split, batch_size))
    calibration = list(split_batches(loaded, loaded.reference_set(), batch_size)) if control else None
    return measure_model(loaded, batches, calibration, control=control, knockout=knockout, progress=progress)


def evaluation_passes(control: bool, knockout: bool) -> int:
    """Return how many times `evaluate` reports a full split to its progress callback."""
    from sevis.analysis.measures import CONTROL_SEEDS
    return 1 + len(CONTROL_SEEDS) * int(control) + 2 * int(knockout)


def paper_from_rows(rows: Sequence[Mapping], paper):
    """Return the paper-vs-model table computed from the card's own (rounded) rows, so that a card's table follows
    from the measures it stores (a knock-out cost of 0.75 points must not read 0.7 from 0.7499999); `paper` where
    the rows hold no knock-out sweeps."""
    import pandas as pd

    from sevis.analysis.paper import paper_vs_model
    if not rows or not {"knockout_identity", "knockout_mean"} <= set(rows[0]):
        return paper
    m = pd.DataFrame(list(rows))

    def sweep(column: str) -> pd.DataFrame:
        return pd.DataFrame({"block": ["none"] + list(m["block"]), "change": [0.0] + list(m[column])})
    return paper_vs_model(m, sweep("knockout_identity"), sweep("knockout_mean"))


def evaluation_report(mm, classes: Sequence[str], split: str, command: str) -> dict:
    """Return the "evaluation" section of a model card: accuracy, per-class accuracy, the measures per block,
    and the paper-vs-model table."""
    table = mm.measures
    per_class = np.asarray(mm.figures["per_class_accuracy"], np.float64)
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]
    report = {
        "command": command,
        "split": split,
        "images": int(mm.figures["images"]),
        "accuracy": round(float(mm.figures["accuracy"]), 6),
        "per_class_accuracy": {c: (None if math.isnan(a) else round(float(a), 6)) for c, a in zip(classes, per_class)},
        "excitation": rows,
        "paper_vs_model": paper_from_rows(rows, mm.paper).to_dict("records"),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if len(table) and table["stage"].notna().all():
        last = table[table["stage"] == table["stage"].max()]
        report["last_stage_spread"] = round(float(last["spread"].mean()), 6)
    report["near_constant_blocks"] = near_constant_blocks(rows)
    return report


def near_constant_blocks(rows: Sequence[Mapping]) -> list[str]:
    """Return the blocks of a card's per-block rows whose gate is near-constant by `sevis check`'s definition: s
    varies between images by less than NEAR_CONSTANT_SPREAD (std over images, mean over channels: the rows'
    `spread`), a fixed scale rather than a function of the input."""
    from sevis.analysis.check import NEAR_CONSTANT_SPREAD
    return [str(r["block"]) for r in rows if r.get("spread") is not None and r["spread"] < NEAR_CONSTANT_SPREAD]


def refresh_near_constant_blocks(weights: str | os.PathLike) -> list[str] | None:
    """Rewrite `evaluation.near_constant_blocks` in the model card beside `weights` from the card's own per-block
    rows (nothing else changes); return the list, or None when the card has no evaluation to read it from."""
    card = read_card(weights)
    evaluation = card.get("evaluation")
    if not isinstance(evaluation, dict) or "excitation" not in evaluation:
        return None
    evaluation["near_constant_blocks"] = near_constant_blocks(evaluation["excitation"] or [])
    write_card(weights, card)
    return evaluation["near_constant_blocks"]


_COLUMNS = [("C", "channels", "5d"), ("mean", "mean_s", "6.3f"), ("spread", "spread", "7.4f"),
            ("share", "class_specificity", "6.3f"), ("untr.", "control_class_specificity", "6.3f"),
            ("learned", "learned_specificity", "7.3f"), ("decorr", "decorrelation", "6.3f"),
            ("betw.", "between_class_spread", "6.3f"), ("sat.", "saturation", "5.2f"),
            ("ko s=1", "knockout_identity", "7.2%"), ("ko mean", "knockout_mean", "7.2%")]


def format_evaluation(report: Mapping) -> str:
    """Return the text `sevis evaluate` prints."""
    lines = [f"accuracy: {100 * report['accuracy']:.2f}% ({report['images']} {report['split']} images)", "",
             "per-class accuracy:"]
    width = max(len(c) for c in report["per_class_accuracy"]) if report["per_class_accuracy"] else 5
    for cls, acc in report["per_class_accuracy"].items():
        lines.append(f"  {cls:<{width}}  " + ("   n/a" if acc is None else f"{100 * acc:6.2f}%"))
    rows = report["excitation"]
    if not rows:
        return "\n".join(lines + ["", "(this model has no SE blocks)"])
    cols = [(h, k, f) for h, k, f in _COLUMNS if k in rows[0]]
    lines += ["", "per SE block (share: between-class share of the variance of s; untr.: the same for the untrained "
              "control; decorr: 1 − mean r of class-mean profiles; betw.: std of class means; sat.: share of channels "
              "with mean s > 0.9; ko: accuracy change when s := 1 or s := its mean):"]
    bw = max(len(r["block"]) for r in rows)

    def cell(v, fmt: str) -> str:
        w = int("".join(ch for ch in fmt.split(".")[0] if ch.isdigit()) or 6)
        return "n/a".rjust(w) if v is None else format(v, fmt)

    lines.append(f"  {'block':<{bw}} " + " ".join(h.rjust(int(''.join(c for c in f.split('.')[0] if c.isdigit())))
                                                  for h, _, f in cols))
    for r in rows:
        lines.append(f"  {r['block']:<{bw}} " + " ".join(cell(r[k], f) for _, k, f in cols))
    if "near_constant_blocks" in report:
        from sevis.analysis.check import NEAR_CONSTANT_SPREAD
        fixed = report["near_constant_blocks"]
        lines += ["", f"near-constant gates (s varies between images by less than {NEAR_CONSTANT_SPREAD:g}, as in "
                  "`sevis check`: a fixed scale, not a function of the input): " + (", ".join(fixed) or "none") + "."]
    if report.get("paper_vs_model"):
        lines += ["", "paper vs this model (Section 7.2):"]
        for r in report["paper_vs_model"]:
            lines.append(f"  [{r['shows']:>3}] {r['finding']} ({r['blocks']}): {r['this_model']}")
    return "\n".join(lines)


def write_evaluation_to_card(weights: str | os.PathLike, report: Mapping) -> Path:
    """Store `report` under "evaluation" in the model card beside `weights`; return the card's path."""
    weights = Path(weights)
    if not weights.exists():
        raise ModelError(f"cannot write the evaluation into a model card: {weights} does not exist")
    card = read_card(weights)
    card["evaluation"] = dict(report)
    try:
        return write_card(weights, card)
    except OSError as e:
        raise ModelError(f"cannot write model card {card_path(weights)}: {e.strerror or e}") from None
