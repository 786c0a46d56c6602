"""3. Dataset statistics: per-class excitation statistics over 1k and 10k Fashion-MNIST test images.

Throughput is compared like with like: the same preprocessed batches go through a plain inference loop
(predictions only) and through collect_statistics (predictions + recorder + streaming per-class sums).
Preprocessing (split_batches: PIL per image, the model's own transform) is timed on its own and end to
end. Peak memory comes from fresh worker processes streaming 1k and 10k images.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from sevis.analysis.inference import collect_statistics, split_batches
from sevis.data.fashion_mnist import Split, load_fashion_mnist

from .common import interleaved, run_worker
from .overhead import load

BATCH = 250


def plain_pass(loaded, batches) -> float:
    """Plain inference over labelled batches; returns accuracy (the same output collect_statistics gives)."""
    correct = total = 0
    with torch.inference_mode():
        for x, y in batches:
            pred = loaded.model(x).argmax(1).cpu().numpy()
            correct += int((pred == np.asarray(y)).sum())
            total += len(y)
    return correct / max(total, 1)


def run(quick: bool = False, threads: int | None = None) -> dict:
    loaded = load("embedded")
    test = load_fashion_mnist("test")
    sizes = [1000] if quick else [1000, 10000]
    rows = []
    for n in sizes:
        split = Split(test.images[:n], test.labels[:n])
        t0 = time.perf_counter()
        batches = list(split_batches(loaded, split, BATCH))
        pre_s = time.perf_counter() - t0
        # A 1k pass takes ~1 s, so single passes swing by ±10% on a shared machine: many paired rounds.
        rounds = 2 if quick else (9 if n <= 1000 else 3)
        timing = interleaved({"plain": lambda: plain_pass(loaded, batches),
                              "stats": lambda: collect_statistics(loaded, batches)},
                             rounds=rounds, inner=1, warmup=1 if n <= 1000 else 0)
        e2e = interleaved({"plain": lambda: plain_pass(loaded, split_batches(loaded, split, BATCH)),
                           "stats": lambda: collect_statistics(loaded, split_batches(loaded, split, BATCH))},
                          rounds=1 if n > 1000 or quick else 3, inner=1, warmup=0)
        plain_s, stats_s = timing.median("plain"), timing.median("stats")
        rows.append({
            "images": n, "batch": BATCH, "preprocess_s": pre_s,
            "plain_s": plain_s, "stats_s": stats_s,
            "plain_img_per_s": n / plain_s, "stats_img_per_s": n / stats_s,
            "throughput_ratio": 1 / timing.ratio("stats", "plain"),
            "e2e_plain_s": e2e.median("plain"), "e2e_stats_s": e2e.median("stats"),
            "e2e_throughput_ratio": 1 / e2e.ratio("stats", "plain"),
            "preprocess_share_e2e": pre_s / e2e.median("stats"),
        })
        batches = None  # free the decoded batches before the next size (the lambdas above read the name)
    memory = [run_worker("stats_memory", {"images": n, "batch": BATCH, "threads": threads, "plain_too": True})
              for n in sizes]
    return {"throughput": rows, "memory": memory}
