"""Export figures for teaching: PNG/SVG/PDF (plotly + kaleido + a Chrome), standalone HTML, CSV/JSON data,
and a "teaching pack" zip of a view's figures and data with a README saying what each figure shows.

Static images need a Chrome/Chromium: kaleido 1.x drives one over the DevTools protocol. We look for it in
$CHROME_PATH, $BROWSER_PATH (kaleido's own variable), then on PATH and at the usual places (Debian's
/usr/bin/chromium). When none is there, ExportError says so and points to HTML, which always works.
File names derived from user input are sanitised and never used as paths.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import io
import os
import queue
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

from sevis.errors import ExportError
from sevis.figures.plots import Panel, slides_style
from sevis.files import safe_filename

IMAGE_FORMATS = ("png", "svg", "pdf")
DATA_FORMATS = ("csv", "json")
ALL_FORMATS = IMAGE_FORMATS + ("html",) + DATA_FORMATS
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "html": "text/html",
        "csv": "text/csv", "json": "application/json", "zip": "application/zip"}
CHROME_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROME_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome-stable",
                "/usr/bin/google-chrome", "/snap/bin/chromium",
                "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                "/Applications/Chromium.app/Contents/MacOS/Chromium")
DEFAULT_WIDTH = 1100
RENDER_TIMEOUT_S = 120
NO_CHROME = ("static images (PNG/SVG/PDF) need Chrome or Chromium, and none was found "
             "(looked at $CHROME_PATH, $BROWSER_PATH, PATH and /usr/bin/chromium). Install it with "
             "`sudo apt-get install chromium` or set CHROME_PATH; meanwhile download the figure as HTML, "
             "which works offline in any browser.")


# ---------------------------------------------------------------------------------------- names
# ---------------------------------------------------------------------------------------- chrome
def find_chrome() -> str | None:
    """Return the path of a Chrome/Chromium executable kaleido can drive, or None."""
    for var in ("CHROME_PATH", "BROWSER_PATH"):
        path = os.environ.get(var)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in CHROME_NAMES:
        path = shutil.which(name)
        if path:
            return path
    for path in CHROME_PATHS:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def static_export_available() -> bool:
    """Return True when PNG/SVG/PDF export can work here (kaleido importable and a Chrome found)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return find_chrome() is not None


def _figure_size(fig: go.Figure, width: int | None, height: int | None) -> tuple[int, int]:
    w = width or fig.layout.width or DEFAULT_WIDTH
    h = height or fig.layout.height or 500
    return int(w), int(h)


async def _render_all(jobs: Sequence[tuple[dict, dict]], chrome: str,
                      done: Callable[[], None] = lambda: None) -> list[bytes]:
    import kaleido
    # mathjax=False: kaleido would otherwise fetch MathJax from a CDN; plotly.js comes from the plotly package.
    async with kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT_S, mathjax=False, path=chrome) as k:
        out = []
        for fig, opts in jobs:
            out.append(await k.calc_fig(fig, opts=opts))
            done()
        return out


def _run_coroutine(coro_factory, events: "queue.SimpleQueue | None" = None,
                   progress: Callable[[int], None] | None = None):
    """Run an asyncio coroutine to completion in a fresh thread (the caller may already own an event loop).
    Counts the coroutine puts on `events` are handed to `progress` in the caller's thread (where a Streamlit
    progress bar may be updated) while it runs."""
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as e:  # noqa: BLE001 re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="sevis-kaleido", daemon=True)
    t.start()
    while t.is_alive() or (events is not None and not events.empty()):
        if events is None:
            t.join()
            continue
        try:
            n = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if progress:
            progress(n)
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def figures_to_images(figures: Sequence[go.Figure], fmt: str = "png", width: int | None = None,
                      height: int | None = None, scale: float | Sequence[float] = 2.0,
                      progress: Callable[[int], None] | None = None) -> list[bytes]:
    """Render several figures as PNG, SVG or PDF with one browser session; raise ExportError when it cannot.
    `scale` (PNG only): one for all, or one per figure. `progress` is called with 1 after each figure, in the
    caller's thread."""
    fmt = fmt.lower()
    if fmt not in IMAGE_FORMATS:
        raise ExportError(f"unknown image format {fmt!r}; use one of {', '.join(IMAGE_FORMATS)} (or html)")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise ExportError("static images need the kaleido package (pip install 'kaleido>=1'); "
                          "download the figure as HTML meanwhile") from None
    chrome = find_chrome()
    if chrome is None:
        raise ExportError(NO_CHROME)
    jobs = []
    scales = [float(scale)] * len(figures) if isinstance(scale, (int, float)) else list(scale)
    for fig, each in zip(figures, scales):
        w, h = _figure_size(fig, width, height)
        jobs.append((fig.to_plotly_json(), {"format": fmt, "width": w, "height": h,
                                            "scale": each if fmt == "png" else 1}))
    try:
        events: queue.SimpleQueue = queue.SimpleQueue()
        return _run_coroutine(lambda: _render_all(jobs, chrome, lambda: events.put(1)), events, progress)
    except ExportError:
        raise
    except Exception as e:  # kaleido/choreographer raise many types (ChromeNotFoundError, timeouts, crashes)
        raise ExportError(f"rendering {fmt.upper()} with {chrome} failed ({type(e).__name__}: {e}); "
                          "download the figure as HTML instead") from None


