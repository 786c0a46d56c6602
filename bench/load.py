"""7. The served app under load: `streamlit run app.py` on localhost, driven by headless Chromium (playwright,
one browser, one context per session).

- Load: N concurrent sessions (default 8) load the page, then upload at the same moment, each its own distinct
  images, one per round: upload → rendered plots (the heat strip titled with that file name, at least three
  plots, the script idle) is timed per upload (p50/p95 over all sessions and rounds). After its first upload
  every session opens every view (tab). After each step the page is checked for exception boxes and error
  alerts, for its own current file name and for any other session's file name (cross-talk).
- Soak: M sequential uploads (default 200) in one session, each a new distinct image replacing the previous
  one (removed from the uploader first, as a user does); the server's RSS after the first upload, after 50 and
  at the end.

Classroom scale: `--sessions 30 --views "Class × depth"` (at most MAX_SESSIONS sessions, one Chromium, against a
server bound to 127.0.0.1 only) has every session upload and then open Class × depth only; the server's RSS is
sampled every half second during the concurrent part (its peak is reported).

Server RSS is read from /proc/<pid>/status. Not a test: nothing is asserted; errors and cross-talk are counted.
"""
from __future__ import annotations

import asyncio
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from .server import StreamlitServer

CHROMIUM = os.environ.get("CHROME_PATH") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STEP_MS = 600_000  # one step may wait this long: the machine may be busy
MAX_SESSIONS = 30  # a classroom; more browser contexts than this would measure the client machine, not the server
LOOPBACK = ("127.0.0.1", "::1", "localhost")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
RUNNING = '[data-testid="stApp"][data-test-script-state="running"]'


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


# ----------------------------------------------------------------------------------------- page steps
@dataclass
class SessionLog:
    """What one browser session saw."""

    name: str
    upload_s: list[float] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    error_alerts: list[str] = field(default_factory=list)
    crosstalk: list[str] = field(default_factory=list)
    missing_own: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def idle(page, expect_run: bool = True) -> None:
    """Wait until the script run a step triggered has finished."""
    from playwright.async_api import TimeoutError as PWTimeout
    if expect_run:
        try:
            await page.wait_for_selector(RUNNING, timeout=1500)
        except PWTimeout:
            pass  # already over (or it never started)
    await page.wait_for_selector(IDLE, timeout=STEP_MS)


async def check(page, log: SessionLog, step: str, own: str, others: list[str]) -> None:
    """Record exception boxes, error alerts, a missing own file name and any other session's file name."""
    for box in await page.locator('[data-testid="stException"]').all():
        log.exceptions.append(f"{step}: {(await box.inner_text())[:200]}")
    for box in await page.locator('[data-testid="stMain"] [data-testid="stAlertContentError"]').all():
        log.error_alerts.append(f"{step}: {(await box.inner_text())[:200]}")
    text = await page.locator('[data-testid="stApp"]').text_content() or ""
    if own not in text:
        log.missing_own.append(f"{step}: {own}")
    log.crosstalk += [f"{step}: saw {o}" for o in others if o in text]


async def upload(page, name: str, data: bytes, previous: str | None) -> float:
    """Replace `previous` (if any) by `name` in the sidebar uploader; return seconds until its plots are rendered."""
    if previous:
        await page.get_by_role("button", name=f"Remove {previous}").click()
        await page.get_by_role("button", name=f"Remove {previous}").wait_for(state="detached", timeout=STEP_MS)
        await idle(page)
    t0 = time.perf_counter()
    await page.locator('[data-testid="stSidebar"] input[type="file"]').first.set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    await page.locator(".js-plotly-plot", has_text=f"Excitations at every SE block: {name}").wait_for(timeout=STEP_MS)
    await page.wait_for_selector(IDLE, timeout=STEP_MS)
    await page.locator(".js-plotly-plot").nth(2).wait_for(timeout=STEP_MS)
    return time.perf_counter() - t0


async def open_view(page, title: str) -> None:
    """Click the tab `title` and wait for its run to finish."""
    tab = page.get_by_role("tab", name=title, exact=True)
    await tab.click()
    await page.wait_for_selector(f'[role="tab"][aria-selected="true"]:has-text("{title}")', timeout=STEP_MS)
    await idle(page)


async def new_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(url, timeout=STEP_MS)
    await page.wait_for_selector("text=Inside Squeeze-and-Excitation", timeout=STEP_MS)
    await idle(page, expect_run=False)
    return context, page


# ----------------------------------------------------------------------------------------- load
async def _session(browser, url: str, i: int, n: int, rounds: int, start: asyncio.Event, ready: list,
                   views: list[str] | None = None) -> SessionLog:
    token = f"sess{i:02d}_"
    others = [f"sess{k:02d}_" for k in range(n) if k != i]
    log = SessionLog(token)
    context = None
    try:
        context, page = await new_page(browser, url)
        ready.append(i)
        await start.wait()
        previous = None
        for r in range(rounds):
            name = f"{token}r{r:02d}.png"
            if r:
                await open_view(page, "Live inference")
            log.upload_s.append(await upload(page, name, garment_png(1000 * (i + 1) + r), previous))
            previous = name
            await check(page, log, f"upload {r}", name, others)
            if r == 0:
                titles = views or [await t.inner_text() for t in await page.get_by_role("tab").all()][1:]
                for title in titles:
                    await open_view(page, title)
                    log.views.append(title)
                    await check(page, log, title, name, others)
    except Exception as e:  # noqa: BLE001 a failed session is reported, not fatal
        log.failures.append(f"{type(e).__name__}: {str(e)[:300]}")
    finally:
        if context is not None:
            await context.close()
    return log


