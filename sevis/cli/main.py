"""The `sevis` command line: predict, excite, evaluate, stats, train, models (and export, app).

Glue only: each `_cmd_*` parses nothing itself and calls into the package. Every SevisError becomes one
line `sevis: error: ...` and exit code 2. To add a subcommand, write `_cmd_<name>(args) -> int` and an
`_add_<name>(sub)` that registers its parser, and list it in SUBCOMMANDS.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from sevis.cli.app import add_app
from sevis.cli.args import batch_size as _batch_size
from sevis.cli.args import check_arch as _check_arch
from sevis.cli.args import command_line as _command_line
from sevis.cli.args import load_from_args as _load
from sevis.cli.args import nonnegative_int as _nonnegative_int
from sevis.cli.args import out_path as _out_path
from sevis.cli.args import positive_int as _positive_int
from sevis.cli.args import progress_bar as _progress
from sevis.cli.export import EXPORT_FORMATS, EXPORT_VIEWS, add_export  # noqa: F401 (EXPORT_*: tests check them)
from sevis.cli.family import add_check, add_family
from sevis.cli.prepare import add_prepare
from sevis.cli.serve import add_serve
from sevis.errors import SevisError
from sevis.names import PRETRAINED_DIR  # noqa: E402

IMAGE_BATCH = 32  # images per forward pass in predict/excite
BACKGROUND_FAMILIES = ("smooth", "rich")  # sevis.data.context's, spelled out: the parser is built without torch


def _run_images(args: argparse.Namespace, desc: str) -> Iterator[tuple[object, list[str], object]]:
    """Load the model, decode every image (failing early on a bad one), then yield (model, paths, result)
    per batch of IMAGE_BATCH images."""
    from sevis.analysis.inference import predict_images
    from sevis.data.preprocess import open_image

    loaded = _load(args)
    paths = [str(p) for p in args.images]
    with _progress(len(paths), f"{desc}: reading images") as bar:
        images = []
        for p in paths:
            images.append(open_image(p))
            bar.update(1)
    with _progress(len(paths), desc) as bar:
        for i in range(0, len(paths), IMAGE_BATCH):
            chunk = images[i:i + IMAGE_BATCH]
            result = predict_images(loaded, chunk)
            bar.update(len(chunk))
            yield loaded, paths[i:i + IMAGE_BATCH], result


def _cmd_train(args: argparse.Namespace) -> int:
    from sevis.models.checkpoint import save_checkpoint
    from sevis.train.trainer import TrainConfig, model_card, resume_path, train

    cfg = TrainConfig(arch=args.arch, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, se_weight_decay=args.se_weight_decay,
                      schedule=args.schedule, class_aware=args.class_aware, seed=args.seed,
                      device=args.device, threads=args.threads, train_images=args.train_images,
                      test_images=args.test_images, bn_images=args.bn_images, scale=tuple(args.scale),
                      snapshots=tuple(sorted(set(args.snapshots or ()))), backgrounds=args.backgrounds)
    out = Path(args.out) if args.out else PRETRAINED_DIR / f"{args.arch}.safetensors"
    resume = resume_path(out)
    model, history = train(cfg, log=lambda line: print(line, flush=True), checkpoint=resume)
    save_checkpoint(model, out, model_card(model, cfg, history, out.stem, _command_line(None)))
    resume.unlink(missing_ok=True)  # finished: the next run of this command starts afresh
    print(f"saved {out} and {out.with_suffix('.json').name}")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from sevis.names import ABLATIONS
    from sevis.train.ablations import ABLATION_SCHEDULE, ablate, status

    names = args.variants or list(ABLATIONS)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise SevisError(f"unknown ablation {unknown[0]!r}; known: {', '.join(ABLATIONS)}")
    if args.list:
        for n in names:
            print(f"  {n:<22} {status(n, args.out_dir):<28} {ABLATIONS[n]['change']}")
        return 0
    schedule = {k: v for k, v in (("epochs", args.epochs), ("train_images", args.train_images),
                                  ("test_images", args.test_images)) if v is not None}
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    print(f"ablations: {len(names)} variant(s), schedule {({**ABLATION_SCHEDULE, **schedule})}", flush=True)
    ablate(names, args.out_dir, log=lambda line: print(line, flush=True),
           evaluate_reference=not args.no_evaluate, threads=args.threads, **schedule)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from sevis.analysis.reports import excitation_summary, format_prediction, prediction_records

    if args.json:  # one JSON list: per image its name, top-k classes and the domain verdict
        import json
        print(json.dumps([r for b in _run_images(args, "predict") for r in prediction_records(*b, args.top)], indent=1))
        return 0
    first = True
    for _loaded, paths, result in _run_images(args, "predict"):
        for i, (path, top) in enumerate(zip(paths, result.topk(args.top))):
            if not first:
                print()
            first = False
            print(format_prediction(path, top, excitation_summary(result.excitations_of(i))))
    return 0


def _cmd_excite(args: argparse.Namespace) -> int:
    from collections import OrderedDict

    import numpy as np

    from sevis.analysis.reports import EXCITATION_FORMATS, ExcitationRecords, write_excitations
    from sevis.errors import ExportError

    if Path(args.out).suffix.lower() not in EXCITATION_FORMATS:  # before any expensive work
        raise ExportError(f"cannot write excitations to {Path(args.out).name}: use a .csv, .json or .npz file name")
    paths: list[str] = []
    chunks: "OrderedDict[str, list]" = OrderedDict()
    predictions: list[str] = []
    blocks, spec = [], args.model
    for loaded, batch_paths, result in _run_images(args, "excite"):
        blocks, spec = result.blocks, loaded.spec
        paths += batch_paths
        predictions += [top[0][0] for top in result.topk(1)]
        for name, s in result.excitations.items():
            chunks.setdefault(name, []).append(s.numpy())
    records = ExcitationRecords(paths, OrderedDict((n, np.concatenate(c)) for n, c in chunks.items()),
                                blocks=blocks, model=spec, predictions=predictions)
    out = write_excitations(records, args.out)
    print(f"wrote {out}: {len(paths)} image(s) × {len(records.excitations)} SE block(s)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from sevis.analysis.reports import (
        evaluate,
        evaluation_passes,
        evaluation_report,
        format_evaluation,
        write_evaluation_to_card,
    )
    from sevis.models.zoo import load_model, weights_path

    target = None
    if args.write_card:
        target = weights_path(args.model)
        if target is None:
            raise SevisError(f"--write-card needs a sevis weights file (embedded, embedded-plain or a "
                             f".safetensors path); {args.model} has no model card to write")
    _check_arch(args)
    loaded = load_model(args.model, arch=args.arch)
    split_size = {"test": 10_000, "train": 60_000, "reference": 1000}[args.split]
    control, knockout = not args.no_control, not args.no_knockout
    with _progress(split_size * evaluation_passes(control, knockout), f"evaluate {loaded.name} on {args.split}") as bar:
        mm = evaluate(loaded, args.split, args.batch_size, control=control, knockout=knockout, progress=bar.update)
    report = evaluation_report(mm, loaded.classes, args.split, _command_line(args.argv))
    print(format_evaluation(report))
    if target is not None:
        card = write_evaluation_to_card(target, report)
        print(f"wrote the evaluation into {card}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from sevis.names import list_se_models

    for source, specs in list_se_models().items():
        print(f"{source}:")
        for spec in specs:
            print(f"  {spec}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() != ".json":  # before any expensive work
        raise SevisError(f"--out {args.out}: statistics are written as JSON; name a .json file")
    from sevis.data.folders import folder_files
    folder_files(args.folder)  # a missing or empty folder fails now, before the model loads
    from sevis.analysis import stats as S

    loaded = _load(args)
    with _progress(0, f"stats {Path(args.folder).name}") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        try:
            t0 = time.perf_counter()
            result = S.folder_statistics(loaded, args.folder, batch_size=args.batch_size, workers=args.workers,
                                         device=args.device, progress=progress if S.is_main_process() else None)
            if S.is_main_process():
                out = S.write_stats_file(result, args.out)
                acc = result["accuracy"]
                print(f"wrote {out}: {result['images']} images, {len(result['classes'])} classes, "
                      f"{len(result['blocks'])} SE blocks in {time.perf_counter() - t0:.2f} s"
                      + (f"; accuracy {100 * acc:.2f}%" if acc is not None else "")
                      + (f"; {result['unreadable']} unreadable file(s) skipped, e.g. {result['first_errors'][0]}"
                         if result["unreadable"] and result["first_errors"] else ""))
        finally:
            S.finish()
    return 0


def _add_stats(sub) -> None:
    p = sub.add_parser("stats", help="per-class, per-block excitation statistics over a labelled folder, as JSON",
                       description="Statistics of s per class and SE block over a folder with one sub-folder per "
                                   "class. Runs unchanged under `torchrun --nproc-per-node N` (each process takes "
                                   "its own shard; the sums are all-reduced; rank 0 writes the file). "
                                   "`sevis export --folder FILE.json` reads the file instead of recomputing.")
    p.add_argument("--folder", required=True, metavar="DIR", help="labelled images: one sub-folder per class")
    p.add_argument("--model", default="embedded", help="model spec (see `sevis models`); default embedded")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card, e.g. timm:seresnet50")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of pretrained ones: timm/torchvision/sevis names, offline")
    p.add_argument("--out", required=True, type=_out_path, metavar="FILE.json", help="where to write the statistics")
    p.add_argument("--batch-size", type=_batch_size, default=64)
    p.add_argument("--workers", type=_nonnegative_int, default=2,
                   help="DataLoader worker processes decoding images, per process (0: decode in the main process)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: the GPU when there is one (NCCL between processes), else CPU (gloo)")
    p.set_defaults(func=_cmd_stats)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="top-k classes and a short excitation summary per SE block")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", default="embedded", help="model spec (see `sevis models`); default embedded")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card, e.g. timm:seresnet50")
    p.add_argument("--top", type=_positive_int, default=5, metavar="K", help="how many classes to show (default 5)")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of pretrained ones: timm/torchvision/sevis names, offline")
    p.add_argument("--json", action="store_true",
                   help="print JSON: per image its name, top classes and the domain verdict (in_domain, score, "
                        "percentile of the reference set; null for models without one)")
    p.set_defaults(func=_cmd_predict)


def _add_excite(sub) -> None:
    p = sub.add_parser("excite", help="write per-image, per-block excitation vectors s to a file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", default="embedded", help="model spec (see `sevis models`); default embedded")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card, e.g. timm:seresnet50")
    p.add_argument("--out", required=True, type=_out_path, metavar="FILE",
                   help=".csv (long format: image,block,channel,s), .json or .npz")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of pretrained ones: timm/torchvision/sevis names, offline")
    p.set_defaults(func=_cmd_excite)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and per-block excitation statistics on Fashion-MNIST")
    p.add_argument("--model", default="embedded", help="a Fashion-MNIST model: embedded, embedded-plain or a "
                                                       "sevis .safetensors file; default embedded")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card (sevis:<arch>)")
    p.add_argument("--split", choices=("test", "train", "reference"), default="test",
                   help="test (10k), train (60k) or the bundled reference set; default test")
    p.add_argument("--batch-size", type=_batch_size, default=250)
    p.add_argument("--no-control", action="store_true", help="skip the untrained control (faster)")
    p.add_argument("--no-knockout", action="store_true", help="skip the knock-out sweeps (faster)")
    p.add_argument("--write-card", action="store_true",
                   help='store the results under "evaluation" in the model card beside the weights')
    p.set_defaults(func=_cmd_evaluate)


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the model specs one can pick")
    p.set_defaults(func=_cmd_models)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an SE-ResNet (or its plain twin) on Fashion-MNIST",
                       description="Train on Fashion-MNIST. A checkpoint (<out>.resume.pt) is kept after every epoch; "
                                   "re-running the same command continues an interrupted run.")
    p.add_argument("--arch", default="fmnist_se_resnet50", help="registered sevis architecture")
    p.add_argument("--data", choices=("context", "centred"), default="context",
                   help="context: garments at random positions on random backgrounds (default); centred: the originals")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=_batch_size, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--se-weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=("cosine", "step"), default="cosine")
    p.add_argument("--class-aware", action="store_true", help="the paper's class-aware sampling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--train-images", type=_nonnegative_int, default=0, metavar="N",
                   help="train on the first N training images only (0: all 60,000); quick trials")
    p.add_argument("--bn-images", type=_nonnegative_int, default=20000, metavar="N",
                   help="after the last epoch, re-estimate BatchNorm statistics over N fresh training images "
                        "(default 20000; 0: keep the running averages)")
    p.add_argument("--test-images", type=_nonnegative_int, default=0, metavar="N",
                   help="measure test accuracy each epoch on the first N test images (0: all 10,000)")
    p.add_argument("--scale", type=float, nargs=2, default=(1.0, 1.0), metavar=("MIN", "MAX"),
                   help="in context: garment size drawn uniformly from MIN..MAX times 28 px (default 1 1)")
    p.add_argument("--snapshots", type=_nonnegative_int, nargs="+", metavar="EPOCH",
                   help="keep fp16 weights after these epochs (0: the initialisation) in <out>.snapshots/")
    p.add_argument("--backgrounds", choices=BACKGROUND_FAMILIES, default="smooth",
                   help="in context: smooth (a level plus smooth noise; default) or rich (also stripes, gradients, "
                        "noise textures and crops of packaged photos)")
    p.add_argument("--out", type=_out_path, help="weights path (.safetensors); default pretrained/<arch>.safetensors")
    p.set_defaults(func=_cmd_train)


def _add_ablate(sub) -> None:
    p = sub.add_parser("ablate", help="train the paper's ablations (r, squeeze, gate, stages, integration) small",
                       description="Train every ablation variant of the default model that is missing, on one short "
                                   "schedule; an interrupted variant resumes after its last finished epoch and "
                                   "finished ones are skipped, so re-run the same command until all are done. "
                                   "Weights and cards go to pretrained/ablations/.")
    p.add_argument("--variants", nargs="+", metavar="NAME", help="only these variants (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the variants and whether each is trained")
    p.add_argument("--epochs", type=_positive_int, help="epochs (default: the ablation schedule's)")
    p.add_argument("--train-images", type=_nonnegative_int, metavar="N", help="training images (default: the "
                                                                                "schedule's; 0: all 60,000)")
    p.add_argument("--test-images", type=_nonnegative_int, metavar="N", help="test images (0: all 10,000)")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads per run (default 1)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the reference-set evaluation (tests)")
    p.add_argument("--out-dir", metavar="DIR", help="where variants live (default pretrained/ablations)")
    p.set_defaults(func=_cmd_ablate)


# Subcommand registrars, in the order `sevis --help` lists them. Extend this list to add a subcommand.
SUBCOMMANDS: list[Callable] = [_add_predict, _add_excite, _add_evaluate, _add_stats, _add_train, _add_ablate,
                               add_family, add_check, _add_models, add_export, add_prepare, add_app, add_serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sevis", description="Look inside Squeeze-and-Excitation blocks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) == "app":
        args.streamlit_args = extra  # `sevis app --server.port 8502`: options for streamlit run
    elif extra and getattr(args, "command", None) == "export" and not any(e.startswith("-") for e in extra):
        args.images = list(args.images) + extra  # image files after options: `export channel --channel 7 IMG`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv
    try:
        return args.func(args)
    except SevisError as e:
        print(f"sevis: error: {e}{getattr(e, 'cli_hint', '')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sevis: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sevis predict ... | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as e:  # an unforeseen failure still gets one line; SEVIS_DEBUG=1 shows the traceback
        if os.environ.get("SEVIS_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"sevis: error: unexpected {type(e).__name__}{': ' + first if first else ''} "
              "(set SEVIS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
