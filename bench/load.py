"""7. The served app under load, measured at the server: `sevis serve --replicas R` on 127.0.0.1, driven by
protocol-level clients (bench/protocol.py: Streamlit's own WebSocket and upload protocol, no browser).

The server (every process `sevis serve` starts: replicas, nginx) is pinned to the server cores and the clients to
the client cores (default: clients on core 0, the server on all others), so the clients cannot starve it; the
server's CPU seconds are read from /proc/<pid>/stat of its whole process tree, its memory as the tree's summed PSS
(/proc/<pid>/smaps_rollup: pages the replicas share, such as torch's libraries, count once).

One student interaction is an upload of a garment image (the Live inference view runs on it) plus opening a
view (default Class × depth, from its prepared results). For each replica count:

- cold: one session, the first interaction after start (model load and first-call costs included);
- sequential: K sessions one after another, each alone on the server: server CPU per page load and per
  interaction (median), upload and view latency;
- concurrent: N sessions connect, then all interact at the same moment: p50/p95/max latency per interaction,
  server CPU per interaction under load, peak and after memory, errors (failed steps, exception elements,
  error alerts) and cross-talk (a session seeing another session's file name, or a prediction that is not its own
  image's: every session uploads a different Fashion-MNIST test image whose expected prediction, computed here as
  the app computes it, differs from every other's);
- soak (optional): M sequential uploads in one session; the server's memory after each tenth.

Students per core are derived from the warm CPU per interaction. Not a test: nothing is asserted.
"""
from __future__ import annotations

import asyncio
import io
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from .protocol import ProtocolError, RunResult, StreamlitSession
from .server import ROOT, free_port

MAX_SESSIONS = 200
VIEW = "Class × depth"
TARGET_P95_S = 10.0  # the target for 30 concurrent sessions
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------- images
def garment_png(seed: int) -> bytes:
    """A distinct 28×28 grey garment-like PNG for every seed (a bright block of random size, place and texture)."""
    rng = np.random.default_rng(seed)
    a = np.zeros((28, 28), np.uint8)
    top, left = rng.integers(1, 8, size=2)
    h, w = rng.integers(12, 26 - top), rng.integers(8, 26 - left)
    a[top:top + h, left:left + w] = rng.integers(120, 255)
    a = np.clip(a.astype(int) + rng.integers(-30, 30, size=a.shape) * (a > 0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a, "L").save(buf, "PNG")
    return buf.getvalue()


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, "L").save(buf, "PNG")
    return buf.getvalue()


def session_images(n: int, offset: int = 0) -> list[tuple[bytes, tuple[str, str] | None]]:
    """Return n (PNG, expected prediction) pairs: Fashion-MNIST test images whose (label, "p%") as the app shows
    it for the default model differs from every other's, so a session shown another's result is caught. Without
    the dataset: synthetic garments and no expected prediction (then only file names reveal cross-talk)."""
    try:
        import torch

        from sevis.analysis.images import analyse_images, decode_uploads
        from sevis.data.fashion_mnist import load_fashion_mnist
        from sevis.models.zoo import load_model
        test = load_fashion_mnist("test")
    except Exception:  # noqa: BLE001 no dataset package: the names still show cross-talk
        return [(garment_png(offset + i), None) for i in range(n)]
    torch.set_num_threads(1)  # on the client core
    loaded = load_model("embedded")
    out: list[tuple[bytes, tuple[str, str]]] = []
    seen: set[tuple[str, str]] = set()
    start = 0
    while len(out) < n and start < len(test.images):
        pngs = [_png(test.images[i]) for i in range(start + offset, min(start + offset + 64, len(test.images)))]
        start += 64
        images, _ = decode_uploads([(f"x{i}.png", p) for i, p in enumerate(pngs)], limit=len(pngs))
        for png, r in zip(pngs, analyse_images(loaded, images)):
            key = (r.topk[0][0], f"{r.topk[0][1]:.1%}")
            if key not in seen and len(out) < n:
                seen.add(key)
                out.append((png, key))
    return out


# ----------------------------------------------------------------------------------------- the server's process tree
def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()  # fields after the command name (which may hold spaces)