async def _sample_rss(server: StreamlitServer, samples: list[float], every_s: float = 0.5) -> None:
    """Append the server's RSS every `every_s` seconds until cancelled."""
    while True:
        try:
            samples.append(server.rss())
        except (OSError, KeyError):
            return
        await asyncio.sleep(every_s)


async def _load(url: str, sessions: int, rounds: int, views: list[str] | None = None,
                server: StreamlitServer | None = None) -> tuple[list[SessionLog], float, list[float]]:
    from playwright.async_api import async_playwright
    samples: list[float] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            start, ready = asyncio.Event(), []
            tasks = [asyncio.create_task(_session(browser, url, i, sessions, rounds, start, ready, views))
                     for i in range(sessions)]
            while len(ready) < sessions and not all(t.done() for t in tasks):
                await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            sampler = asyncio.create_task(_sample_rss(server, samples)) if server is not None else None
            start.set()
            logs = await asyncio.gather(*tasks)
            wall = time.perf_counter() - t0
            if sampler is not None:
                sampler.cancel()
            return logs, wall, samples
        finally:
            await browser.close()


async def _soak(url: str, uploads: int, server: StreamlitServer, every: int = 10) -> dict:
    from playwright.async_api import async_playwright
    out: dict = {"rss_mib": {}, "upload_s": [], "exceptions": [], "crosstalk": [], "failures": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            context, page = await new_page(browser, url)
            out["rss_mib"]["0"] = server.rss()
            previous = None
            for k in range(1, uploads + 1):
                name = f"soak_{k:04d}.png"
                try:
                    out["upload_s"].append(await upload(page, name, garment_png(10_000_000 + k), previous))
                except Exception as e:  # noqa: BLE001
                    out["failures"].append(f"upload {k}: {type(e).__name__}: {str(e)[:300]}")
                    break
                previous = name
                if k == 1 or k % every == 0 or k == uploads:
                    out["rss_mib"][str(k)] = server.rss()
                    if k % 50 == 0:
                        print(f"  soak: {k} uploads, server RSS {out['rss_mib'][str(k)]:.0f} MiB", flush=True)
                    n_exc = await page.locator('[data-testid="stException"]').count()
                    if n_exc:
                        out["exceptions"].append(f"upload {k}: {n_exc} exception box(es)")
                    text = await page.locator('[data-testid="stApp"]').text_content() or ""
                    stale = [f"soak_{j:04d}.png" for j in range(max(1, k - every), k)]
                    out["crosstalk"] += [f"upload {k}: still shows {s}" for s in stale if s in text]
            await context.close()
        finally:
            await browser.close()
    return out


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def run(quick: bool = False, threads: int | None = None, sessions: int | None = None, soak: int | None = None,
        rounds: int | None = None, views: list[str] | None = None, env: dict | None = None) -> dict:
    """Run the load test and the soak against a fresh server (loopback only; at most MAX_SESSIONS sessions, each
    opening `views` after its first upload, every view when None); return the measurements."""
    sessions = min(sessions or (2 if quick else 8), MAX_SESSIONS)
    soak = soak if soak is not None else (20 if quick else 200)
    rounds = rounds or (1 if quick else 3)
    if not Path(CHROMIUM).exists():
        return {"error": f"needs Chromium at {CHROMIUM} (apt-get install chromium)"}
    server = StreamlitServer(env=env).start()
    if urlparse(server.url).hostname not in LOOPBACK:
        server.stop()
        return {"error": f"the load benchmark drives loopback servers only, not {server.url}"}
    out: dict = {"sessions": sessions, "rounds": rounds, "soak_uploads": soak, "views_asked": views}
    try:
        out["rss_start_mib"] = server.rss()
        print(f"  load: {sessions} sessions × {rounds} uploads against {server.url}…", flush=True)
        logs, wall, samples = asyncio.run(_load(server.url, sessions, rounds, views, server))
        out["rss_peak_load_mib"] = max(samples) if samples else None
        print(f"  load: done in {wall:.0f} s; soak: {soak} uploads…", flush=True)
        out["rss_after_load_mib"] = server.rss()
        times = [t for log in logs for t in log.upload_s]
        out["load"] = {
            "wall_s": wall, "uploads": len(times), "upload_p50_s": _pct(times, 50), "upload_p95_s": _pct(times, 95),
            "upload_max_s": max(times) if times else None,
            "first_round_p50_s": _pct([log.upload_s[0] for log in logs if log.upload_s], 50),
            "views_opened": sum(len(log.views) for log in logs),
            "views": sorted({v for log in logs for v in log.views}),
            "exceptions": [e for log in logs for e in log.exceptions],
            "error_alerts": sorted({e.split(": ", 1)[1] for log in logs for e in log.error_alerts}),
            "crosstalk": [f"{log.name} {c}" for log in logs for c in log.crosstalk],
            "missing_own": [f"{log.name} {c}" for log in logs for c in log.missing_own],
            "failures": [f"{log.name} {f}" for log in logs for f in log.failures],
        }
        if soak:
            t0 = time.perf_counter()
            s = asyncio.run(_soak(server.url, soak, server))
            s["wall_s"] = time.perf_counter() - t0
            rss = s["rss_mib"]
            first, last = rss.get("1"), rss[max(rss, key=int)]
            at50 = rss.get("50")
            s.update({"rss_first_upload_mib": first, "rss_after_50_mib": at50, "rss_end_mib": last,
                      "end_over_first": last / first if first else None, "end_over_50": last / at50 if at50 else None,
                      "uploads_done": len(s["upload_s"]), "upload_p50_s": _pct(s["upload_s"], 50),
                      "upload_p95_s": _pct(s["upload_s"], 95)})
            out["soak"] = s
        out["rss_end_mib"] = server.rss()
    finally:
        server.stop()
    out["server_log_tail"] = server.log_path.read_text()[-2000:]
    return out
