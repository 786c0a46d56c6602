"""8. Memory of a large labelled folder in the app's views: a folder of N JPEGs (default 1,500 at 1024×768, 10
classes named after Fashion-MNIST's) streamed through the embedded model by the Class × depth statistics
(sevis.analysis.reference.reference_statistics) and the Channel view's reference excitations (thumbnails kept), each in
a fresh process after a warm-up pass. Reported: peak resident memory growth over the memory before the pass
(VmHWM reset through /proc/self/clear_refs) and what is still held after it. Target: growth < 400 MB.

    python -m bench --only folder [--quick]

Not a test: nothing here asserts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

TARGET_MB = 400
CLASSES = ("T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def make_folder(images: int, size: tuple[int, int] = (1024, 768), where: str | None = None) -> Path:
    """Return a folder of `images` JPEGs of `size` in 10 class sub-folders (made once, then reused)."""
    root = Path(where or tempfile.gettempdir()) / f"sevis-bench-folder-{images}-{size[0]}x{size[1]}"
    done = root / ".complete"
    if done.exists():
        return root
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    for i in range(images):
        cls = root / CLASSES[i % len(CLASSES)]
        cls.mkdir(parents=True, exist_ok=True)
        fx, fy, phase = rng.uniform(0.002, 0.02, 2).tolist() + [rng.uniform(0, 6.3)]
        base = 127 + 100 * np.sin(xx * fx + yy * fy + phase)
        rgb = np.stack([base, np.roll(base, 40, 1), 255 - base], -1)
        top, left = rng.integers(0, size[1] // 2), rng.integers(0, size[0] // 2)
        rgb[top:top + size[1] // 3, left:left + size[0] // 3] = rng.integers(0, 255, 3)
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(cls / f"{i:05d}.jpg", quality=85)
    done.write_text("ok")
    return root


def _decoded_mib(folder: Path) -> float:
    """Return the MiB the folder's images take decoded at full size in RGB (what holding them all would cost)."""
    total = 0
    for path in folder.rglob("*.jpg"):
        with Image.open(path) as img:
            total += img.size[0] * img.size[1] * 3
    return total / 2**20


def _worker(args: dict) -> dict:
    """In a fresh process: one pass of `args['what']` over the folder; return peak and held memory growth."""
    import torch
    torch.set_num_threads(int(args.get("threads") or 1))
    from sevis import load_model
    from sevis.data.folders import ConfinedFolder

    from .common import PeakRSS
    loaded = load_model("embedded")
    folder = args["folder"]
    if args.get("confined"):
        folder = ConfinedFolder(folder, os.path.realpath(folder))
    warm = make_folder(20, where=args["scratch"])
    if args["what"] == "class-depth":
        from sevis.analysis.reference import reference_statistics as run
    else:
        from sevis.views.channel import reference_excitations as run
    run(loaded, str(warm))  # warm-up: lazy kernels, allocator pools
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        result = run(loaded, folder)
    images = getattr(result, "images", None) or len(getattr(result, "labels", []))
    return {"peak_growth_mib": mem.peak, "held_mib": mem.held, "seconds": time.perf_counter() - t0,
            "images": int(images), "exact_peak": mem.exact}


def run(quick: bool = False, threads: int | None = None, images: int | None = None) -> dict:
    """Build the folder (once) and measure both passes in fresh processes; return the numbers."""
    images = images or (150 if quick else 1500)
    scratch = tempfile.gettempdir()
    t0 = time.perf_counter()
    folder = make_folder(images, where=scratch)
    out: dict = {"images": images, "size": "1024×768 JPEG", "folder_s": time.perf_counter() - t0,
                 "target_mb": TARGET_MB, "passes": {}, "decoded_at_once_mib": _decoded_mib(folder)}
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    for what in ("class-depth", "channel"):
        arg = json.dumps({"what": what, "folder": str(folder), "threads": threads, "scratch": scratch,
                          "confined": True})
        proc = subprocess.run([sys.executable, "-m", "bench.folder_memory", arg], cwd=root, env=env,
                              capture_output=True, text=True, timeout=3600)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode or not lines:
            out["passes"][what] = {"error": " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])}
            continue
        res = json.loads(lines[-1])
        res["under_target"] = res["peak_growth_mib"] * 2**20 / 1e6 < TARGET_MB
        out["passes"][what] = res
    return out


def report(res: dict) -> str:
    """Return the Markdown table of `run`'s result."""
    out = [f"A labelled folder of {res['images']} {res['size']} images in 10 classes, read by the app's views "
           "through the embedded model (each pass in a fresh process after a warm-up pass of 20 images).", "",
           "| pass | images | peak growth | held after | time | < 400 MB |", "|---|---:|---:|---:|---:|:-:|"]
    names = {"class-depth": "Class × depth statistics", "channel": "Channel view: s and thumbnails of every image"}
    for what, r in res["passes"].items():
        if "error" in r:
            out.append(f"| {names[what]} | failed: {r['error'][:150]} | | | | |")
            continue
        out.append(f"| {names[what]} | {r['images']} | {r['peak_growth_mib']:.0f} MiB | {r['held_mib']:.0f} MiB | "
                   f"{r['seconds']:.0f} s | {'yes' if r['under_target'] else '**no**'} |")
    out += ["", f"Holding every image decoded at full size would take {res['decoded_at_once_mib']:,.0f} MiB."]
    return "\n".join(out)


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))), flush=True)
