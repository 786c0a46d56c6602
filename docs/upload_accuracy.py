"""Accuracy through the upload path on held-out garments: python docs/upload_accuracy.py [--model SPEC ...] [--n N]

With --domain it prints instead how often the domain verdict flags held-out garments at each size (0.6-1.4 × 28 px,
in context, on the reference set's and on the model's training backgrounds) and each kind of non-garment
(sevis.data.outofdomain), for each model's verdict (sevis.analysis.domain_rates).

Each held-out test garment (sevis.data.heldout: none is in the reference set) is rendered as a user might send it,
encoded as PNG and sent through open_image → the model's preprocess → the model, exactly as the app and
`sevis predict` do. The first row feeds the in-context tensors straight to the model, as in training, for scale.
Prints a Markdown table (one column per model); --out also writes it to a file. --unseen adds a row: the 2,000
held-out garments on backgrounds the model's training recipe never used (sevis.data.unseen_backgrounds, the set its
card's background family calls for), through the same upload path, and a line per model with the kinds.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sevis.data.heldout import CONDITIONS, _in_context, heldout_split, render, upload_accuracy  # noqa: E402
from sevis.data.preprocess import grayscale_transform  # noqa: E402
from sevis.models.zoo import load_model  # noqa: E402
from sevis.train.trainer import normalise  # noqa: E402


@torch.inference_mode()
def tensor_accuracy(loaded, garments) -> float:
    """Return the accuracy on the garments in context on 36 px canvases fed as tensors, as in training."""
    mean, std = loaded.normalisation
    x = normalise(torch.from_numpy(_in_context(garments.images, 36, 1.0, 19_000)), mean, std)
    pred = torch.cat([loaded.model(x[i:i + 250]).argmax(1) for i in range(0, len(x), 250)]).numpy()
    return float((pred == garments.labels).mean())


def _share(v: float) -> str:
    return "–" if v != v else f"{v:.1%}"  # NaN: the set is empty here (e.g. scikit-image is not installed)


def domain_table(specs: list[str], garments, out: str | None) -> int:
    """Print (and write to `out`) the domain verdict's flag rates per condition, one column per model."""
    from sevis.analysis.domain_rates import (
        SCALES,
        TRAINING_BACKGROUND_SCALES,
        flag_rates,
        garments_on_training_backgrounds,
        scaled_garments,
    )
    from sevis.data.outofdomain import KINDS, render_kind
    kinds = {f"{kind}: {label}": render_kind(kind) for kind, label in KINDS.items()}
    columns: dict[str, dict[str, float]] = {}
    names: list[str] = []
    for spec in specs:
        loaded = load_model(spec)
        sets = {f"held-out garments at {s:g}× size, reference-set backgrounds": scaled_garments(garments.images, s)
                for s in SCALES}
        sets.update({f"held-out garments at {s:g}× size, the model's training backgrounds":
                     garments_on_training_backgrounds(loaded, garments.images, s) for s in TRAINING_BACKGROUND_SCALES})
        sets[CONDITIONS["black-112"]] = render("black-112", garments)
        sets.update(kinds)
        columns[spec] = flag_rates(loaded, sets)
        names += [n for n in sets if n not in names]
        print(f"{spec} done", file=sys.stderr, flush=True)
    lines = [f"Share of each set flagged out of domain ({len(garments):,} held-out garments per size; the "
             f"non-garment sets' sizes: " + ", ".join(f"{k} {len(v)}" for k, v in zip(KINDS, kinds.values())) + ").",
             "", "| images | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(_share(c.get(name, float("nan"))) for c in columns.values()) + " |"
              for name in names]
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        Path(out).write_text(text)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", default=["embedded"], help="model specs (default: embedded)")
    p.add_argument("--n", type=int, default=1000, help="held-out garments per condition (default 1000)")
    p.add_argument("--legacy", action="store_true",
                   help="also each in-context model with the former upload path (fit to 28 px, centre on black)")
    p.add_argument("--unseen", action="store_true",
                   help="also the held-out backgrounds of each model's recipe (2,000 images), through the upload path")
    p.add_argument("--domain", action="store_true", help="the domain verdict's flag rates instead of accuracy")
    p.add_argument("--out", help="also write the Markdown table here")
    args = p.parse_args(argv)
    garments = heldout_split(args.n)
    if args.domain:
        return domain_table(args.model, garments, args.out)
    models = {spec: load_model(spec) for spec in args.model}
    if args.legacy:
        for spec in args.model:
            m = models[spec]
            if m.data_variant == "context":
                mean, std = m.normalisation
                former = grayscale_transform(28, [mean], [std], canvas=36)
                models[f"{spec} (former path)"] = replace(m, preprocess=former)
    rows = {"as in training (tensors, no upload path)": {s: tensor_accuracy(m, garments) for s, m in models.items()}}
    for key, label in CONDITIONS.items():
        rows[label] = {s: upload_accuracy(m, key, garments) for s, m in models.items()}
        print(f"{label}: " + ", ".join(f"{s} {v:.1%}" for s, v in rows[label].items()), file=sys.stderr, flush=True)
    by_kind = {}
    if args.unseen:
        from sevis.data.unseen_backgrounds import UNSEEN_IMAGES, unseen_upload_accuracy
        label = f"backgrounds the model's recipe never used ({UNSEEN_IMAGES:,} images)"
        measured = {s: unseen_upload_accuracy(m) for s, m in models.items()}
        rows[label] = {s: acc for s, (acc, _) in measured.items()}
        by_kind = {s: kinds for s, (_, kinds) in measured.items()}
        print(f"{label}: " + ", ".join(f"{s} {v:.1%}" for s, v in rows[label].items()), file=sys.stderr, flush=True)
    lines = [f"Held-out Fashion-MNIST test garments ({len(garments):,} per row), through the upload path.", "",
             "| upload | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    lines += [f"| {label} | " + " | ".join(f"{v:.1%}" for v in accs.values()) + " |" for label, accs in rows.items()]
    for s, kinds in by_kind.items():
        lines.append(f"\n{s} on its held-out backgrounds: " + ", ".join(f"{k} {v:.1%}" for k, v in kinds.items()) + ".")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
