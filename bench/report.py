"""Turn the benchmark results into Markdown tables (printed, and pasted into docs/PERFORMANCE.md)."""
from __future__ import annotations

import statistics


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _f(v, nd=2) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def machine(m: dict) -> str:
    gpu = m["gpu"] or "none present (CPU only; no GPU column)"
    bg = ("none" if not m["background_training_pids"]
          else f"**`sevis train` was running (pids {', '.join(m['background_training_pids'])}): "
               "timings under contention**")
    return "\n".join([
        f"- CPU: {m['cpu']}, {m['usable_cpus']} usable cores ({m['logical_cpus']} logical), "
        f"torch threads {m['torch_threads']}",
        f"- torch {m['torch']}, Python {m['python']}; GPU: {gpu}",
        f"- run at {m['when_utc']}; other load on the machine: {bg}; load average "
        f"{', '.join(f'{x:.1f}' for x in m.get('load_average', ()))}",
    ])


def overhead(rows: list[dict]) -> str:
    out = ["| model | batch | plain | bare hook | recorder (per call) | recorder (streaming) | recorder / plain | "
           "recorder / bare hook | streaming / plain | ≤ 1.03× |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in rows:
        worst = max(r["recorder_ratio"], r["recorder_streaming_ratio"])
        b = lambda k: f" ({r[k + '_best']:.3f})" if k + "_best" in r else ""  # noqa: E731
        out.append(f"| {r['model']} | {r['batch']} | {r['plain_ms']:.2f} ms | {r['bare_hook_ms']:.2f} ms | "
                   f"{r['recorder_ms']:.2f} ms | {r['recorder_streaming_ms']:.2f} ms | {r['recorder_ratio']:.3f}×"
                   f"{b('recorder_ratio')} | {r['recorder_vs_bare']:.3f}×{b('recorder_vs_bare')} | "
                   f"{r['recorder_streaming_ratio']:.3f}×{b('recorder_streaming_ratio')} | {_ok(worst <= 1.03)} |")
    out.append("")
    out.append("Times are medians per forward pass; ratios are medians of per-round paired ratios, in brackets the "
               "ratio of the fastest rounds (least disturbed by other load). Rounds interleave the variants in "
               "rotating order.")
    return "\n".join(out)


NAMES = {"plain": "plain forward (no capture)", "bare_hook": "bare forward hook on the gates",
         "sevis": "sevis ExcitationRecorder", "captum": "captum LayerActivation (all gates)",
         "torchlens_gates": "torchlens trace, gates saved", "torchlens_full": "torchlens trace, every layer saved"}


def peers(res) -> str:
    rows = res["separate"] if isinstance(res, dict) else res
    out = []
    if isinstance(res, dict) and res.get("head_to_head"):
        out += ["Head to head, interleaved in one process (medians per pass; ratios are medians of paired rounds, "
                "in brackets the ratio of the fastest rounds):", "",
                "| model, batch | plain | bare hook | sevis | captum | sevis / plain | captum / plain | "
                "sevis / captum | sevis no slower than captum |", "|---|---:|---:|---:|---:|---:|---:|---:|:-:|"]
        for h in res["head_to_head"]:
            if "error" in h:
                out.append(f"| {h.get('model')}, {h.get('batch')} | failed: {h['error'][:120]} | | | | | | | |")
                continue
            out.append(f"| {h['model']}, {h['batch']} | {h['plain_ms']:.1f} ms | {h['bare_hook_ms']:.1f} ms | "
                       f"{h['sevis_ms']:.1f} ms | {h['captum_ms']:.1f} ms | {h['sevis_vs_plain']:.3f}× "
                       f"({h['sevis_vs_plain_best']:.3f}) | {h['captum_vs_plain']:.3f}× "
                       f"({h['captum_vs_plain_best']:.3f}) | "
                       f"{h['sevis_vs_captum']:.3f}× ({h['sevis_vs_captum_best']:.3f}) | "
                       f"{_ok(min(h['sevis_vs_captum'], h['sevis_vs_captum_best']) <= 1.0)} |")
        out += ["", "Each tool in its own fresh process (peak memory is its own; \"× plain\" is paired with a plain "
                "forward in that same process, since absolute times differ from process to process):", ""]
    out += ["| model, batch | tool | time per pass | plain, same process | × plain | first call | peak RSS growth | "
            "held after | s equal to sevis |", "|---|---|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in rows:
        tool = NAMES.get(r["variant"], r["variant"])
        if "error" in r:
            out.append(f"| {r['model']}, {r['batch']} | {tool} | failed: {r['error'][:120]} | | | | | | |")
            continue
        diff = r.get("max_abs_diff_vs_sevis")
        eq = "—" if diff is None else ("yes" if diff <= 1e-6 else f"max |Δ| {diff:.1e}")
        out.append(f"| {r['model']}, {r['batch']} | {tool} | {r['time_ms']:.1f} ms | {r['plain_ms']:.1f} ms | "
                   f"{r['ratio_vs_plain']:.2f}× | "
                   f"{r['first_call_ms']:.0f} ms | {r['peak_mib']:.1f} MiB | {r['held_mib']:.1f} MiB | {eq} |")
    return "\n".join(out)


def dataset(res: dict) -> str:
    out = ["| images | preprocess (split_batches, PIL) | plain inference | with statistics | throughput ratio "
           "(≥ 0.95×) | end to end: plain | end to end: statistics | end-to-end ratio |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["throughput"]:
        out.append(f"| {r['images']:,} | {r['preprocess_s']:.2f} s | {r['plain_s']:.2f} s "
                   f"({r['plain_img_per_s']:.0f}/s) | "
                   f"{r['stats_s']:.2f} s ({r['stats_img_per_s']:.0f}/s) | {r['throughput_ratio']:.3f}× "
                   f"{'' if r['throughput_ratio'] >= 0.95 else '**(miss)**'} | {r['e2e_plain_s']:.2f} s | "
                   f"{r['e2e_stats_s']:.2f} s | {r['e2e_throughput_ratio']:.3f}× |")
    out += ["", "| images | peak RSS growth, statistics | peak RSS growth, plain inference | held after |",
            "|---:|---:|---:|---:|"]
    for m in res["memory"]:
        if "error" in m:
            out.append(f"| ? | failed: {m['error'][:150]} | | |")
            continue
        out.append(f"| {m['images']:,} | {m['peak_mib']:.1f} MiB | {m.get('plain_peak_mib', float('nan')):.1f} MiB | "
                   f"{m['held_mib']:.1f} MiB |")
    return "\n".join(out)


def latency(res: dict) -> str:
    lc = res["load_cold"]
    cd, ko = res["class_depth"], res["knockout"]
    out = [f"Weights: {res['weights']}. View layer: {res['views']}.", "",
           "| what | measured | target | met |", "|---|---:|---|:-:|"]
    for u in res["upload"]:
        out.append(f"| new upload → all live figures built, {u['upload']} ({u['bytes']:,} B) | "
                   f"{u['new_upload_s'] * 1e3:.0f} ms (first in process {u['first_call_s'] * 1e3:.0f} ms; rerun, "
                   f"cached {u['rerun_s'] * 1e3:.0f} ms) | < 1 s | "
                   f"{_ok(max(u['new_upload_s'], u['first_call_s']) < 1)} |")
    if "upload_split" in res:
        sp = res["upload_split"]
        out.append(f"| … of which inference / figures / JSON | {sp['inference_s'] * 1e3:.0f} / "
                   f"{sp['figures_s'] * 1e3:.0f}"
                   f" / {sp['to_json_s'] * 1e3:.0f} ms | | |")
    out.append(f"| class × depth view, reference set (1,000 images), cold | {cd['cold_s']:.2f} s "
               f"(statistics {cd['stats_cold_s']:.2f} s + figures {cd['panels_s']:.2f} s) | < 10 s | "
               f"{_ok(cd['cold_s'] < 10)} |")
    if "cold_views" in res:
        cv = res["cold_views"]
        for row in cv.get("views", []):
            how = "prepared result read" if row["prepared"] else "computed (no current prepared file)"
            out.append(f"| cold {row['view']} ({how}) / cold Live inference, each a fresh process (imports, model "
                       f"load, the view) | {row['cold_s']:.2f} s / {cv['live_cold_s']:.2f} s = "
                       f"**{row['ratio_to_live']:.2f}×** | ≤ 1.5× | {_ok(row['ratio_to_live'] <= 1.5)} |")
        for what, error in cv.get("errors", {}).items():
            out.append(f"| cold {what} | failed: {error} | ≤ 1.5× | no |")
    out.append(f"| class × depth view, cached (st.cache_data hit + figures) | {cd['cached_s'] * 1e3:.0f} ms "
               f"(cache hit alone {cd['cache_hit_only_s'] * 1e3:.1f} ms) | instant | "
               f"{_ok(cd['cached_s'] < 1)} |")
    out.append(f"| knock-out sweep, {ko['images']:,} images × {ko['blocks']} blocks, reusing the prefix | "
               f"{ko['reuse_prefix_s']:.2f} s (+ {ko['preprocess_s']:.2f} s preprocessing) | < 30 s | "
               f"{_ok(ko['reuse_prefix_s'] + ko['preprocess_s'] < 30)} |")
    out.append(f"| knock-out sweep, re-running the whole net for every block | {ko['rerun_s']:.2f} s | "
               f"reuse {ko['speedup']:.2f}× faster | same accuracies: {ko['same_accuracies']} |")
    if "app_cold_s" in ko:
        out.append(f"| knock-out view as the app runs it (batches + sweep + figure), cold / cached | "
                   f"{ko['app_cold_s']:.2f} s / {ko['app_cached_s'] * 1e3:.0f} ms | < 30 s | "
                   f"{_ok(ko['app_cold_s'] < 30)} |")
    if "error" in lc:
        out.append(f"| model load, cold | failed: {lc['error'][:150]} | | |")
    else:
        out.append(f"| model load, cold (fresh process) | {lc['process_wall_s']:.2f} s wall: import torch "
                   f"{lc['import_torch_s']:.2f} s, import sevis {lc['import_sevis_s']:.2f} s, load_model "
                   f"{lc['load_s'] * 1e3:.0f} ms | — | |")
    out.append(f"| model load in a warm process: load_model / st.cache_resource hit | "
               f"{res['load_in_process_s'] * 1e3:.0f} ms / "
               f"{res['load_cached_s'] * 1e3:.2f} ms | — | |")
    return "\n".join(out)


def startup(res: dict) -> str:
    sec, ratio, best = res["seconds"], res["ratios"], res["ratios_best"]
    rows = [("`sevis --help`", "help", "import_torch", 0.3), ("`sevis models`", "models", "import_torch", 0.3),
            ("`sevis predict x.png --top 0` (usage error)", "usage_error", "import_torch", 0.3),
            ("`sevis predict garment.png` (embedded model)", "predict", "import_torch_forward", 1.5)]
    base = {"import_torch": '`python -c "import torch"`', "import_torch_forward": "import torch + one forward pass"}
    out = [f'`python -c "import torch"`: {sec["import_torch"]:.2f} s; import torch + one forward pass of the embedded '
           f'network: {sec["import_torch_forward"]:.2f} s (medians of {res["rounds"]} interleaved rounds, fresh '
           "processes).", "", "| command | time | against | ratio (fastest rounds) | target | met |",
           "|---|---:|---|---:|---:|:-:|"]
    for label, key, against, target in rows:
        out.append(f"| {label} | {sec[key]:.2f} s | {base[against]} | {ratio[key]:.2f}× ({best[key]:.2f}×) | "
                   f"≤ {target}× | {_ok(ratio[key] <= target)} |")
    return "\n".join(out)


def distributed(res: dict) -> str:
    ips, wall = res["img_per_s"], res["best_wall_s"]
    pips, ps = res["pass_img_per_s"], res["best_pass_s"]
    out = [f"{res['images']:,} PNG files, 10 classes; end to end per run (start, model load, decoding, inference, "
           f"all-reduce, JSON), fastest of {res['rounds']}.", "",
           "| processes | decoding workers | wall, whole command | images/s | the pass alone | images/s |",
           "|---:|---:|---:|---:|---:|---:|",
           f"| 1 | 2 | {wall['1']:.1f} s | {ips['1']:.0f} | {ps['1']:.1f} s | {pips['1']:.0f} |",
           f"| 2 (`torchrun --nproc-per-node 2`, gloo) | 1 each | {wall['2']:.1f} s | {ips['2']:.0f} | "
           f"{ps['2']:.1f} s | {pips['2']:.0f} |", "",
           f"2 processes / 1: {res['speedup_2_vs_1']:.2f}× the throughput end to end, "
           f"{res['pass_speedup_2_vs_1']:.2f}× for the pass alone; the two files' sums differ by at most "
           f"{res['max_abs_diff_sums']:.1e} (float32 forward passes in different batches), counts equal: "
           f"{res['same_counts']}. Every process runs one compute thread (OMP_NUM_THREADS=1, as torchrun sets it); "
           f"one process with torch's default threads took {res['one_process_default_threads_s'][0]:.1f} s "
           f"({res['one_process_default_threads_s'][1]:.1f} s for the pass)."]
    return "\n".join(out)


def load(res: dict) -> str:
    if "error" in res:
        return f"Not run: {res['error']}"
    s = lambda v: "—" if v is None else f"{v:.2f} s"  # noqa: E731
    mib = lambda v: "—" if v is None else f"{v:,.0f} MiB"  # noqa: E731
    cores = (f"server pinned to core(s) {', '.join(map(str, res['server_cores']))}, clients to "
             f"{', '.join(map(str, res['client_cores']))}" if res.get("server_cores") else
             "one usable core: server and clients share it (no pinning)")
    out = [f"`sevis serve --replicas R` on 127.0.0.1 driven by protocol-level clients (Streamlit's WebSocket and "
           f"upload protocol, no browser); {cores}. One interaction: upload a garment image (Live inference runs "
           f"on it), then open {res['view'] or 'no view'}. Server CPU is the whole process tree's (replicas, nginx), "
           f"from /proc/<pid>/stat; memory its summed PSS (shared pages counted once). Predictions checked against "
           f"the expected one per image: "
           f"{'yes' if res.get('checked_predictions') else 'no (no dataset: file names only)'}. Load average before: "
           + ", ".join(f"{x:.1f}" for x in res["load_average_before"]) + ".", ""]
    runs = [r for r in res["runs"] if "error" not in r]
    for r in res["runs"]:
        if "error" in r:
            out.append(f"- {r['replicas']} replica(s): failed: {r['error'][:300]}")
    if not runs:
        return "\n".join(out)
    head = "| what | " + " | ".join(f"{r['replicas']} replica{'s' if r['replicas'] > 1 else ''}" for r in runs) + " |"
    rows = [head, "|---|" + "---:|" * len(runs)]

    def row(label, f):
        rows.append(f"| {label} | " + " | ".join(f(r) for r in runs) + " |")

    med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    n = res["sessions"]
    row("start-up (all replicas answering)", lambda r: s(r["startup_s"]))
    row("server memory at start", lambda r: mib(r["rss_start_mib"]))
    row("cold: first interaction after start, server CPU", lambda r: s(r["cold"]["cpu_s"]))
    row(f"sequential ({res['sequential_sessions']} sessions alone): server CPU per page load (median)",
        lambda r: s(med(r["sequential"]["page_load_cpu_s"])))
    row("**server CPU per interaction, warm (median)** (target ≤ 0.5 s)",
        lambda r: f"**{s(r['cpu_per_interaction_s'])}**")
    row("… of which the upload / the view (median)", lambda r: f"{s(med(r['sequential'].get('upload_cpu_s')))} / "
                                                             f"{s(med(r['sequential'].get('view_cpu_s')))}")
    row("… upload / view latency alone (median)",
        lambda r: f"{s(med(r['sequential']['upload_s']))} / {s(med(r['sequential']['view_s']))}")
    row("students per core: all clicking at once, answered within 10 s", lambda r: _f(
        r["students_per_core"].get("burst_within_10s"), 1))
    row("students per core: one interaction a minute each (core fully busy)", lambda r: _f(
        r["students_per_core"].get("one_per_minute"), 0))
    c = lambda r: r["concurrent"]  # noqa: E731
    row(f"{n} concurrent sessions: connected / interactions done",
        lambda r: f"{c(r)['connected']} / {c(r)['interactions']}")
    row(f"… page loads of all {n} at once: wall / server CPU", lambda r: f"{s(c(r)['connect_wall_s'])} / "
                                                                       f"{s(c(r)['connect_cpu_s'])}")
    row("… **interaction p50 / p95 / max** (target p95 ≤ 10 s)", lambda r: f"{s(c(r)['interaction_p50_s'])} / "
        f"**{s(c(r)['interaction_p95_s'])}** / {s(c(r)['interaction_max_s'])}")
    row("… upload p50 / p95; view p50 / p95", lambda r: f"{s(c(r)['upload_p50_s'])} / {s(c(r)['upload_p95_s'])}; "
        f"{s(c(r)['view_p50_s'])} / {s(c(r)['view_p95_s'])}")
    row("… server CPU per interaction under load", lambda r: s(c(r)["cpu_per_interaction_s"]))
    row("… wall time of all interactions; server CPU; clients' CPU", lambda r: f"{s(c(r)['wall_s'])}; "
        f"{s(c(r)['server_cpu_s'])}; {s(c(r)['client_cpu_s'])}")
    row("… **errors / cross-talk** (target 0 / 0)", lambda r: f"**{len(c(r)['errors'])} / {len(c(r)['crosstalk'])}**")
    row("… server memory before / with all connected / peak / after the sessions closed",
        lambda r: f"{mib(c(r).get('rss_idle_mib'))} / {mib(c(r)['rss_before_mib'])} / {mib(c(r)['rss_peak_mib'])} / "
                  f"{mib(c(r)['rss_after_mib'])}")
    row("… server memory per session (peak − before) / sessions", lambda r: _f(c(r).get("rss_per_session_mib"), 1)
        + " MiB")
    if any("soak" in r for r in runs):
        row(f"soak, {res['soak_uploads']} uploads in one session: memory after first / last, upload p50",
            lambda r: (f"{mib(r['soak']['rss_mib'].get('1'))} / {mib(list(r['soak']['rss_mib'].values())[-1])}, "
                       f"{s(r['soak']['upload_p50_s'])}") if r.get("soak", {}).get("rss_mib") else "—")
    out += rows
    for r in runs:
        items = (r["concurrent"]["errors"] + r["concurrent"]["crosstalk"] + r["sequential"]["errors"]
                 + r["cold"]["errors"])
        if items:
            out += ["", f"{r['replicas']} replica(s), first problems:", *[f"- {x[:200]}" for x in items[:8]]]
        errs = r.get("server_errors", {}).get("counts")
        if errs:
            out += ["", f"{r['replicas']} replica(s), uncaught errors in the server's logs:",
                    *[f"- {n}× `{line}`" for line, n in errs.items()]]
    return "\n".join(out)


TITLES = {"overhead": "1. Recorder overhead (median per pass; ratios are medians of paired rounds)",
          "peers": "2. Capturing every SE gate output: sevis beside captum and torchlens",
          "stats": "3. Dataset statistics (embedded model, Fashion-MNIST test split, batch 250)",
          "latency": "4. Interactive latency (embedded model)",
          "startup": "5. Command-line start-up (fresh processes)",
          "distributed": "6. `sevis stats` over a folder: one process and two (torchrun)",
          "load": "7. The served app under load, measured at the server (protocol-level clients, pinned cores)",
          "folder": "8. Memory of a large labelled folder (streamed in batches)"}
RENDER = {"overhead": overhead, "peers": peers, "stats": dataset, "latency": latency, "startup": startup,
          "distributed": distributed, "load": load, "folder": lambda res: _folder_report(res)}


def _folder_report(res: dict) -> str:
    from .folder_memory import report
    return report(res)


def section(key: str, data) -> str:
    return f"## {TITLES[key]}\n\n{RENDER[key](data)}\n"


def render(results: dict) -> str:
    parts = ["## Machine\n\n" + machine(results["machine"]) + "\n"]
    parts += [section(k, results[k]) for k in TITLES if k in results]
    return "\n".join(parts)
