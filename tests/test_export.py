"""Export: file names, Chrome discovery, static images via kaleido, offline HTML, data, teaching pack, CLI."""
from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from sevis.errors import ExportError
from sevis.figures import export as E
from sevis.figures.plots import Panel
from sevis.views.architecture import architecture_panels
from sevis.views.live import model_input_image


def _panel(key: str = "fig6_class_means", title: str = "Mean excitation per class") -> Panel:
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0.2, 0.9, 0.5], name="Bag"))
    fig.update_layout(title=title, width=500, height=300)
    data = pd.DataFrame({"block": ["SE_5_1"] * 3, "channel": [0, 1, 2], "mean": [0.2, 0.9, 0.5]})
    return Panel(key, title, "What this figure shows, for students.", fig, data)


@pytest.fixture
def no_chrome(monkeypatch):
    monkeypatch.delenv("CHROME_PATH", raising=False)
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(E, "CHROME_PATHS", ())


# ---------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name, expected", [
    ("fig6 class means", "fig6_class_means.png"),
    ("../../etc/passwd", "etc_passwd.png"),
    ("/abs/path/x", "abs_path_x.png"),
    ("..", "figure.png"),
    ("", "figure.png"),
    ("T-shirt/top (reference #0)", "T-shirt_top_reference_0.png"),
    ("Ünïcödé café", "Unicode_cafe.png"),
    ("CON", "_CON.png"),
    (".hidden", "hidden.png"),
    ("x.png", "x.png"),
])
def test_safe_filename(name, expected):
    assert E.safe_filename(name, "png") == expected


def test_safe_filename_is_never_a_path():
    for evil in ("a/../../b", "..\\..\\win", "nul\x00byte", "a" * 500, "~/.ssh/id_rsa", "$(rm -rf)", "\n\t"):
        out = E.safe_filename(evil, "csv")
        assert "/" not in out and "\\" not in out and "\x00" not in out
        assert not out.startswith(".") and len(out) <= 85
        assert Path(out).name == out and out.endswith(".csv")


