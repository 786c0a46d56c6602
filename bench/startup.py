"""5. Command-line start-up: `sevis --help`, `sevis models`, a usage error and `sevis predict` on one image, each
in a fresh process, against `python -c "import torch"` (and import torch + one forward pass) timed in the same
interleaved rounds.

Targets (issue 10): --help, models and usage errors at most 0.3× `import torch`; predict on one image at most
1.5× (import torch + one forward pass of the same network, built from sevis.models.resnet and its safetensors file).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import ROOT, interleaved

FORWARD = """
import torch
from safetensors.torch import load_file
from sevis.models.resnet import SEResNet, architecture_config
model = SEResNet(architecture_config("fmnist_se_resnet")).eval()
model.load_state_dict(load_file("sevis/pretrained/fmnist_se_resnet.safetensors"))
with torch.inference_mode():
    model(torch.zeros(1, 1, 28, 28))
"""


def _runner(argv: list[str]):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"]
                                                    if os.environ.get("PYTHONPATH") else ""))

    def run() -> None:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode not in (0, 2):
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr[-300:]}")
    return run


def run(quick: bool = False, threads: int | None = None) -> dict:
    from PIL import Image

    from sevis.data.fashion_mnist import load_reference_set

    tmp = Path(tempfile.mkdtemp(prefix="sevis-bench-"))
    image = tmp / "garment.png"
    Image.fromarray(load_reference_set().images[0], "L").save(image)
    py = sys.executable
    variants = {
        "import_torch": _runner([py, "-c", "import torch"]),
        "import_torch_forward": _runner([py, "-c", FORWARD]),
        "help": _runner([py, "-m", "sevis", "--help"]),
        "models": _runner([py, "-m", "sevis", "models"]),
        "usage_error": _runner([py, "-m", "sevis", "predict", "x.png", "--top", "0"]),
        "predict": _runner([py, "-m", "sevis", "predict", str(image)]),
    }
    timing = interleaved(variants, rounds=2 if quick else 7, inner=1, warmup=1)
    out = {"seconds": {n: timing.median(n) for n in variants}}
    out["ratios"] = {
        "help": timing.ratio("help", "import_torch"), "models": timing.ratio("models", "import_torch"),
        "usage_error": timing.ratio("usage_error", "import_torch"),
        "predict": timing.ratio("predict", "import_torch_forward"),
    }
    out["ratios_best"] = {
        "help": timing.ratio_best("help", "import_torch"), "models": timing.ratio_best("models", "import_torch"),
        "usage_error": timing.ratio_best("usage_error", "import_torch"),
        "predict": timing.ratio_best("predict", "import_torch_forward"),
    }
    out["rounds"] = len(timing.samples["help"])
    return out
