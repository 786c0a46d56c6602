"""The lecture deck: the whole Tour and chosen views as 16:9 slides (13.333 × 7.5 in), one figure per slide with its
title, and the view's computed takeaway as the slide's speaker notes: PPTX (python-pptx, notes in each slide's notes
page) and PDF (printed by a headless Chromium, the notes under the figure on every page).

Figures are drawn by kaleido as PNG (never a screenshot of the page, so no Plotly toolbar), with lecture mode's
projector fonts. Takes plain slides (a title, a figure, notes), so the app's Export view and `sevis export lecture`
build the same deck from the same view results.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import plotly.graph_objects as go

from sevis.errors import ExportError
from sevis.figures.export import SLIDE_PIXELS, SLIDE_WIDTH, figures_to_images, slide_height
from sevis.figures.handout import print_pdf
from sevis.figures.plots import slides_style
from sevis.files import safe_filename

DECK_FORMATS = ("pdf", "pptx")
DECK_MIME = {"pdf": "application/pdf",
             "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
SLIDE_IN = (13.333, 7.5)  # inches: PowerPoint's 16:9
TITLE_IN = 0.95  # the title band at the top of each slide
FIGURE_ASPECT = SLIDE_IN[0] / (SLIDE_IN[1] - TITLE_IN - 0.2)  # the figure fills the slide under its title (PPTX)
TITLE_PT, NOTES_PT = 28, 15


def title_pt(title: str) -> int:
    """Return the title's font size (pt): 28, smaller for a long title, so that it stays on one line."""
    return TITLE_PT if len(title) <= 56 else 24 if len(title) <= 66 else 20


def notes_pt(notes: str) -> int:
    """Return the PDF notes' font size (pt): 15, smaller for long notes, so that the figure keeps most of the page."""
    return NOTES_PT if len(notes) <= 380 else 12 if len(notes) <= 700 else 10


@dataclass
class Slide:
    """One slide: its title, one figure, and what the lecturer says (the view's computed takeaway)."""

    title: str
    figure: go.Figure
    notes: str
    caption: str = ""  # what the figure shows, in words: the picture's alternative text


def result_notes(result) -> str:
    """Return a view result's speaker notes: its takeaway; a view without one gives its notes, or else its first
    figure's caption (always a sentence, never empty)."""
    text = (result.takeaway or "").strip() or " ".join(result.notes).strip()
    if not text and result.panels:
        text = result.panels[0].caption.strip()
    return text or f"{result.title}: nothing to add for this model."


def step_notes(step) -> str:
    """Return a Tour step's speaker notes: its two computed sentences (the step's takeaway), then what it lacks
    here (labels, trained weights) when it lacks something."""
    return " ".join([*step.sentences, *([step.needs] if step.needs else [])]).strip() or step.title


def lecture_slides(steps: Sequence, results: Sequence) -> list[Slide]:
    """Return the deck's slides: every Tour step (sevis.views.tour.TourStep: title, sentences, panels, needs), one
    slide per figure, titled by its number, then each view result's figures (sevis.views.base.ViewResult), each
    slide with its step's or view's notes."""
    slides = []
    for n, step in enumerate(steps, start=1):
        notes = step_notes(step)
        slides += [Slide(f"Tour {n}/{len(steps)} · {step.title}", p.figure, notes, p.caption) for p in step.panels]
    for result in results:
        notes = result_notes(result)
        slides += [Slide(f"{result.title}: {p.title}", p.figure, notes, p.caption) for p in result.panels]
    return slides


def deck_figure(fig: go.Figure) -> go.Figure:
    """Return a copy of `fig` for the deck: projector fonts, SLIDE_WIDTH wide, as tall as the room under the title
    (FIGURE_ASPECT) or, for a figure with many rows, taller (up to 4:5; the picture is then placed whole, narrower)."""
    out = slides_style(fig)
    height = min(max(slide_height(out), SLIDE_WIDTH / FIGURE_ASPECT), SLIDE_WIDTH * 0.8)
    return out.update_layout(width=SLIDE_WIDTH, height=round(height), autosize=False)


def slide_images(slides: Sequence[Slide], progress: Callable[[int], None] | None = None) -> list[bytes]:
    """Return each slide's figure as a PNG SLIDE_PIXELS wide, at the slide's figure aspect, with projector fonts
    (one browser session for all)."""
    figures = [deck_figure(s.figure) for s in slides]
    scales = [SLIDE_PIXELS / float(f.layout.width) for f in figures]
    return figures_to_images(figures, "png", scale=scales, progress=progress)


def deck_pptx(slides: Sequence[Slide], images: Sequence[bytes], title: str) -> bytes:
    """Return a PPTX of `slides` (16:9): a title and the figure on each, the notes in its notes page."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(SLIDE_IN[0]), Inches(SLIDE_IN[1])
    prs.core_properties.title = title
    prs.core_properties.author = "sevis"
    layout = prs.slide_layouts[5]  # "Title Only"
    room_w, room_h = Inches(SLIDE_IN[0] - 0.3), Inches(SLIDE_IN[1] - TITLE_IN - 0.15)
    for slide, png in zip(slides, images):
        page = prs.slides.add_slide(layout)
        head = page.shapes.title
        head.left, head.top, head.width, head.height = Inches(0.4), Inches(0.1), Inches(SLIDE_IN[0] - 0.8), \
            Inches(TITLE_IN - 0.1)
        head.text = slide.title
        for paragraph in head.text_frame.paragraphs:
            paragraph.font.size = Pt(title_pt(slide.title))
        from PIL import Image
        w, h = Image.open(io.BytesIO(png)).size
        fit = min(room_w / w, room_h / h)  # the whole figure, as large as the room under the title allows
        width, height = int(w * fit), int(h * fit)
        picture = page.shapes.add_picture(io.BytesIO(png), (prs.slide_width - width) // 2, Inches(TITLE_IN),
                                          width, height)
        picture._element.nvPicPr.cNvPr.set("descr", slide.caption or slide.title)  # alternative text
        page.notes_slide.notes_text_frame.text = slide.notes
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


DECK_CSS = f"""@page {{size: {SLIDE_IN[0]}in {SLIDE_IN[1]}in; margin: 0;}}
body {{margin: 0; font-family: Arial, Helvetica, sans-serif; color: #111;}}
.slide {{width: {SLIDE_IN[0]}in; height: {SLIDE_IN[1]}in; box-sizing: border-box; padding: 0.1in 0.4in;
  page-break-after: always; break-after: page; overflow: hidden; display: flex; flex-direction: column;}}
.slide:last-child {{page-break-after: auto; break-after: auto;}}
h1 {{margin: 0; height: {TITLE_IN - 0.1}in; line-height: 1.15; overflow: hidden; flex: none;}}
.figure {{flex: 1; min-height: 0; display: flex; justify-content: center; align-items: center;}}
.figure img {{max-width: 100%; max-height: 100%;}}
.notes {{line-height: 1.3; margin: 0; flex: none; border-top: 1px solid #bbb; padding-top: 0.05in; color: #222;}}"""
# the notes take the height they need (never cut off); the figure shrinks to the room left


def deck_html(slides: Sequence[Slide], images: Sequence[bytes], title: str) -> str:
    """Return the deck as one HTML page of 16:9 pages: each slide's title, figure and notes (printed to PDF)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{DECK_CSS}</style></head><body>"]
    for slide, png in zip(slides, images):
        src = "data:image/png;base64," + base64.b64encode(png).decode()
        parts.append(f"<section class='slide'><h1 style='font-size: {title_pt(slide.title)}pt'>"
                     f"{html.escape(slide.title)}</h1><div class='figure'><img src='{src}' "
                     f"alt='{html.escape(slide.caption or slide.title, quote=True)}'></div>"
                     f"<p class='notes' style='font-size: {notes_pt(slide.notes)}pt'>Notes: "
                     f"{html.escape(slide.notes)}</p></section>")
    parts.append("</body></html>")
    return "".join(parts)


def deck_pdf(slides: Sequence[Slide], images: Sequence[bytes], title: str) -> bytes:
    """Return a PDF of `slides`, one 16:9 page each, the notes printed under the figure."""
    return print_pdf(deck_html(slides, images, title), "lecture deck")


def build_deck(slides: Sequence[Slide], formats: Iterable[str], title: str,
               progress: Callable[[float], None] | None = None) -> dict[str, bytes]:
    """Return {format: bytes} of the deck in each of `formats` (pdf, pptx); the figures are drawn once for both.
    `progress` gets the fraction done (0 to 1). ExportError for an unknown format, no slides, or no Chrome."""
    formats = check_deck_formats(formats)
    if not slides:
        raise ExportError("the lecture deck has no figures to show for this model")
    done, todo = [0], len(slides) + len(formats)

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(min(done[0] / todo, 1.0))
    images = slide_images(slides, step)
    out = {}
    for fmt in formats:
        out[fmt] = deck_pptx(slides, images, title) if fmt == "pptx" else deck_pdf(slides, images, title)
        step(1)
    return out


def check_deck_formats(formats: Iterable[str]) -> list[str]:
    """Return the deck formats asked for, in order, once each; ExportError names the two there are otherwise."""
    formats = list(dict.fromkeys(str(f).lower() for f in formats))
    bad = [f for f in formats if f not in DECK_FORMATS]
    if bad or not formats:
        raise ExportError(f"the lecture deck is written as {' and/or '.join(DECK_FORMATS)}; "
                          + (f"{', '.join(bad)} is not one of them" if bad else "name at least one"),
                          cli_hint=" (e.g. --format pdf pptx).")
    return formats


def deck_file_name(fmt: str, name: str = "lecture") -> str:
    """Return the deck's file name: sevis_lecture.pdf, sevis_lecture.pptx."""
    return safe_filename(f"sevis_{name}", fmt)


def deck_title(model: str) -> str:
    """Return the deck's title for `model` (the name the app calls it by)."""
    return f"What SE blocks do in {model}: a lecture ({_dt.date.today().isoformat()})"
