"""2. Peers capturing the same SE gate outputs of every block: captum's LayerActivation over all gate
layers and torchlens's trace of the forward pass, beside sevis, a bare hook and a plain forward.

Each variant runs in its own fresh process (bench.worker peers) so that its peak memory is its own and
torchlens's global wrapping of torch functions cannot slow the others down.
"""
from __future__ import annotations

from .common import run_worker

VARIANTS = ["plain", "bare_hook", "sevis", "captum", "torchlens_gates", "torchlens_full"]
CONFIGS = [("embedded", 32), ("timm:seresnet50", 8)]


def run(quick: bool = False, threads: int | None = None) -> list[dict]:
    out = []
    configs = CONFIGS[:1] if quick else CONFIGS
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