def figure_to_image(fig: go.Figure, fmt: str = "png", width: int | None = None, height: int | None = None,
                    scale: float = 2.0) -> bytes:
    """Return `fig` rendered as PNG, SVG or PDF bytes."""
    return figures_to_images([fig], fmt, width, height, scale)[0]


PLOTLY_JS = "plotly.min.js"  # a teaching pack's HTML files share this one copy of plotly.js, beside them


def figure_to_html(fig: go.Figure, title: str | None = None, shared_plotlyjs: bool = False) -> str:
    """Return an HTML page of `fig`: standalone with plotly.js embedded (works offline in any browser), or with
    shared_plotlyjs=True loading PLOTLY_JS from its own folder (for a pack that holds that file once)."""
    html = fig.to_html(include_plotlyjs="directory" if shared_plotlyjs else True, full_html=True,
                       config={"displaylogo": False, "responsive": True})
    if title:
        html = html.replace("<head>", f"<head><title>{_html_escape(title)}</title>", 1)
    return html


def _html_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def frame_to_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def frame_to_json(frame: pd.DataFrame) -> str:
    """Return the frame as a JSON list of records (NaN → null)."""
    return frame.to_json(orient="records", indent=1, force_ascii=False)


def panel_bytes(panel: Panel, fmt: str, scale: float = 2.0) -> bytes:
    """Return one panel in `fmt` (png/svg/pdf/html/csv/json) as bytes."""
    fmt = fmt.lower()
    if fmt in IMAGE_FORMATS:
        return figure_to_image(panel.figure, fmt, scale=scale)
    if fmt == "html":
        return figure_to_html(panel.figure, panel.title).encode()
    if fmt == "csv":
        return frame_to_csv(panel.data).encode()
    if fmt == "json":
        return frame_to_json(panel.data).encode()
    raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(ALL_FORMATS)}")


def panel_filename(panel: Panel, fmt: str, prefix: str = "") -> str:
    return safe_filename(f"{prefix}{panel.key}", fmt)


# ---------------------------------------------------------------------------------------- bundles
def _render_files(panels: Sequence[Panel], formats: Iterable[str], prefix: str = "",
                  scale: float | Sequence[float] = 2.0,
                  shared_plotlyjs: bool = False,
                  progress: Callable[[int], None] | None = None) -> tuple[dict[str, bytes], list[str]]:
    """Return {file name: bytes} for every panel and format, and notes on what could not be made (HTML with
    shared_plotlyjs=True loads PLOTLY_JS from beside it instead of embedding it). `progress` is called with
    the number of files made (or skipped) as they are."""
    progress = progress or (lambda n: None)
    formats = [f.lower() for f in formats]
    bad = [f for f in formats if f not in ALL_FORMATS]
    if bad:
        raise ExportError(f"unknown format(s) {', '.join(bad)}; use {', '.join(ALL_FORMATS)}")
    files: dict[str, bytes] = {}
    notes: list[str] = []
    names = _unique_keys(panels)
    for fmt in formats:
        if fmt in IMAGE_FORMATS:
            try:
                images = figures_to_images([p.figure for p in panels], fmt, scale=scale, progress=progress)
            except ExportError as e:
                notes.append(f"{fmt.upper()} files were skipped: {e}")
                progress(len(panels))  # none made: count them as done, so the bar still ends at 100 %
                continue
            for key, data in zip(names, images):
                files[safe_filename(prefix + key, fmt)] = data
        elif fmt == "html" and shared_plotlyjs:
            for key, p in zip(names, panels):
                files[safe_filename(prefix + key, fmt)] = figure_to_html(p.figure, p.title,
                                                                         shared_plotlyjs=True).encode()
                progress(1)
        else:
            for key, p in zip(names, panels):
                files[safe_filename(prefix + key, fmt)] = panel_bytes(p, fmt)
                progress(1)
    return files, notes


