"""Argument types and checks the `sevis` subcommands share: bounded integers, a non-empty --out, and --arch only
where it means something. Each refusal is one clear sentence (argparse prints it after its usage line)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

from sevis.errors import SevisError

MAX_BATCH = 65_536  # images per forward pass; beyond this no machine has the memory
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def int_at_least(low: int, high: int = 2**31 - 1) -> Callable[[str], int]:
    """Return an argparse type that reads an integer from `low` to `high` (one clear message otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if value > high:
            shown = text if len(text) < 30 else text[:27] + "…"
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {shown}")
        return value
    return parse


positive_int, nonnegative_int, batch_size = int_at_least(1), int_at_least(0), int_at_least(1, MAX_BATCH)


def out_path(text: str) -> str:
    """An argparse type for --out: a non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; name a file or folder to write to")
    return text


def check_arch(args: argparse.Namespace) -> None:
    """Refuse --arch with a model name: it names the architecture of a weights file without a sevis card, and a
    named model (embedded, timm:…, sevis:…) has its own, so it would be silently ignored."""
    model = str(getattr(args, "model", "") or "")
    is_file = Path(model).suffix.lower() in WEIGHT_SUFFIXES or Path(model).exists()
    if getattr(args, "arch", None) and not is_file:
        raise SevisError(f"--arch names the architecture of a weights file without a sevis model card; {model} "
                         "has its own, so leave --arch out")


def progress_bar(total: int | None, desc: str, unit: str = "img"):
    """Return a tqdm progress bar on stderr (hidden when stderr is not a terminal; total None: a counter)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)


def command_line(argv: Sequence[str] | None) -> str:
    """Return the command as typed (argv, or sys.argv), for model cards and teaching packs."""
    return "sevis " + shlex.join(sys.argv[1:] if argv is None else list(argv))


def load_from_args(args: argparse.Namespace):
    """Return the LoadedModel that --model/--arch/--random-weights name (random weights: seed 0, reproducible)."""
    from sevis.models.zoo import load_model

    check_arch(args)
    if not getattr(args, "random_weights", False):
        return load_model(args.model, arch=args.arch)
    prefix = str(args.model).partition(":")[0]
    if args.arch or (prefix not in ("timm", "torchvision", "sevis") and args.model not in embedded_names()):
        raise SevisError(f"--random-weights needs a model name (timm:<name>, torchvision:<name>, sevis:<arch> or "
                         f"embedded), not a weights file: {args.model}")
    import torch
    torch.manual_seed(0)
    return load_model(args.model, pretrained=False)


def embedded_names() -> tuple[str, ...]:
    from sevis.names import EMBEDDED
    return tuple(EMBEDDED)
