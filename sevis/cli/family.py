"""`sevis family` (train the architectures grid) and `sevis check` (is every SE block wired in?): their parsers and
commands, registered in sevis.cli.main.SUBCOMMANDS."""
from __future__ import annotations

import argparse

from sevis.errors import SevisError


def _count(text: str) -> int:
    """Return a non-negative integer argument (argparse reports anything else in one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _cmd_family(args: argparse.Namespace) -> int:
    from sevis.names import FAMILY_RUNS
    from sevis.train.family_grid import FAMILY_SCHEDULE, status, train_families

    names = args.models or list(FAMILY_RUNS)
    unknown = [n for n in names if n not in FAMILY_RUNS]
    if unknown:
        raise SevisError(f"unknown architecture model {unknown[0]!r}; known: {', '.join(FAMILY_RUNS)}")
    if args.time:
        from sevis.train.family_grid import time_families
        if not time_families(args.out_dir):
            raise SevisError("no architecture has both its SE model and its plain twin trained yet (or another "
                             "process is timing them): nothing to time")
        return 0
    if args.list:
        from sevis.train.family_evaluation import missing_entries
        for n in names:
            r = FAMILY_RUNS[n]
            state = status(n, args.out_dir)
            todo = missing_entries(n, args.out_dir) if state == "trained" else []
            lacks = f" (card lacks: {', '.join(todo)})" if todo else ""
            print(f"  {n:<20} {state:<24} {r['arch']}, seed {r['seed']}{lacks}")
        return 0
    import torch

    from sevis.train.family_evaluation import evaluate_finished
    torch.set_num_threads(args.threads)

    def log(line: str) -> None:
        print(line, flush=True)

    # Finished runs first get what their cards lack (accuracy on unseen backgrounds, near-constant gates, what SE
    # adds): the table's intervals need them, and it takes minutes where training takes hours.
    if not args.no_evaluate:
        evaluate_finished(names, args.out_dir, log)
    if args.evaluate_only:
        return 0
    schedule = {k: v for k, v in (("epochs", args.epochs), ("train_images", args.train_images),
                                  ("test_images", args.test_images)) if v is not None}
    print(f"architectures: {len(names)} run(s), schedule {({**FAMILY_SCHEDULE, **schedule})}", flush=True)
    after = None if args.no_evaluate else (lambda n: evaluate_finished([n], args.out_dir, log))
    train_families(names, args.out_dir, log=log, evaluate_reference=not args.no_evaluate, threads=args.threads,
                   after_run=after, **schedule)
    return 0


def add_family(sub) -> None:
    p = sub.add_parser("family", help="train SE-Inception, SE-ResNeXt, SE-MobileNet, SE-VGG and their plain twins",
                       description="Train every architecture model that is missing (five seeds each), on one short "
                                   "schedule; an interrupted run resumes after its last finished epoch, finished ones "
                                   "are skipped, and several processes share the work, so re-run the same command "
                                   "until all are done. Before training, finished runs get what their cards lack "
                                   "(accuracy on unseen backgrounds, near-constant gates, what SE adds). Weights and "
                                   "cards go to pretrained/families/.")
    p.add_argument("--models", nargs="+", metavar="NAME", help="only these runs (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the runs and whether each is trained")
    p.add_argument("--time", action="store_true", help="only time each trained SE model against its plain twin "
                                                       "(alternating rounds) and update the cards; done at the end")
    p.add_argument("--evaluate-only", action="store_true",
                   help="only fill what the finished runs' cards lack (accuracy on unseen backgrounds, near-constant "
                        "gates, what SE adds), then stop; `sevis family` does this before training too")
    p.add_argument("--epochs", type=_positive, help="epochs (default: the schedule's)")
    p.add_argument("--train-images", type=_count, metavar="N", help="training images (default: the schedule's; "
                                                                     "0: all 60,000)")
    p.add_argument("--test-images", type=_count, metavar="N", help="test images (0: all 10,000)")
    p.add_argument("--threads", type=_positive, default=1, help="CPU threads per run (default 1)")
    p.add_argument("--no-evaluate", action="store_true",
                   help="skip the reference-set and unseen-background evaluations (tests)")
    p.add_argument("--out-dir", metavar="DIR", help="where the runs live (default pretrained/families)")
    p.set_defaults(func=_cmd_family)


def _cmd_check(args: argparse.Namespace) -> int:
    from sevis.analysis.check import check_failed, check_loaded, format_check
    from sevis.models.zoo import load_model

    if args.random_weights:
        import torch
        torch.manual_seed(0)
    loaded = load_model(args.model, pretrained=not args.random_weights, arch=args.arch)
    table, inputs = check_loaded(loaded, args.images)
    print(f"{loaded.name} ({loaded.spec})")
    print(format_check(table, inputs))
    return 1 if check_failed(table) else 0


def add_check(sub) -> None:
    p = sub.add_parser("check", help="is every SE block wired in: runs, matters (s := 1 changes the logits), gates",
                       description="For every SE block: found, runs in the forward pass, its output matters (setting s "
                                   "to 1 changes the logits), and the share of s near 0, 0.5 and 1. Exits with 1 when "
                                   "a block is registered but never runs, or runs and changes nothing.")
    p.add_argument("model", help="model spec (see `sevis models`) or a weights file")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card, e.g. timm:seresnet50")
    p.add_argument("--images", type=_positive, default=100, metavar="N",
                   help="images to run (Fashion-MNIST models: reference images; others: up to 8 random ones)")
    p.add_argument("--random-weights", action="store_true", help="random weights (seed 0) instead of trained ones")
    p.set_defaults(func=_cmd_check)

