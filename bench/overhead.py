"""1. Recorder overhead: forward with ExcitationRecorder vs a plain forward vs a bare forward hook."""
from __future__ import annotations

import torch

from sevis import ExcitationRecorder, load_model
from sevis.core.recorder import find_se_blocks

from .common import calibrate, interleaved, timed

CONFIGS = [("embedded", 1), ("embedded", 32), ("timm:seresnet50", 1), ("timm:seresnet50", 32)]


def input_for(loaded, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (1, 28, 28) if loaded.dataset == "fashion-mnist" else (3, 224, 224)
    return torch.randn((batch, *shape), generator=g)


def load(spec: str):
    """embedded: the trained weights when they exist (random weights cost the same); others: random."""
    if spec == "embedded":
        try:
            return load_model(spec)
        except Exception:
            pass
    return load_model(spec, pretrained=False)


def capture(output: torch.Tensor) -> torch.Tensor:
    """The capture work every variant must do: detach, flatten to N×C, copy (the caller keeps it)."""
    return output.detach().reshape(output.shape[0], -1).clone()


def variants(model, x):
    """Return the benchmark variants (callables) and the streaming recorder they need entered."""
    gates = [g for _, g in find_se_blocks(model)]
    store: list[torch.Tensor] = []

    def hook(module, inputs, output):
        store.append(capture(output))

    def plain():
        return model(x)

    def bare_hook():  # the floor for any hook-based capture: register, forward, remove, keep the copies
        hs = [g.register_forward_hook(hook) for g in gates]
        try:
            model(x)
        finally:
            for h in hs:
                h.remove()
        out = list(store)
        store.clear()
        return out

    def recorder():  # what the app does per upload (sevis.analysis.inference.run_batch)
        with ExcitationRecorder(model) as r:
            model(x)
        return r.excitations

    streaming = ExcitationRecorder(model)

    def recorder_streaming():  # what dataset statistics do: hooks installed once, pop() per batch
        model(x)
        return streaming.pop()

    return {"plain": plain, "bare_hook": bare_hook, "recorder": recorder,
            "recorder_streaming": recorder_streaming}, streaming


def measure(spec: str, batch: int, budget_s: float = 20.0) -> dict:
    loaded = load(spec)
    model, x = loaded.model, input_for(loaded, batch)
    with torch.inference_mode():
        ref = model(x)
        with ExcitationRecorder(model) as rec:
            out = model(x)
        assert torch.equal(ref, out), "the recorder changed the output"
        blocks = len(rec.excitations)
        fns, streaming = variants(model, x)
        with streaming:
            fns["recorder_streaming"]()  # the streaming recorder only sees passes inside its own `with`
            inner = calibrate(fns["plain"], target_s=0.05)
            _, one = timed(fns["plain"])
            rounds = max(5 if one < 2 else 3, min(41, int(budget_s / (len(fns) * max(one * inner, 1e-3)))))
            timing = interleaved(fns, rounds=rounds, inner=inner, warmup=2 if one < 2 else 1)
    res = {"model": spec, "batch": batch, "blocks": blocks, "rounds": rounds, "inner": inner,
           "weights": "trained" if loaded.source == "embedded" else "random"}
    for name in fns:
        res[f"{name}_ms"] = timing.median(name) * 1e3
        res[f"{name}_iqr"] = timing.spread(name)
        if name != "plain":
            res[f"{name}_ratio"] = timing.ratio(name, "plain")
            res[f"{name}_ratio_best"] = timing.ratio_best(name, "plain")
    res["recorder_vs_bare"] = timing.ratio("recorder", "bare_hook")
    res["recorder_vs_bare_best"] = timing.ratio_best("recorder", "bare_hook")
    return res


def run(quick: bool = False) -> list[dict]:
    configs = [c for c in CONFIGS if not (quick and c[0].startswith("timm") and c[1] > 1)]
    # seresnet50 at batch 32 takes seconds per pass and its timings wander by ±10% (allocator, page faults):
    # it gets more rounds so that the paired medians settle.
    return [measure(spec, batch, budget_s=3.0 if quick else (150.0 if batch > 1 and spec.startswith("timm") else 20.0))
            for spec, batch in configs]
