"""Screenshots of every app view, as a new user sees them: `python docs/screenshots/take.py [--sizes 1280x800
1920x1080 390x844] [--views Tour "Class × depth" …] [--lecture] [--tour-steps] [--out DIR]`. Starts
`streamlit run app.py`, drives Debian's Chromium (playwright), opens each view by its pill in the page's grouped
navigation and writes docs/screenshots/<n>_<view>_<W>x<H>.png (the whole page).

--lecture switches Lecture mode on first and shoots what the projector shows, the first screen only
(<n>_<view>_<W>x<H>_lecture.png): the figure must be on it. A phone size (narrower than 640 px) is shot without
Lecture mode, as a student's phone shows the page. --tour-steps shoots every step of the Tour
(<n>_tour_step<k>_<W>x<H>….png), pressing Next between them."""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # bench.server, when run as a script
from bench.server import StreamlitServer  # noqa: E402

OUT = Path(__file__).resolve().parent
# The views in the navigation's order; a file keeps the number the README's links use.
VIEWS = ["Tour", "Live inference", "Compare", "Class × depth", "Inside a block", "Channel", "SE knock-out",
         "Architecture", "Ablations", "Architectures", "Training", "Export"]
NUMBERS = {"Live inference": 1, "Compare": 2, "Class × depth": 3, "SE knock-out": 4, "Inside a block": 5,
           "Channel": 6, "Architecture": 7, "Ablations": 8, "Architectures": 9, "Tour": 10, "Training": 11,
           "Export": 12}
PHONE_WIDTH = 640  # the page's phone layout starts below this width (sevis/app/style.py)

BUSY = '[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-testid="stProgress"]'


def _wait_idle(page, timeout_s: float = 900) -> None:
    """Wait until Streamlit has finished the current script run: no status widget, spinner or progress bar
    for 3 s in a row."""
    deadline = time.time() + timeout_s
    time.sleep(2)
    quiet = 0
    while time.time() < deadline and quiet < 3:
        quiet = quiet + 1 if page.locator(BUSY).count() == 0 else 0
        time.sleep(1)


def open_view(page, title: str) -> None:
    """Click the view's pill in the grouped navigation (a no-op when it is open already) and wait for the run."""
    pill = page.locator(".st-key-nav").get_by_role("radio", name=title, exact=True)  # each group is a radio group
    if pill.get_attribute("aria-checked") != "true":
        pill.click()
    _wait_idle(page)


def shoot(page, path: Path, width: int, height: int, whole_page: bool) -> None:
    """Write a screenshot: the whole page (Streamlit scrolls inside its main container, so the viewport grows to
    the content first) or the first screen only."""
    if whole_page:
        tall = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                             "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 0)")
        page.set_viewport_size({"width": width, "height": max(height, int(tall) + 40)})
        time.sleep(2)
    page.screenshot(path=str(path), full_page=whole_page)
    page.set_viewport_size({"width": width, "height": height})
    print("wrote", path, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["1280x800", "1920x1080"])
    ap.add_argument("--views", "--tabs", nargs="+", default=VIEWS, dest="views")
    ap.add_argument("--lecture", action="store_true",
                    help="switch lecture mode on first and shoot the first screen (file names get _lecture)")
    ap.add_argument("--tour-steps", action="store_true", help="shoot every step of the Tour")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with StreamlitServer() as server:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for size in args.sizes:
                w, h = (int(v) for v in size.split("x"))
                phone = w < PHONE_WIDTH
                lecture = args.lecture and not phone
                suffix = "_lecture" if lecture else ""
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(server.url, timeout=600_000)
                _wait_idle(page)
                if lecture:
                    page.locator('[data-testid="stSidebar"]').get_by_text("Lecture mode").click()
                    _wait_idle(page)
                for view in args.views:
                    open_view(page, view)
                    name = re.sub(r"[^a-z0-9]+", "_", view.lower()).strip("_")
                    stem = f"{NUMBERS[view]}_{name}"
                    if view == "Tour" and args.tour_steps:
                        step = 1
                        while True:
                            shoot(page, args.out / f"{stem}_step{step}_{w}x{h}{suffix}.png", w, h, not lecture)
                            nxt = page.get_by_role("button", name="Next →")
                            if nxt.count() == 0 or nxt.first.is_disabled():
                                break
                            nxt.first.click()
                            _wait_idle(page)
                            step += 1
                        continue
                    shoot(page, args.out / f"{stem}_{w}x{h}{suffix}.png", w, h, not lecture)
                page.close()
            browser.close()


if __name__ == "__main__":
    main()
