"""End to end in a real browser: `streamlit run app.py` on localhost, Debian's headless Chromium driven by
playwright uploads an image, sees the prediction and the excitation plot, and downloads a figure.
The test starts and stops the server itself."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.server import StreamlitServer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROME_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install chromium)"),
              pytest.mark.browser]
STARTUP_S = 240
STEP_MS = 300_000  # generous: the machine may be busy


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        with StreamlitServer(startup_s=STARTUP_S, log_dir=tmp_path_factory.mktemp("streamlit")) as running:
            yield running.url
    except RuntimeError as e:  # it did not start: say why, with its log
        pytest.fail(str(e))


def _garment_png(path: Path) -> Path:
    a = np.zeros((28, 28), np.uint8)
    a[3:26, 8:20] = 210  # a long narrow garment: trouser-like
    a[14:26, 13:15] = 0
    Image.fromarray(a, "L").save(path)
    return path


def _wait_idle(page) -> None:
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=STEP_MS)


def test_upload_predict_plot_download(server, tmp_path):
    image = _garment_png(tmp_path / "my_trousers.png")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
            page.goto(server, timeout=STEP_MS)
            page.wait_for_selector("text=Inside Squeeze-and-Excitation", timeout=STEP_MS)
            _wait_idle(page)
            # Upload through the sidebar's file input.
            page.locator('[data-testid="stSidebar"] input[type="file"]').first.set_input_files(str(image))
            page.wait_for_selector("text=my_trousers.png", timeout=STEP_MS)
            _wait_idle(page)
            # The prediction and the excitation plots for the uploaded image.
            pred = page.get_by_text("Prediction:").first
            pred.wait_for(timeout=STEP_MS)
            assert page.locator(".js-plotly-plot").count() >= 3
            heat = page.locator(".js-plotly-plot", has_text="Excitations at every SE block: my_trousers.png")
            heat.wait_for(timeout=STEP_MS)
            assert heat.locator(".heatmaplayer, .hm").count() + heat.locator("image").count() >= 1
            page.screenshot(path=str(tmp_path / "e2e.png"))
            # Download the heat strip as PNG (rendered on click by kaleido + Chromium on the server).
            popovers = page.get_by_role("button", name="⬇ Download")
            popovers.nth(1).click()  # 0: top-5, 1: heat strip
            panel = page.locator('[data-testid="stPopoverBody"]').last
            panel.wait_for(timeout=STEP_MS)
            with page.expect_download(timeout=STEP_MS) as info:
                panel.get_by_role("button", name="PNG").click()
            download = info.value
            assert download.suggested_filename == "my_trousers_heat_strip.png"
            data = Path(download.path()).read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
            w, h = Image.open(io.BytesIO(data)).size
            assert w >= 1000 and h >= 300
            # And the data behind it.
            with page.expect_download(timeout=STEP_MS) as info:
                panel.get_by_role("button", name="CSV").click()
            csv = Path(info.value.path()).read_text()
            assert csv.splitlines()[0] == "image,block,depth,channel,s"
            assert "my_trousers.png,SE_2_1,0,0," in csv
        finally:
            browser.close()
