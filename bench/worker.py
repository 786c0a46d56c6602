"""Measurements that need a fresh process (peak RSS, cold start). Run by bench.common.run_worker:

    python -m bench.worker TASK '{"json": "args"}'

Prints one JSON line with the result.
"""
from __future__ import annotations

import json
import sys
import time


def _threads(args: dict) -> None:
    import torch
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))


# ------------------------------------------------------------------------------------------ peers
def peer_variant(name: str, loaded, x):
    """Return a callable capturing every SE gate output of `loaded.model` on `x` the way tool `name` does,
    and a function turning its result into the list of N×C tensors (depth order)."""

    from sevis import ExcitationRecorder
    from sevis.core.recorder import find_se_blocks

    from .overhead import variants

    model = loaded.model
    found = find_se_blocks(model)
    gates = [g for _, g in found]
    paths = [b.gate_path for b, _ in found]
    flat = lambda ts: [t.reshape(t.shape[0], -1) for t in ts]  # noqa: E731
    if name in ("plain", "bare_hook"):
        fns, _ = variants(model, x)
        return fns[name], (lambda r: None) if name == "plain" else flat
    if name == "sevis":
        def run():
            with ExcitationRecorder(model) as rec:
                model(x)
            return rec.excitations
        return run, lambda r: list(r.values())
    if name == "captum":
        from captum.attr import LayerActivation
        la = LayerActivation(model, gates)
        return (lambda: la.attribute(x)), flat
    if name in ("torchlens_gates", "torchlens_full"):
        import torchlens as tl
        from torchlens.options import CaptureOptions
        opts = (CaptureOptions(layers_to_save=paths) if name == "torchlens_gates"
                else CaptureOptions(layers_to_save="all"))
        return (lambda: tl.trace(model, x, capture=opts)), (lambda tr: flat([tr[p].out for p in paths]))
    raise KeyError(name)


def task_peers(args: dict) -> dict:
    import torch

    from .common import PeakRSS, interleaved, rss_mib
    from .overhead import input_for, load, variants

    _threads(args)
    loaded = load(args["model"])
    x = input_for(loaded, args["batch"])
    run, extract = peer_variant(args["variant"], loaded, x)
    plain, _ = variants(loaded.model, x)
    plain = plain["plain"]
    with torch.inference_mode():
        reference = None
        if args["variant"] != "plain":
            from sevis import ExcitationRecorder
            with ExcitationRecorder(loaded.model) as rec:
                loaded.model(x)
            reference = list(rec.excitations.values())
        first_t0 = time.perf_counter()
        first = run()  # first call: one-time costs (torchlens wraps torch functions, captum builds hooks)
        first_s = time.perf_counter() - first_t0
        max_diff = None
        if reference is not None:
            got = extract(first)
            max_diff = max(float((a.float() - b).abs().max()) for a, b in zip(got, reference)) \
                if len(got) == len(reference) else float("inf")
        del first
        run()
        plain()
        rss_before = rss_mib()
        with PeakRSS() as mem:
            kept = run()
        del kept
        timing = interleaved({"plain": plain, "variant": run}, rounds=int(args.get("rounds", 7)), inner=1, warmup=1)
    return {"variant": args["variant"], "model": args["model"], "batch": args["batch"],
            "time_ms": timing.median("variant") * 1e3, "plain_ms": timing.median("plain") * 1e3,
            "ratio_vs_plain": timing.ratio("variant", "plain"), "first_call_ms": first_s * 1e3,
            "peak_mib": mem.peak, "held_mib": mem.held, "rss_before_mib": rss_before, "peak_exact": mem.exact,
            "max_abs_diff_vs_sevis": max_diff}


