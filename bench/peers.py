"""2. Peers capturing the same SE gate outputs of every block: captum's LayerActivation over all gate
layers and torchlens's trace of the forward pass, beside sevis, a bare hook and a plain forward.

Each variant runs in its own fresh process (bench.worker peers) so that its peak memory is its own and
torchlens's global wrapping of torch functions cannot slow the others down.
"""
from __future__ import annotations

from .common import run_worker

VARIANTS = ["plain", "bare_hook", "sevis", "captum", "torchlens_gates", "torchlens_full"]
CONFIGS = [("embedded", 32), ("timm:seresnet50", 8)]


def run(quick: bool = False, threads: int | None = None) -> dict:
    """Return {"separate": one row per tool and config, each in its own process (time, memory),
    "head_to_head": per config, plain/bare hook/sevis/captum interleaved in one process (paired ratios)}."""
    configs = CONFIGS[:1] if quick else CONFIGS
    head = [run_worker("peers_head_to_head", {"model": spec, "batch": batch, "threads": threads,
                                              "rounds": 5 if quick else (31 if spec == "embedded" else 9)})
            for spec, batch in configs]
    return {"separate": separate(configs, quick, threads), "head_to_head": head}


def separate(configs, quick: bool, threads: int | None) -> list[dict]:
    out = []
    for spec, batch in configs:
        for v in VARIANTS:
            rounds = 3 if (quick or v.startswith("torchlens")) else (9 if spec == "embedded" else 5)
            res = run_worker("peers", {"model": spec, "batch": batch, "variant": v, "rounds": rounds,
                                       "threads": threads})
            res.setdefault("variant", v)
            res.setdefault("model", spec)
            res.setdefault("batch", batch)
            out.append(res)
    return out