# ---------------------------------------------------------------------------------------- chrome
def test_find_chrome_prefers_env(monkeypatch, tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CHROME_PATH", str(fake))
    assert E.find_chrome() == str(fake)
    monkeypatch.delenv("CHROME_PATH")
    monkeypatch.setenv("BROWSER_PATH", str(fake))  # kaleido's own variable
    assert E.find_chrome() == str(fake)


def test_no_chrome_gives_clear_error_and_offers_html(no_chrome):
    assert E.find_chrome() is None
    assert not E.static_export_available()
    with pytest.raises(ExportError) as info:
        E.figure_to_image(_panel().figure, "png")
    msg = str(info.value)
    assert "Chrome" in msg and "HTML" in msg and "apt-get install chromium" in msg


def test_unknown_format():
    with pytest.raises(ExportError):
        E.figure_to_image(_panel().figure, "eps")
    with pytest.raises(ExportError):
        E.panel_bytes(_panel(), "docx")


@pytest.mark.browser
@pytest.mark.skipif(not E.static_export_available(), reason="needs kaleido and Chrome/Chromium")
def test_static_images_with_chromium():
    fig = _panel().figure
    png, svg, pdf = (E.figures_to_images([fig], fmt)[0] for fmt in ("png", "svg", "pdf"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in svg[:200] and b"Mean excitation per class" in svg
    assert pdf.startswith(b"%PDF")
    from PIL import Image
    assert Image.open(io.BytesIO(png)).size == (1000, 600)  # 500×300 at scale 2


# ---------------------------------------------------------------------------------------- html, data
def test_html_is_standalone_offline():
    html = E.figure_to_html(_panel().figure, "Fig <6>")
    assert html.lstrip().lower().startswith(("<!doctype html>", "<html"))
    assert "<title>Fig &lt;6&gt;</title>" in html
    assert len(html) > 1_000_000  # plotly.js itself is embedded…
    assert 'src="https://cdn.plot.ly' not in html and "cdn.plot.ly/plotly" not in html  # …not fetched


def test_csv_and_json_round_trip():
    p = _panel()
    back = pd.read_csv(io.StringIO(E.panel_bytes(p, "csv").decode()))
    pd.testing.assert_frame_equal(back, p.data)
    rows = json.loads(E.panel_bytes(p, "json"))
    assert rows[1] == {"block": "SE_5_1", "channel": 1, "mean": 0.9}


# ---------------------------------------------------------------------------------------- packs and files
def test_teaching_pack_without_chrome_still_has_every_figure(no_chrome):
    panels = [_panel(), _panel("depth_profile", "Class specificity against depth"), _panel("../evil", "Evil")]
    data = E.teaching_pack(panels, "Class × depth", ["png", "csv"], context="Model: test.")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        readme = zf.read(next(n for n in names if n.endswith("README.md"))).decode()
    folder = names[0].split("/")[0]
    assert all(n.startswith(folder + "/") and ".." not in n for n in names)
    assert {n.split("/", 1)[1] for n in names} >= {"README.md", "fig6_class_means.csv", "fig6_class_means.html",
                                                   "depth_profile.csv", "evil.csv"}
    assert not any(n.endswith(".png") for n in names)
    for text in ("Mean excitation per class", "Class specificity against depth", "What this figure shows",
                 "PNG files were skipped", "Model: test.", "HTML versions were added"):
        assert text in readme


def test_teaching_pack_needs_figures():
    with pytest.raises(ExportError):
        E.teaching_pack([], "Live inference")


def test_write_panels_sanitises_names(tmp_path):
    out = tmp_path / "figs"
    written = E.write_panels([_panel("../../outside"), _panel("same"), _panel("same")], out, ["csv", "json"],
                             pack=True, view="live")
    assert all(p.parent == out for p in written)
    names = sorted(p.name for p in written)
    assert "outside.csv" in names and "same.csv" in names and "same_2.csv" in names
    assert any(n.endswith("_teaching_pack.zip") for n in names)
    assert not (tmp_path / "outside.csv").exists()


def test_write_panels_reports_missing_chrome_but_writes_the_rest(no_chrome, tmp_path):
    with pytest.raises(ExportError, match="PNG files were skipped"):
        E.write_panels([_panel()], tmp_path, ["png", "html"])
    assert (tmp_path / "fig6_class_means.html").exists()


# ---------------------------------------------------------------------------------------- CLI
def test_cli_constants_match_package():
    from sevis.cli import main as cli
    from sevis.views import registry as views
    assert cli.EXPORT_VIEWS == views.EXPORT_VIEWS
    assert set(cli.EXPORT_FORMATS) == set(E.ALL_FORMATS)


@pytest.mark.slow
def test_cli_export_fig6(tiny_checkpoint, tmp_path, capsys):
    from sevis.cli.main import main
    out = tmp_path / "out"
    rc = main(["export", "fig6", "--model", str(tiny_checkpoint), "--classes", "Trouser", "Bag",
               "--blocks", "SE_2_2", "SE_5_1", "--channels", "first", "--n", "8", "--format", "csv", "html",
               "--out", str(out)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["fig6_class_means.csv", "fig6_class_means.html", "fig6_view.json"]
    df = pd.read_csv(out / "fig6_class_means.csv")
    # Fig. 6 as deviations from "all": one row per (block, class, channel), the "all" mean beside each.
    assert set(df["class"]) == {"Trouser", "Bag"} and set(df["block"]) == {"SE_2_2", "SE_5_1"}
    assert df["channel"].max() == 7 and len(df) == 2 * 2 * 8
    np.testing.assert_allclose(df["deviation"], df["mean"] - df["all_mean"], atol=1e-9)
    assert str(out / "fig6_class_means.csv") in capsys.readouterr().out


def test_cli_export_errors_are_one_line(tiny_checkpoint, tmp_path, capsys):
    from sevis.cli.main import main
    rc = main(["export", "fig6", "--model", str(tiny_checkpoint), "--blocks", "SE_9_9", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "SE_9_9" in err and "Traceback" not in err
    rc = main(["export", "live", "--model", str(tiny_checkpoint), "--out", str(tmp_path)])
    assert rc == 2 and "image" in capsys.readouterr().err


def test_cli_export_architecture_and_live(tiny_checkpoint, tmp_path, image_files):
    from sevis.cli.main import main
    assert main(["export", "architecture", "--model", str(tiny_checkpoint), "--format", "csv",
                 "--out", str(tmp_path / "a")]) == 0
    assert ({"se_blocks.csv", "se_params_per_stage.csv", "se_params_vs_r.csv"}
            <= {p.name for p in (tmp_path / "a").iterdir()})
    assert main(["export", "live", str(image_files["rgb.png"]), "--model", str(tiny_checkpoint), "--format", "json",
                 "--out", str(tmp_path / "l"), "--pack"]) == 0
    names = {p.name for p in (tmp_path / "l").iterdir()}
    assert {"rgb_top5.json", "rgb_heat_strip.json", "rgb_block_lines.json"} <= names
    assert any(n.endswith(".zip") for n in names)


# ---------------------------------------------------------------------------------------- shared plotly.js, inputs
def _zip_files(data: bytes) -> dict[str, bytes]:
    """Return {path inside the pack's folder: bytes}."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}


def test_pack_html_files_share_one_plotly_js_and_standalone_html_embeds_it(tmp_path, image_files):
    from plotly.offline import get_plotlyjs

    from sevis.models.zoo import load_model
    loaded = load_model("embedded-centred")  # the shipped model
    panels = architecture_panels(loaded)
    files = _zip_files(E.teaching_pack(panels, "Architecture", ["html", "csv"]))
    assert [n for n in files if n.endswith(".js")] == [E.PLOTLY_JS]  # exactly one copy, beside the HTML files
    assert files[E.PLOTLY_JS].decode() == get_plotlyjs()
    html = {n: b for n, b in files.items() if n.endswith(".html")}
    assert len(html) == len(panels)
    for name, data in html.items():
        assert len(data) < 100_000, (name, len(data))
        assert f'src="{E.PLOTLY_JS}"' in data.decode()
        assert get_plotlyjs()[:2000] not in data.decode()  # not embedded again
    assert "plotly.min.js" in files["README.md"].decode()
    # A single download keeps plotly.js inside, so the one file works on its own.
    single = E.panel_bytes(panels[0], "html").decode()
    assert get_plotlyjs()[:2000] in single and f'src="{E.PLOTLY_JS}"' not in single
    # The CLI writes standalone HTML files and a pack that shares plotly.js.
    from sevis.cli.main import main
    out = tmp_path / "cli"
    assert main(["export", "architecture", "--model", "embedded-centred", "--format", "html", "--out", str(out),
                 "--pack"]) == 0
    assert all(len(p.read_bytes()) > 1_000_000 for p in out.glob("*.html"))
    packed = _zip_files(next(out.glob("*.zip")).read_bytes())
    assert [n for n in packed if n.endswith(".js")] == [E.PLOTLY_JS]
    assert all(len(b) < 100_000 for n, b in packed.items() if n.endswith(".html"))


def test_live_pack_holds_the_input_images(tmp_path, image_files):
    from PIL import Image

    from sevis.cli.main import main
    from sevis.models.zoo import load_model
    loaded = load_model("embedded-centred")
    out = tmp_path / "live"
    given = {"rgb": image_files["rgb.png"], "gray": image_files["gray.png"]}
    assert main(["export", "live", *map(str, given.values()), "--model", "embedded-centred", "--format", "csv",
                 "--out", str(out), "--pack"]) == 0
    files = _zip_files(next(out.glob("*.zip")).read_bytes())
    size = tuple(loaded.preprocess(Image.open(given["gray"]).convert("RGB")).shape[-2:])
    for stem, path in given.items():
        original = Image.open(path).convert("RGB")
        sent = Image.open(io.BytesIO(files[f"{stem}_input.png"]))
        assert sent.size == original.size
        assert (np.asarray(sent.convert("RGB")) == np.asarray(original)).all()
        seen = Image.open(io.BytesIO(files[f"{stem}_model_input.png"]))
        factor = seen.size[0] // size[1]  # what the model saw, enlarged (nearest) to at least 256 px for slides
        assert min(seen.size) >= 256 and seen.size[::-1] == (size[0] * factor, size[1] * factor)
        expected = model_input_image(loaded, original)
        assert (np.asarray(seen)[::factor, ::factor] == np.asarray(expected)).all()
    readme = files["README.md"].decode()
    assert "rgb_input.png" in readme and "_model_input.png" in readme