def task_peers_head_to_head(args: dict) -> dict:
    """Time plain, bare hook, sevis and captum interleaved in one process: paired ratios, free of the
    process-to-process differences that separate runs show (torchlens stays out: it wraps torch globally)."""
    import torch

    from .common import calibrate, interleaved
    from .overhead import input_for, load

    _threads(args)
    loaded = load(args["model"])
    x = input_for(loaded, args["batch"])
    names = ["plain", "bare_hook", "sevis", "captum"]
    fns = {n: peer_variant(n, loaded, x)[0] for n in names}
    with torch.inference_mode():
        inner = calibrate(fns["plain"], target_s=0.05)
        timing = interleaved(fns, rounds=int(args.get("rounds", 15)), inner=inner, warmup=1)
    res = {"model": args["model"], "batch": args["batch"], "rounds": int(args.get("rounds", 15)), "inner": inner}
    for n in names:
        res[f"{n}_ms"] = timing.median(n) * 1e3
    for n in names[1:]:
        res[f"{n}_vs_plain"] = timing.ratio(n, "plain")
        res[f"{n}_vs_plain_best"] = timing.ratio_best(n, "plain")
    res["sevis_vs_captum"] = timing.ratio("sevis", "captum")
    res["sevis_vs_captum_best"] = timing.ratio_best("sevis", "captum")
    return res


# ------------------------------------------------------------------------------------------ statistics
def task_stats_memory(args: dict) -> dict:
    """Peak RSS growth of collect_statistics streaming over n test images (split_batches, lazily)."""
    import torch

    from sevis.analysis.inference import collect_statistics, split_batches
    from sevis.data.fashion_mnist import load_fashion_mnist

    from .common import PeakRSS
    from .overhead import load

    _threads(args)
    loaded = load("embedded")
    test = load_fashion_mnist("test")
    n = int(args["images"])
    from sevis.data.fashion_mnist import Split
    split = Split(test.images[:n].copy(), test.labels[:n].copy())
    del test
    # warm: one small pass so lazy kernels and allocator state do not count
    collect_statistics(loaded, split_batches(loaded, Split(split.images[:500], split.labels[:500]), args["batch"]))
    with PeakRSS() as mem:
        stats, acc = collect_statistics(loaded, split_batches(loaded, split, args["batch"]))
    out = {"images": n, "peak_mib": mem.peak, "held_mib": mem.held, "peak_exact": mem.exact,
           "accuracy": acc["accuracy"]}
    if args.get("plain_too"):
        with PeakRSS() as mem2, torch.inference_mode():
            for xb, _ in split_batches(loaded, split, args["batch"]):
                loaded.model(xb).argmax(1)
        out["plain_peak_mib"] = mem2.peak
    return out


# ------------------------------------------------------------------------------------------ model load
def task_load(args: dict) -> dict:
    t0 = time.perf_counter()
    import torch  # noqa: F401
    t1 = time.perf_counter()
    import sevis
    from sevis import load_model
    t2 = time.perf_counter()
    _threads(args)
    m = load_model(args.get("spec", "embedded"), pretrained=bool(args.get("pretrained", True)))
    t3 = time.perf_counter()
    load_model(args.get("spec", "embedded"), pretrained=bool(args.get("pretrained", True)))  # the second load
    t4 = time.perf_counter()
    return {"import_torch_s": t1 - t0, "import_sevis_s": t2 - t1,
            "load_s": t3 - t2, "reload_s": t4 - t3, "name": m.name, "source": m.source,
            "sevis_version": sevis.__version__}


def task_cold_view(args: dict) -> dict:
    """A view as a fresh server first computes it (imports, model load, every number and figure): "live" (one
    upload) or "class_depth" (bench.latency.cold_views' class_depth); the process wall time is its cold cost."""
    t0 = time.perf_counter()
    from sevis import find_se_blocks, load_model

    from .latency import cold_view_work
    _threads(args)
    loaded = load_model(args.get("spec", "embedded"))
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    size = cold_view_work(loaded, blocks, args["view"], args.get("step"))()
    return {"view": args["view"], "step": args.get("step"), "in_process_s": time.perf_counter() - t0,
            "figure_json_bytes": size}


TASKS = {"peers": task_peers, "peers_head_to_head": task_peers_head_to_head, "stats_memory": task_stats_memory,
         "load": task_load, "cold_view": task_cold_view}

if __name__ == "__main__":
    task, raw = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "{}")
    result = TASKS[task](json.loads(raw))
    print(json.dumps(result))
