"""6. `sevis stats` over a labelled folder (the 1,000 reference-set garments as PNG files, 10 classes): throughput
of one process (2 decoding workers) and of `torchrun --nproc-per-node 2` (gloo, 1 decoding worker each), each
process with one compute thread (OMP_NUM_THREADS=1, torchrun's default; one run with torch's default threads
beside them), end to
end (process start, model load, decoding, inference, all-reduce, writing the JSON) and for the pass alone (the
seconds `sevis stats` reports: listing, decoding, inference, all-reduce), and whether both files agree.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import ROOT


def make_folder(root: Path, per_class: int | None = None) -> int:
    """Write the reference set as PNG files, one sub-folder per class; return how many images."""
    from PIL import Image

    from sevis.data.fashion_mnist import load_reference_set

    ref = load_reference_set()
    n = 0
    for k, cls in enumerate(ref.classes):
        d = root / cls.replace("/", "-")
        d.mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(np.flatnonzero(ref.labels == k)[:per_class]):
            Image.fromarray(ref.images[i], "L").save(d / f"{j:04d}.png")
            n += 1
    return n


def _stats(launcher: list[str], folder: Path, out: Path, workers: int, one_thread: bool = True) -> tuple[float, float]:
    """Run `sevis stats`; return (wall seconds of the whole command, seconds of the pass it reports).

    one_thread: OMP_NUM_THREADS=1 in every process, as torchrun sets it for each of its processes, so one process
    and two compare one compute thread against two."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"]
                                                    if os.environ.get("PYTHONPATH") else ""))
    env.pop("OMP_NUM_THREADS", None)
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    proc = subprocess.run(launcher + ["stats", "--folder", str(folder), "--out", str(out), "--model", "embedded",
                                      "--workers", str(workers)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-500:])
    return wall, float(re.search(r" in ([0-9.]+) s", proc.stdout).group(1))


def run(quick: bool = False, threads: int | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sevis-bench-stats-"))
    images = make_folder(tmp / "folder", 20 if quick else None)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    one_cmd = [sys.executable, "-m", "sevis"]
    two_cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "sevis"]
    rounds = 1 if quick else 3
    walls: dict[str, list[float]] = {"1": [], "2": []}
    passes: dict[str, list[float]] = {"1": [], "2": []}
    for r in range(rounds):  # alternate which goes first
        order = [("1", one_cmd, 2), ("2", two_cmd, 1)]
        for key, cmd, workers in (order if r % 2 == 0 else order[::-1]):
            wall, seconds = _stats(cmd, tmp / "folder", tmp / f"p{key}.json", workers)
            walls[key].append(wall)
            passes[key].append(seconds)
    default_threads = _stats(one_cmd, tmp / "folder", tmp / "p1t.json", 2, one_thread=False)
    a, b = json.loads((tmp / "p1.json").read_text()), json.loads((tmp / "p2.json").read_text())
    blocks_a, blocks_b = a["statistics"]["blocks"], b["statistics"]["blocks"]
    diff = max(float(np.abs(np.asarray(blocks_a[n][k]) - np.asarray(blocks_b[n][k])).max())
               for n in a["blocks"] for k in ("total", "total_sq"))
    best = {k: min(v) for k, v in walls.items()}
    best_pass = {k: min(v) for k, v in passes.items()}
    return {"images": images, "rounds": rounds, "wall_s": walls, "best_wall_s": best, "pass_s": passes,
            "best_pass_s": best_pass, "img_per_s": {k: images / v for k, v in best.items()},
            "pass_img_per_s": {k: images / v for k, v in best_pass.items()},
            "speedup_2_vs_1": best["1"] / best["2"], "pass_speedup_2_vs_1": best_pass["1"] / best_pass["2"],
            "max_abs_diff_sums": diff, "one_process_default_threads_s": default_threads,
            "same_counts": a["images_per_class"] == b["images_per_class"]}
