"""Full-page screenshots of every app view, as a new user sees them: `python docs/screenshots/take.py [--sizes
1280x800 1920x1080] [--lecture] [--out DIR]`. Starts `streamlit run app.py`, drives Debian's Chromium (playwright),
writes docs/screenshots/<n>_<view>_<W>x<H>.png."""
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
TABS = ["Live inference", "Compare", "Class × depth", "SE knock-out", "Inside a block", "Channel", "Architecture",
        "Ablations", "Architectures", "Tour", "Training", "Export"]


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["1280x800", "1920x1080"])
    ap.add_argument("--tabs", nargs="+", default=TABS)
    ap.add_argument("--lecture", action="store_true", help="switch lecture mode on first (file names get _lecture)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_lecture" if args.lecture else ""
    with StreamlitServer() as server:
        url = server.url
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for size in args.sizes:
                w, h = (int(v) for v in size.split("x"))
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(url, timeout=600_000)
                _wait_idle(page)
                if args.lecture:
                    page.locator('[data-testid="stSidebar"]').get_by_text("Lecture mode").click()
                    _wait_idle(page)
                for tab in args.tabs:
                    page.get_by_role("tab", name=tab, exact=True).click()
                    _wait_idle(page)
                    n = TABS.index(tab) + 1
                    name = re.sub(r"[^a-z0-9]+", "_", tab.lower()).strip("_")
                    # Streamlit scrolls inside its main container: grow the viewport to the content to see it all.
                    tall = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                                         "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 0)")
                    page.set_viewport_size({"width": w, "height": max(h, int(tall) + 40)})
                    time.sleep(2)
                    shot = args.out / f"{n}_{name}_{w}x{h}{suffix}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    page.set_viewport_size({"width": w, "height": h})
                    print("wrote", shot, flush=True)
                page.close()
            browser.close()


if __name__ == "__main__":
    main()