def _attachments(panels: Sequence[Panel]) -> list[dict[str, bytes]]:
    """Return each panel's extra files (Panel.files) under sanitised names, one dict per panel."""
    return [{safe_filename(name): data for name, data in p.files.items()} for p in panels]


def _unique_keys(panels: Sequence[Panel]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in panels:
        key = safe_filename(p.key)
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}_{n + 1}")
    return out


def readme_text(panels: Sequence[Panel], view: str, context: str = "", notes: Sequence[str] = (),
                files: Iterable[str] = (), takeaways: Sequence[str] = ()) -> str:
    """Return the teaching pack's README: the view's takeaways (the sentences it ended with, computed from what it
    showed), what each figure shows and which files hold it."""
    files = sorted(files)
    lines = [f"# sevis teaching pack: {view}", ""]
    if context:
        lines += [context, ""]
    lines += ["Squeeze-and-Excitation (SE) blocks (Hu et al., 'Squeeze-and-Excitation Networks') rescale each "
              "channel c of a feature map by an excitation s_c (between 0 and 1 for the usual sigmoid gate), computed "
              "from the globally pooled feature map: s = sigmoid(W2 · ReLU(W1 · z)). The figures below show s for "
              "this model.", ""]
    if takeaways:
        lines += ["## Takeaways", ""] + [f"- {t}" for t in takeaways] + [""]
    lines += ["## Figures", ""]
    for key, p, extra in zip(_unique_keys(panels), panels, _attachments(panels)):
        mine = [f for f in files if f.rsplit(".", 1)[0] == key] + [f for f in extra if f in files]
        lines += [f"### {p.title}", "", p.caption, "", "Files: " + (", ".join(mine) if mine else "(none)"), ""]
    html = ("- .html: the interactive figure (hover for values); its plotly.js is the one plotly.min.js beside it, "
            "so keep the folder together: it works offline." if PLOTLY_JS in files else
            "- .html: the interactive figure (hover for values); plotly.js is embedded, so it works offline.")
    lines += ["## Formats", "",
              "- .png / .svg / .pdf: static images for slides and handouts.", html,
              "- .csv / .json: the numbers behind each figure, one row per plotted point.", ""]
    if any(f.endswith("_input.png") for f in files):
        lines[-1:-1] = ["- *_input.png: an image as it was given; *_model_input.png: the same image as the model "
                        "saw it, after its preprocessing (size, grey levels, normalisation undone for display)."]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += [f"Made with sevis on {_dt.date.today().isoformat()}."]
    return "\n".join(lines) + "\n"


