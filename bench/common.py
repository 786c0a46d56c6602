"""Shared helpers: interleaved timing, peak-RSS measurement, subprocess workers, machine description."""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

ROOT = Path(__file__).resolve().parent.parent

# glibc raises its mmap threshold dynamically after large frees, after which freed tensors stay in the heap
# and later peaks no longer show in RSS. A fixed threshold keeps every tensor ≥ 128 KiB in its own mapping,
# returned to the OS on free, so the RSS high-water mark follows real tensor lifetimes.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


# ----------------------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Per-call seconds of each variant, measured in interleaved rounds."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, name: str, base: str) -> float:
        """Median of the per-round ratios name/base (paired, so slow drift between rounds cancels)."""
        return statistics.median(a / b for a, b in zip(self.samples[name], self.samples[base]))

    def ratio_best(self, name: str, base: str) -> float:
        """Ratio of the fastest samples: the least disturbed by other load on the machine."""
        return min(self.samples[name]) / min(self.samples[base])

    def spread(self, name: str) -> float:
        """Interquartile range / median, a noise indicator."""
        s = sorted(self.samples[name])
        if len(s) < 4:
            return float("nan")
        q1, q3 = s[len(s) // 4], s[(3 * len(s)) // 4]
        return (q3 - q1) / statistics.median(s)


def interleaved(variants: Mapping[str, Callable[[], object]], rounds: int, inner: int = 1,
                warmup: int = 2) -> Timing:
    """Time each variant `inner` calls at a time, in `rounds` rounds; the order rotates every round so that no
    variant always runs first (cache/thermal/frequency drift and a background job hit all alike)."""
    names = list(variants)
    for _ in range(warmup):
        for n in names:
            variants[n]()
    out = Timing({n: [] for n in names})
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            if r % 2:
                order.reverse()
            for n in order:
                f = variants[n]
                t0 = time.perf_counter()
                for _ in range(inner):
                    f()
                out.samples[n].append((time.perf_counter() - t0) / inner)
    finally:
        if gc_was:
            gc.enable()
    return out


def calibrate(f: Callable[[], object], target_s: float = 0.05, max_inner: int = 200) -> int:
    """Return how many calls of f make one sample of about target_s seconds (≥ 1)."""
    t0 = time.perf_counter()
    f()
    dt = max(time.perf_counter() - t0, 1e-6)
    return max(1, min(max_inner, int(target_s / dt)))


def timed(f: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------- memory
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux ≥ 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mib() -> float:
    return _status_kib("VmHWM") / 1024


class PeakRSS:
    """Context manager: peak RSS growth (MiB) over the RSS at entry, and RSS still held at exit.

    Use in a fresh worker process (see run_worker), after warm-up, so that one-time costs (imports, lazy
    kernels, first-call caches) are not charged to the measured code.
    """

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        self.exact = reset_peak()
        self.base = rss_mib()
        if not self.exact:  # fall back to getrusage's lifetime peak; only growth above it shows
            self.base = max(self.base, peak_mib())
        return self

    def __exit__(self, *exc) -> None:
        self.peak = max(peak_mib() - self.base, 0.0)
        self.held = max(rss_mib() - self.base, 0.0)


# ----------------------------------------------------------------------------------------- workers
def run_worker(task: str, args: Mapping, timeout: float = 1800) -> dict:
    """Run `python -m bench.worker task json(args)` in a fresh process; return its JSON result."""
    env = dict(os.environ, **WORKER_ENV)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.worker", task, json.dumps(dict(args))], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"worker {task} failed (rc {proc.returncode}): " + " | ".join(tail), "process_wall_s": wall}
    out = json.loads(lines[-1])
    out["process_wall_s"] = wall
    return out


# ----------------------------------------------------------------------------------------- machine
def machine() -> dict:
    import torch
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    contention = subprocess.run(["pgrep", "-f", "sevis train"], capture_output=True, text=True).stdout.split()
    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "gpu": gpu, "background_training_pids": contention, "load_average": os.getloadavg(),
        "when_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }

