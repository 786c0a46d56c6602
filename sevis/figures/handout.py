"""A one-file HTML handout (plotly.js embedded once, works offline), and its PDF printed by a headless Chromium.
Takes plain sections (a title, sentences, figures with captions), so any view can make one."""
from __future__ import annotations

import datetime as _dt
import html
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go

from sevis.errors import ExportError
from sevis.figures.export import find_chrome

HANDOUT_WIDTH = 960  # px: every figure is drawn at this width, so the page prints the same everywhere
PDF_TIMEOUT_S = 180
CSS = """body {font-family: Arial, Helvetica, sans-serif; max-width: 1000px; margin: 2em auto; color: #111;
line-height: 1.45; font-size: 17px;} h1 {font-size: 28px;} h2 {font-size: 23px; margin-top: 1.6em;
border-bottom: 2px solid #ddd; page-break-before: always;} h2.first {page-break-before: auto;}
.sentences {font-size: 19px;} .needs {background: #fff4e0; border-left: 4px solid #e67e00; padding: .5em 1em;}
.caption {color: #333; font-size: 15px; margin: .2em 0 1.2em 0;} .formula {font-family: 'DejaVu Serif', serif;
font-size: 20px;} figure {margin: 0; page-break-inside: avoid;}
@media print {.modebar-container, .modebar {display: none !important;}}"""  # no toolbar icons on paper


@dataclass
class HandoutSection:
    title: str
    sentences: Sequence[str]
    figures: Sequence[tuple[go.Figure, str]] = field(default_factory=list)  # (figure, caption)
    note: str | None = None  # e.g. what the step needs that the model lacks
    formula: str | None = None  # plain text


def handout_html(title: str, intro: str, sections: Sequence[HandoutSection]) -> str:
    """Return one self-contained HTML page: the title, the intro, then each section's sentences and figures."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    first_js = True
    for i, sec in enumerate(sections):
        parts.append(f"<section><h2 class='{'first' if i == 0 else ''}'>{i + 1}. {html.escape(sec.title)}</h2>")
        if sec.formula:
            parts.append(f"<p class='formula'>{html.escape(sec.formula)}</p>")
        parts.append("<div class='sentences'>" + "".join(f"<p>{html.escape(s)}</p>" for s in sec.sentences) + "</div>")
        if sec.note:
            parts.append(f"<p class='needs'>{html.escape(sec.note)}</p>")
        for fig, caption in sec.figures:
            fig = go.Figure(fig).update_layout(width=HANDOUT_WIDTH)
            div = fig.to_html(full_html=False, include_plotlyjs=first_js, config={"displaylogo": False,
                                                                                  "staticPlot": False})
            first_js = False
            parts.append(f"<figure>{div}<figcaption class='caption'>{html.escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append(f"<p class='caption'>Made with sevis on {_dt.date.today().isoformat()}.</p></body></html>")
    return "\n".join(parts)


def tour_handout_html(model: str, model_line: str, sections: Sequence[HandoutSection]) -> str:
    """Return the Tour's handout (the app's download and `sevis export tour` alike): every step of the tour on
    `model` (the name the app calls it by), with `model_line` ("Model: …") in the intro."""
    return handout_html(f"What SE blocks do in {model}: a tour",
                        f"{model_line} Every number below was computed on this model; the figures are interactive "
                        "(hover for values) and work offline.", sections)


def handout_pdf(page: str, chrome: str | None = None) -> bytes:
    """Return the handout HTML printed to PDF by a headless Chrome/Chromium; ExportError when there is none or it
    fails."""
    return print_pdf(page, "handout", chrome)


def print_pdf(page: str, what: str = "handout", chrome: str | None = None) -> bytes:
    """Return the HTML `page` printed to PDF by a headless Chrome/Chromium (its CSS @page sets the paper: A4 or
    letter by default, a 16:9 slide for the deck); ExportError naming `what` when there is none or it fails."""
    chrome = chrome or find_chrome()
    if chrome is None:
        raise ExportError(f"a PDF {what} needs Chrome or Chromium (apt-get install chromium)"
                          + ("; the HTML handout prints to PDF from any browser" if what == "handout" else ""))
    with tempfile.TemporaryDirectory(prefix=f"sevis-{what}-") as tmp:
        src, out = Path(tmp) / "page.html", Path(tmp) / "page.pdf"
        src.write_text(page, encoding="utf-8")
        cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer",
               "--virtual-time-budget=30000", f"--print-to-pdf={out}", src.as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=PDF_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ExportError(f"printing the {what} with {chrome} failed ({type(e).__name__})"
                              + ("; download the HTML handout and print it from a browser" if what == "handout"
                                 else "")) from None
        if not out.exists() or out.stat().st_size == 0:
            raise ExportError(f"{chrome} printed no PDF of the {what}"
                              + ("; download the HTML handout and print it from a browser" if what == "handout"
                                 else ""))
        return out.read_bytes()