def process_tree(root: int) -> list[int]:
    """Return `root` and all its descendants' pids (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def tree_cpu_s(root: int) -> float:
    """Return the CPU seconds (user + system, with reaped children's) the process tree under `root` has used."""
    total = 0
    for pid in process_tree(root):
        try:
            f = _stat(pid)
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
    return total / CLK_TCK


def _memory_kib(pid: int) -> int:
    """Return a process's proportional set size (KiB; shared pages split among the processes sharing them, so
    replicas that map the same torch libraries are not counted twice), or its RSS where the kernel has no PSS."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as fh:
                return next(int(line.split()[1]) for line in fh if line.startswith(key))
        except (OSError, StopIteration):
            continue
    return 0


def tree_rss_mib(root: int) -> float:
    """Return the memory (MiB) of the process tree under `root`: the sum of its processes' PSS."""
    return sum(_memory_kib(pid) for pid in process_tree(root)) / 1024


class ServedApp:
    """`sevis serve --replicas R` on a free port of 127.0.0.1, pinned to `cores` (its children inherit it)."""

    def __init__(self, replicas: int, cores: set[int] | None, startup_s: float = 600) -> None:
        self.replicas, self.cores, self.startup_s = replicas, cores, startup_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = b""
        self.log_dir = Path(tempfile.mkdtemp(prefix="sevis-bench-logs-"))

    def start(self) -> "ServedApp":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.pop("OMP_NUM_THREADS", None)  # `sevis serve` sets each replica's torch threads (one each)
        cores = self.cores
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sevis.cli.main", "serve", "--replicas", str(self.replicas), "--port",
             str(self.port), "--address", "127.0.0.1", "--log-dir", str(self.log_dir)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
        deadline = time.monotonic() + self.startup_s
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            if self.proc.poll() is not None:
                self.log = self.proc.stdout.read()
                raise RuntimeError(f"sevis serve exited: {self.log.decode(errors='replace')[-800:]}")
            try:
                with opener.open(f"{self.url}/_stcore/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sevis serve did not answer in time")
            time.sleep(0.5)

    def cpu_s(self) -> float:
        return tree_cpu_s(self.proc.pid)

    def tracebacks(self) -> dict:
        """Return the replicas' uncaught errors: {"counts": {last line: n}, "first": the first whole traceback}."""
        counts: dict[str, int] = {}
        first = ""
        for path in sorted(self.log_dir.glob("replica-*.log")):
            lines = path.read_text(errors="replace").splitlines()
            for k, line in enumerate(lines):
                if not line.startswith("Traceback"):
                    continue
                end = next((j for j in range(k + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), k)
                counts[lines[end][:200]] = counts.get(lines[end][:200], 0) + 1
                first = first or "\n".join(lines[k:end + 1])[-3000:]
        return {"counts": counts, "first": first}

    def rss_mib(self) -> float:
        return tree_rss_mib(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.log = self.proc.stdout.read() or self.log


# ----------------------------------------------------------------------------------------- one student
def _problems(run: RunResult, step: str) -> list[str]:
    return [f"{step}: exception {e}" for e in run.exceptions] + [f"{step}: error {e}" for e in run.error_alerts]


async def interact(s: StreamlitSession, name: str, png: bytes, expected, others: list[str], view: str,
                   cpu=None) -> dict:
    """Upload `png` as `name`, then open `view`; return latencies, problems and cross-talk seen (and, given the
    server's `cpu` clock, the server CPU seconds of each step)."""
    out: dict = {"errors": [], "crosstalk": []}
    c0 = cpu() if cpu else 0.0
    up = await s.upload(name, png)
    c1 = cpu() if cpu else 0.0
    out["upload_s"] = up.seconds
    out["errors"] += _problems(up, "upload")
    if not up.mentions(name):
        out["errors"].append(f"upload: own file name {name} not shown")
    got = up.prediction()
    if expected is not None and got is not None and (got[0], f"{got[1]:.1f}%") != expected:
        out["crosstalk"].append(f"prediction {got[0]} {got[1]:.1f}%, its own image gives {expected[0]} {expected[1]}")
    elif got is None:
        out["errors"].append("upload: no prediction shown")
    runs = [up]
    if view:
        v = await s.open_tab(view)
        out["view_s"] = v.seconds
        if cpu:
            out["view_cpu_s"] = cpu() - c1
        out["errors"] += _problems(v, view)
        runs.append(v)
    out["crosstalk"] += [f"saw {o}" for o in others if any(r.mentions(o) for r in runs)]
    out["interaction_s"] = out["upload_s"] + out.get("view_s", 0.0)
    if cpu:
        out["upload_cpu_s"] = c1 - c0
    return out


def _token(i: int) -> str:
    return f"sess{i:03d}_"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


# ----------------------------------------------------------------------------------------- phases
async def _sequential(app: ServedApp, images, k: int, view: str, first: int) -> dict:
    """k sessions one after another, each alone: server CPU of its page load and of its interaction."""
    load_cpu, inter_cpu, ups, views, errors, cross, up_cpu, view_cpu = [], [], [], [], [], [], [], []
    for j in range(k):
        i = first + j
        png, expected = images[i]
        c0 = app.cpu_s()
        try:
            async with StreamlitSession(app.url) as s:
                c1 = app.cpu_s()
                r = await interact(s, f"{_token(i)}seq.png", png, expected, [], view, app.cpu_s)
                c2 = app.cpu_s()
        except (ProtocolError, OSError) as e:
            errors.append(f"{_token(i)}: {type(e).__name__}: {e}")
            continue
        load_cpu.append(c1 - c0)
        inter_cpu.append(c2 - c1)
        ups.append(r["upload_s"])
        views.append(r.get("view_s", 0.0))
        up_cpu.append(r["upload_cpu_s"])
        view_cpu.append(r.get("view_cpu_s", 0.0))
        errors += r["errors"]
        cross += r["crosstalk"]
    return {"sessions": k, "page_load_cpu_s": load_cpu, "interaction_cpu_s": inter_cpu, "upload_s": ups,
            "view_s": views, "upload_cpu_s": up_cpu, "view_cpu_s": view_cpu, "errors": errors, "crosstalk": cross}


async def _concurrent(app: ServedApp, images, n: int, view: str, first: int) -> dict:
    """n sessions connect, then all interact at once; latency, server CPU and memory of the interactions."""
    tokens = [_token(first + j) for j in range(n)]
    sessions: list[StreamlitSession | None] = [None] * n
    connect_errors: list[str] = []

    async def connect(j: int) -> None:
        s = StreamlitSession(app.url)
        try:
            await s.connect()
            sessions[j] = s
        except (ProtocolError, OSError) as e:
            connect_errors.append(f"{tokens[j]}: connect: {type(e).__name__}: {e}")
            await s.close()

    rss_idle = app.rss_mib()
    c0, t0 = app.cpu_s(), time.monotonic()
    await asyncio.gather(*[connect(j) for j in range(n)])
    connect_wall, connect_cpu = time.monotonic() - t0, app.cpu_s() - c0
    rss_before = app.rss_mib()
    samples: list[float] = []

    async def sample() -> None:
        while True:
            samples.append(app.rss_mib())
            await asyncio.sleep(0.5)

    async def one(j: int) -> dict:
        s = sessions[j]
        png, expected = images[first + j]
        try:
            return await interact(s, f"{tokens[j]}up.png", png, expected, tokens[:j] + tokens[j + 1:], view)
        except (ProtocolError, OSError) as e:
            return {"errors": [f"{type(e).__name__}: {e}"], "crosstalk": [], "failed": True}

    live = [j for j in range(n) if sessions[j] is not None]
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    c1, t1 = app.cpu_s(), time.monotonic()
    sampler = asyncio.create_task(sample())
    results = await asyncio.gather(*[one(j) for j in live])
    wall, cpu = time.monotonic() - t1, app.cpu_s() - c1
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    sampler.cancel()
    peak = max(samples + [app.rss_mib()])
    for s in sessions:
        if s is not None:
            await s.close()
    await asyncio.sleep(2)  # the server ends the closed sessions
    done = [r for r in results if not r.get("failed")]
    inter = [r["interaction_s"] for r in done]
    return {
        "sessions": n, "connected": len(live), "connect_wall_s": connect_wall, "connect_cpu_s": connect_cpu,
        "wall_s": wall, "server_cpu_s": cpu,
        "client_cpu_s": (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime),
        "interactions": len(done), "cpu_per_interaction_s": cpu / len(done) if done else None,
        "interaction_p50_s": _pct(inter, 50), "interaction_p95_s": _pct(inter, 95),
        "interaction_max_s": max(inter) if inter else None,
        "upload_p50_s": _pct([r["upload_s"] for r in done], 50),
        "upload_p95_s": _pct([r["upload_s"] for r in done], 95),
        "view_p50_s": _pct([r.get("view_s", 0.0) for r in done], 50),
        "view_p95_s": _pct([r.get("view_s", 0.0) for r in done], 95),
        "errors": connect_errors + [f"{tokens[live[k]]}: {e}" for k, r in enumerate(results) for e in r["errors"]],
        "crosstalk": [f"{tokens[live[k]]}: {c}" for k, r in enumerate(results) for c in r["crosstalk"]],
        "rss_idle_mib": rss_idle, "rss_before_mib": rss_before, "rss_peak_mib": peak, "rss_after_mib": app.rss_mib(),
        "rss_per_session_mib": (peak - rss_idle) / len(live) if live else None,
    }


async def _soak(app: ServedApp, uploads: int, every: int = 10) -> dict:
    out: dict = {"rss_mib": {}, "upload_s": [], "errors": []}
    t0 = time.monotonic()
    async with StreamlitSession(app.url) as s:
        for k in range(1, uploads + 1):
            name = f"soak_{k:04d}.png"
            try:
                r = await s.upload(name, garment_png(10_000_000 + k))
            except (ProtocolError, OSError) as e:
                out["errors"].append(f"upload {k}: {type(e).__name__}: {e}")
                break
            out["upload_s"].append(r.seconds)
            out["errors"] += _problems(r, f"upload {k}")
            if k == 1 or k % every == 0 or k == uploads:
                out["rss_mib"][str(k)] = app.rss_mib()
    out["wall_s"] = time.monotonic() - t0
    out["upload_p50_s"] = _pct(out["upload_s"], 50)
    return out


def _one_server(replicas: int, server_cores, images, sessions: int, sequential: int, view: str,
                soak: int) -> dict:
    app = ServedApp(replicas, server_cores)
    t0 = time.monotonic()
    app.start()
    out: dict = {"replicas": replicas, "startup_s": time.monotonic() - t0}
    try:
        out["rss_start_mib"] = app.rss_mib()
        c0 = app.cpu_s()
        cold = asyncio.run(_sequential(app, images, 1, view, 0))
        out["cold"] = {"cpu_s": app.cpu_s() - c0, "upload_s": cold["upload_s"], "view_s": cold["view_s"],
                       "errors": cold["errors"]}
        print(f"  load, {replicas} replica(s): cold interaction done; {sequential} sequential…", flush=True)
        out["sequential"] = asyncio.run(_sequential(app, images, sequential, view, 1))
        print(f"  load, {replicas} replica(s): {sessions} concurrent sessions…", flush=True)
        out["concurrent"] = asyncio.run(_concurrent(app, images, sessions, view, 1 + sequential))
        if soak:
            out["soak"] = asyncio.run(_soak(app, soak))
        out["rss_end_mib"] = app.rss_mib()
    finally:
        app.stop()
        out["server_errors"] = app.tracebacks()
        shutil.rmtree(app.log_dir, ignore_errors=True)
    out["server_log_tail"] = app.log.decode(errors="replace")[-1500:]
    return out


def default_cores() -> tuple[set[int], set[int] | None]:
    """Return (client cores, server cores): clients on the first usable core, the server on all the others
    (on a single core: no pinning, and the numbers then include the clients)."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return set(usable), None
    return {usable[0]}, set(usable[1:])


def students_per_core(cpu_per_interaction: float | None) -> dict:
    """Derive class sizes from the server CPU one interaction costs: how many students one core answers within the
    10 s target when all click at the same moment, and how many it serves at one interaction a minute each."""
    if not cpu_per_interaction:
        return {}
    return {"burst_within_10s": TARGET_P95_S / cpu_per_interaction, "one_per_minute": 60.0 / cpu_per_interaction}


def run(quick: bool = False, threads: int | None = None, sessions: int | None = None, soak: int | None = None,
        replicas: list[int] | None = None, view: str | None = None, sequential: int | None = None,
        server_cores: set[int] | None = None, client_cores: set[int] | None = None) -> dict:
    """Measure the served app for each replica count (default 1 and 2); return the measurements."""
    sessions = min(sessions or (4 if quick else 30), MAX_SESSIONS)
    sequential = sequential if sequential is not None else (2 if quick else 5)
    soak = soak if soak is not None else (10 if quick else 0)
    replicas = replicas or [1, 2]
    view = VIEW if view is None else view
    c_default, s_default = default_cores()
    client_cores = client_cores or c_default
    server_cores = server_cores or s_default
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, client_cores)  # this thread and every thread it starts from now on
    try:
        print(f"  load: preparing {1 + sequential + sessions} distinct images on the client core(s)…", flush=True)
        images = session_images(1 + sequential + sessions)
        out: dict = {"sessions": sessions, "sequential_sessions": sequential, "view": view, "soak_uploads": soak,
                     "server_cores": sorted(server_cores) if server_cores else None,
                     "client_cores": sorted(client_cores), "checked_predictions": images[0][1] is not None,
                     "load_average_before": os.getloadavg(), "runs": []}
        for r in replicas:
            try:
                res = _one_server(r, server_cores, images, sessions, sequential, view, soak)
            except Exception as e:  # noqa: BLE001 one failed configuration is reported, the next still runs
                res = {"replicas": r, "error": f"{type(e).__name__}: {str(e)[:500]}"}
            seq = res.get("sequential", {}).get("interaction_cpu_s")
            res["cpu_per_interaction_s"] = statistics.median(seq) if seq else None
            res["students_per_core"] = students_per_core(res["cpu_per_interaction_s"])
            out["runs"].append(res)
        out["load_average_after"] = os.getloadavg()
        return out
    finally:
        os.sched_setaffinity(0, before)