def teaching_pack(panels: Sequence[Panel], view: str, formats: Iterable[str] = ("png", "html", "csv"),
                  context: str = "", scale: float = 2.0, progress: Callable[[float], None] | None = None,
                  takeaways: Sequence[str] = (), slides: bool = False) -> bytes:
    """Return a zip of the view's figures (each in `formats`) and a README.md saying what each shows.

    When static images cannot be made (no Chrome), the pack still holds HTML and data and the README says why.
    `progress` gets the fraction of files made (0 to 1) after each file. `takeaways` go into the README;
    slides=True draws every figure at lecture mode's projector size (plots.slides_style).
    """
    if not panels:
        raise ExportError("this view has no figures to export yet")
    if slides:
        panels = [as_slides(p) for p in panels]
    formats = list(formats)
    todo, done = max(len(panels) * len(formats), 1), [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(min(done[0] / todo, 1.0))
    files, notes = _render_files(panels, formats, scale=scale, shared_plotlyjs=True, progress=step)
    if not any(name.endswith(".html") for name in files) and notes:
        # Static images failed and no HTML was asked for: include HTML so the pack still has every figure.
        extra, _ = _render_files(panels, ["html"], shared_plotlyjs=True)
        files.update(extra)
        notes.append("HTML versions were added instead.")
    if any(name.endswith(".html") for name in files):
        from plotly.offline import get_plotlyjs
        files[PLOTLY_JS] = get_plotlyjs().encode()  # once, for every HTML file of the pack
    for extra in _attachments(panels):
        files.update({name: data for name, data in extra.items() if name not in files})
    buf = io.BytesIO()
    folder = safe_filename(f"sevis_{view}", default="sevis")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/README.md", readme_text(panels, view, context, notes, files, takeaways))
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
    return buf.getvalue()


# Slide-size figures: 16:9, at least 1280×720 logical pixels (lecture mode's 16-22 px fonts are then about 12-16 pt of
# a 13.3 in slide). A figure with many rows may be drawn up to SQUEEZE times shorter than lecture mode draws it; one
# taller still grows in both directions (still 16:9), so its rows never overlap.
SLIDE_WIDTH, SLIDE_ASPECT, SLIDE_PIXELS, SQUEEZE = 1280, 16 / 9, 1920, 1.2


def slide_height(fig: go.Figure) -> float:
    """Return the height (px) a slide-styled figure needs at the least: lecture mode's height / SQUEEZE."""
    return float(fig.layout.height or 0) / SQUEEZE


def slide_figure(fig: go.Figure, aspect: float = SLIDE_ASPECT) -> go.Figure:
    """Return a copy of `fig` for a slide: lecture mode's projector fonts (plots.slides_style), `aspect` (16:9 by
    default), SLIDE_WIDTH wide unless its rows need more height (see SQUEEZE)."""
    out = slides_style(fig)
    height = max(slide_height(out), SLIDE_WIDTH / aspect)
    return out.update_layout(width=round(height * aspect), height=round(height), autosize=False)


def slide_scale(fig: go.Figure) -> float:
    """Return the PNG scale that draws `fig` SLIDE_PIXELS wide (a 1920×1080 slide's width)."""
    return SLIDE_PIXELS / float(fig.layout.width or SLIDE_WIDTH)


def as_slides(panel: Panel) -> Panel:
    """Return a copy of `panel` whose figure is slide-size: projector fonts, 16:9 (slide_figure)."""
    return Panel(panel.key, panel.title, panel.caption, slide_figure(panel.figure), panel.data, dict(panel.files))


def export_file_names(panels: Sequence[Panel], formats: Iterable[str], prefix: str = "", pack: bool = False,
                      view: str = "figures") -> list[str]:
    """Return the names write_panels gives its files (before anything is rendered)."""
    keys = _unique_keys(panels)
    names = [safe_filename(safe_filename(prefix + key, fmt)) for fmt in (f.lower() for f in formats) for key in keys]
    return names + ([safe_filename(f"{prefix}sevis_{view}_teaching_pack", "zip")] if pack else [])


def write_panels(panels: Sequence[Panel], out_dir: str | os.PathLike, formats: Iterable[str],
                 prefix: str = "", pack: bool = False, view: str = "figures", context: str = "",
                 force: bool = False, slides: bool = False) -> list[Path]:
    """Write every panel in every format into `out_dir` (created if needed); return the paths written.

    Only sanitised file names are joined to `out_dir`. With pack=True a teaching-pack zip is written as well.
    Each file is written atomically (a temporary file beside it, then one rename), so an export stopped half-way
    leaves every file whole: new, or as it was; temporary files a killed export left here are removed first.
    Without `force`, an export that would replace files stops before rendering anything, naming them. Raises
    ExportError when a requested static format cannot be made (the others are still written). slides=True draws
    every figure slide-size (as_slides: projector fonts, 16:9), in the files and the pack alike.
    """
    from sevis.files import existing, remove_stale_parts, write_atomic
    out = Path(out_dir)
    if slides:
        panels = [as_slides(p) for p in panels]
    formats = list(formats)
    taken = existing([out / n for n in export_file_names(panels, formats, prefix, pack, view)])
    if taken and not force:
        names = ", ".join(p.name for p in taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise ExportError(f"{out} already holds {len(taken)} of the files this export writes ({names}); nothing "
                          "was written", cli_hint=". Pass --force to replace them, or name another --out folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create output folder {out}: {e.strerror or e}") from None
    remove_stale_parts(out)  # what an export killed half-way (kill -9 runs no cleanup) left in this folder
    scale = [slide_scale(p.figure) for p in panels] if slides else 2.0  # slides: 1920 px wide PNGs (1920×1080)
    files, notes = _render_files(panels, formats, prefix, scale=scale)
    written = []
    for name, data in files.items():
        written.append(write_atomic(out / safe_filename(name), data, error=ExportError))
    if pack:
        path = out / safe_filename(f"{prefix}sevis_{view}_teaching_pack", "zip")
        written.append(write_atomic(path, teaching_pack(panels, view, formats, context), error=ExportError))
    if notes:
        raise ExportError("; ".join(notes) + f" (the other files are in {out})")
    return written

