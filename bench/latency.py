"""4. Interactive latency with the embedded model, the way app.py serves it.

app.py caches the model (st.cache_resource), per-image results, reference statistics and the knock-out
sweep (st.cache_data) and rebuilds the figures (sevis.views panels) on every script run. This mirrors that:

- upload: PNG bytes → decode_uploads (open_image) → image hash → analyse_images (predict + excitations,
  cached like get_results) → live_panels → every figure serialised to JSON (what st.plotly_chart ships to
  the browser; the browser's own drawing is not timed). "first" is a new upload, "rerun" the same upload
  again (cache hit + figures), as when the user changes a widget;
- class × depth view over the 1,000-image reference set with the app's defaults (4 classes, the paper's
  blocks, 50 channels): cold (statistics computed) and cached (st.cache_data hit + figures);
- knock-out sweep over the reference set, with and without reusing the unchanged prefix of the network,
  and the cached sweep panel;
- model load: cold (fresh process: interpreter + imports + load) and cached (st.cache_resource hit).
"""
from __future__ import annotations

import hashlib
import io
import statistics

import numpy as np
from PIL import Image

from sevis.data.fashion_mnist import load_reference_set
from sevis.analysis.inference import split_batches
from sevis.analysis.knockout import knockout_sweep
from sevis.core.recorder import find_se_blocks

from .common import run_worker, timed as _timed
from .overhead import load
from sevis.analysis.images import analyse_images, decode_uploads
from sevis.analysis.reference import paper_blocks, reference_batches, reference_statistics
from sevis.views.class_depth import class_depth_panels
from sevis.views.knockout import knockout_sweep_panel
from sevis.views.live import live_panels


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def uploads() -> dict[str, bytes]:
    """A 28×28 reference garment as stored, and a photo-sized 1024×1024 RGB version on a white background."""
    ref = load_reference_set()
    small = Image.fromarray(ref.images[0], "L")
    big = Image.fromarray(255 - ref.images[1], "L").resize((1024, 1024), Image.BICUBIC).convert("RGB")
    return {"garment 28×28 PNG": _png(small), "photo 1024×1024 PNG": _png(big)}


def _json_bytes(panels) -> int:
    return sum(len(p.figure.to_json()) for p in panels)


def run(quick: bool = False, threads: int | None = None) -> dict:
    import streamlit as st

    repeats = 3 if quick else 7
    out: dict = {"views": "sevis.views"}
    # ---------------------------------------------------------------- model load
    cold = run_worker("load", {"spec": "embedded", "threads": threads})
    if "error" in cold:  # no trained weights yet: same architecture, random weights
        cold = run_worker("load", {"spec": "embedded", "pretrained": False, "threads": threads})
    out["load_cold"] = cold

    @st.cache_resource(show_spinner=False)
    def get_model(spec: str):
        return load(spec)

    loaded, out["load_in_process_s"] = _timed(lambda: get_model("embedded"))
    _, out["load_cached_s"] = _timed(lambda: get_model("embedded"))
    out["weights"] = "trained" if loaded.source == "embedded" else "random (trained weights not present yet)"
    blocks = [b for b, _ in find_se_blocks(loaded.model)]

    # ---------------------------------------------------------------- upload → figures
    @st.cache_data(show_spinner=False)
    def get_results(spec: str, keys: tuple, _images: list):
        return analyse_images(loaded, _images)

    def upload_to_figures(name: str, data: bytes) -> int:
        images, errors = decode_uploads([(name, data)])
        assert images and not errors, errors
        ids = tuple((im.name, im.image.size, hashlib.sha256(im.image.tobytes()).hexdigest()[:16]) for im in images)
        results = get_results("embedded", ids, images)
        return _json_bytes(live_panels(results[0]))

    out["upload"] = []
    for name, data in uploads().items():
        firsts, reruns = [], []
        for i in range(repeats):
            get_results.clear()
            firsts.append(_timed(lambda: upload_to_figures(name, data))[1])
            reruns.append(_timed(lambda: upload_to_figures(name, data))[1])
        out["upload"].append({"upload": name, "bytes": len(data), "first_call_s": firsts[0],
                              "new_upload_s": statistics.median(firsts[1:] or firsts),
                              "rerun_s": statistics.median(reruns), "figure_json_bytes": upload_to_figures(name, data)})
    # where the time of a new upload goes
    images, _ = decode_uploads([("x.png", uploads()["garment 28×28 PNG"])])
    results, t_inf = _timed(lambda: analyse_images(loaded, images))
    panels, t_fig = _timed(lambda: live_panels(results[0]))
    _, t_json = _timed(lambda: _json_bytes(panels))
    out["upload_split"] = {"inference_s": t_inf, "figures_s": t_fig, "to_json_s": t_json}

    # ---------------------------------------------------------------- class × depth over the reference set
    @st.cache_data(show_spinner=False)
    def get_reference(spec: str, folder: str):
        return reference_statistics(loaded, folder or None)

    def class_depth_view(ref) -> int:
        classes = ref.stats.classes
        picked = [c for c in ("Trouser", "Sneaker", "Bag", "Coat") if c in classes] or classes[:4]
        maxc = max(b.channels for b in blocks)
        mode, n = ("uniform" if maxc > 64 else "all"), min(50, maxc)
        return _json_bytes(class_depth_panels(ref, picked, paper_blocks(blocks), mode, n, 0, picked[0]))

    ref, stats_cold = _timed(lambda: get_reference("embedded", ""))
    _, panels_cold = _timed(lambda: class_depth_view(ref))
    cached = [_timed(lambda: class_depth_view(get_reference("embedded", "")))[1] for _ in range(repeats)]
    _, hit = _timed(lambda: get_reference("embedded", ""))
    out["class_depth"] = {"cold_s": stats_cold + panels_cold, "stats_cold_s": stats_cold, "panels_s": panels_cold,
                          "cached_s": statistics.median(cached), "cache_hit_only_s": hit}

    # ---------------------------------------------------------------- cold Class × depth vs cold Live (issue 17)
    out["cold_views"] = cold_views(loaded, blocks, threads)

    # ---------------------------------------------------------------- knock-out sweep
    batches, pre_s = _timed(lambda: list(split_batches(loaded, loaded.reference_set(), 200)))
    times: dict[bool, list[float]] = {True: [], False: []}
    sweeps = {}
    for r in range(1 if quick else 2):
        for reuse in ((True, False) if r % 2 == 0 else (False, True)):
            sweeps[reuse], t = _timed(lambda: knockout_sweep(loaded, batches, reuse_prefix=reuse))
            times[reuse].append(t)
    t_reuse, t_full = statistics.median(times[True]), statistics.median(times[False])
    ko = {"preprocess_s": pre_s, "reuse_prefix_s": t_reuse, "rerun_s": t_full, "speedup": t_full / t_reuse,
          "same_accuracies": bool(np.allclose(sweeps[True]["accuracy"], sweeps[False]["accuracy"])),
          "images": sum(len(y) for _, y in batches), "blocks": len(sweeps[True]) - 1}
    @st.cache_data(show_spinner=False)
    def get_sweep(spec: str, folder: str, mode: str):
        b, source = reference_batches(loaded, folder or None)
        return knockout_sweep_panel(loaded, b, mode, None, source)

    panel, ko["app_cold_s"] = _timed(lambda: get_sweep("embedded", "", "identity"))
    ko["app_cached_s"] = statistics.median(
        _timed(lambda: len(get_sweep("embedded", "", "identity").figure.to_json()))[1] for _ in range(repeats))
    out["knockout"] = ko
    return out


def cold_view_work(loaded, blocks, view: str):
    """Return the work of a view as the app does it on a new server (empty caches, model loaded): "live" = a new
    upload's prediction, excitations and figures; "class_depth" = reference statistics, the untrained control (3
    seeds), both knock-out sweeps, measures and every panel. With a current precomputed file beside the card
    (sevis.analysis.precomputed) the reference results are read, not computed."""
    from sevis.analysis.measures import measures_and_paper
    from sevis.analysis.reference import class_mean_excitations, reference_control
    from sevis.views.class_depth import class_depth_takeaway, class_figure_panels, depth_profile_panels
    from sevis.views.knockout import precomputed_sweep_panel

    def live() -> int:
        images, _ = decode_uploads([("x.png", uploads()["garment 28×28 PNG"])])
        return _json_bytes(live_panels(analyse_images(loaded, images)[0]))

    def class_depth() -> int:
        ref = reference_statistics(loaded)
        control = reference_control(loaded)
        sweeps = {}
        for mode in ("identity", "mean"):
            panel = precomputed_sweep_panel(loaded, mode)
            if panel is None:
                batches, _ = reference_batches(loaded)
                means = class_mean_excitations(ref.stats, "all") if mode == "mean" else None
                panel = knockout_sweep_panel(loaded, batches, mode, means)
            sweeps[mode] = panel.data
        classes = [c for c in ("Trouser", "Sneaker", "Bag", "Coat") if c in ref.stats.classes]
        sel = paper_blocks(blocks)
        panels = class_figure_panels(ref, classes, sel, "uniform", 50, 0, classes[0])
        measures, paper = measures_and_paper(ref.stats, control, blocks, sweeps["identity"], sweeps["mean"])
        panels += depth_profile_panels(ref, measures, paper)
        class_depth_takeaway(measures, paper, sel, panels[0].data)
        return _json_bytes(panels)

    return {"live": live, "class_depth": class_depth}[view]


def cold_views(loaded, blocks, threads: int | None = None) -> dict:
    """Return a cold Class × depth against a cold Live inference: each in a fresh process (interpreter, imports,
    model load, then the view's work, as on a new server), and in this process with the model loaded."""
    from sevis.analysis.precomputed import load_precomputed
    pre, note = load_precomputed(loaded)
    fresh = {v: run_worker("cold_view", {"view": v, "threads": threads}) for v in ("live", "class_depth")}
    _, live_s = _timed(cold_view_work(loaded, blocks, "live"))
    _, cd_s = _timed(cold_view_work(loaded, blocks, "class_depth"))
    out = {"live_loaded_s": live_s, "class_depth_loaded_s": cd_s, "precomputed": pre is not None,
           "precomputed_note": note}
    if not any("error" in r for r in fresh.values()):
        out.update(live_cold_s=fresh["live"]["process_wall_s"], class_depth_cold_s=fresh["class_depth"]["process_wall_s"])
        out["ratio"] = out["class_depth_cold_s"] / out["live_cold_s"]
    else:
        out["error"] = "; ".join(r["error"] for r in fresh.values() if "error" in r)
    return out
