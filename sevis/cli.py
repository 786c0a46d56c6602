"""The `sevis` command line: predict, excite, train, evaluate, export."""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from .errors import SevisError

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import save_checkpoint
    from .data import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD
    from .train import TrainConfig, resolve_device, train, train_config_dict

    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, se_weight_decay=args.se_weight_decay,
                      schedule=args.schedule, class_aware=args.class_aware, seed=args.seed,
                      device=args.device, threads=args.threads)
    history: list[str] = []

    def log(line: str) -> None:
        history.append(line)
        print(line, flush=True)

    t0 = time.time()
    model = train(cfg, log=log)
    out = Path(args.out) if args.out else PRETRAINED_DIR / f"{args.arch}.safetensors"
    card = {
        "name": out.stem,
        "description": "SE-ResNet trained by sevis on Fashion-MNIST" if model.cfg.se else
                       "Plain ResNet (no SE) trained by sevis on Fashion-MNIST with the same recipe and seed",
        "architecture": model.cfg.to_dict(),
        "classes": list(FASHION_MNIST_CLASSES),
        "preprocessing": {"grayscale": True, "resize": 28, "center_crop": 28,
                          "mean": [FASHION_MNIST_MEAN], "std": [FASHION_MNIST_STD],
                          "note": "white-on-black garments as in Fashion-MNIST; photos on light backgrounds "
                                  "should be inverted first"},
        "dataset": {"name": "Fashion-MNIST", "source": "Debian package dataset-fashion-mnist",
                    "license": "MIT (Copyright 2017 Zalando SE)", "train_images": 60000, "test_images": 10000},
        "training": {**train_config_dict(cfg), "device_used": str(resolve_device(cfg.device)),
                     "seconds": round(time.time() - t0), "torch": torch.__version__, "log": history},
        "seed": cfg.seed,
        "command": "sevis " + shlex.join(sys.argv[1:]),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    save_checkpoint(model, out, card)
    print(f"saved {out} and {out.with_suffix('.json').name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sevis", description="Look inside Squeeze-and-Excitation blocks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an SE-ResNet (or its plain twin) on Fashion-MNIST")
    p.add_argument("--arch", default="fmnist_se_resnet", help="registered sevis architecture")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--se-weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=("cosine", "step"), default="cosine")
    p.add_argument("--class-aware", action="store_true", help="the paper's class-aware sampling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", help="weights path (.safetensors); default pretrained/<arch>.safetensors")
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SevisError as e:
        print(f"sevis: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sevis: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
