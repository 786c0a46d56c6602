"""The lecture deck (`sevis export lecture`, the Export view's button): every Tour step and the chosen views as 16:9
slides, one figure per slide, the computed takeaway as each slide's speaker notes (PPTX) and under its figure (PDF);
`--slides` figures are 16:9; the Tour's handout; one message for a bad format or an existing file."""
from __future__ import annotations

import html
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sevis.cli.main import main
from sevis.errors import ExportError
from sevis.figures import deck as D
from sevis.figures.export import static_export_available

needs_chrome = pytest.mark.skipif(not static_export_available(), reason="needs Chromium and kaleido")
VIEW = "architecture"  # the view after the Tour in the deck: a cheap one, three figures


def _plain(text: str) -> str:
    """Return `text` with every run of white space as one space (a PDF's text breaks lines anywhere), and pdfium's
    mark for a hyphen where a line broke (U+FFFE) as the hyphen."""
    return re.sub(r"\s+", " ", text.replace("\ufffe", "-")).strip()


@pytest.fixture(scope="module")
def expected(embedded):
    """Return ([(title, notes)] per figure of the Tour's steps, the same for the view): every step's figures with
    the step's sentences (its takeaway), the view's figures with its takeaway, computed here from the results."""
    from sevis.analysis.images import default_sample_images
    from sevis.views import tour as T
    from sevis.views.registry import compute_view
    images = default_sample_images(embedded)
    tour = []
    for i in range(len(T.STEPS)):
        (step,) = T.steps_of(compute_view(embedded, "tour", T.step_request(i, images)))
        assert step.panels and step.sentences and not step.needs  # a trained model with labels: every step complete
        tour += [(step.title, " ".join(step.sentences))] * len(step.panels)
    result = compute_view(embedded, VIEW)
    assert result.takeaway and result.panels
    return tour, [(f"{result.title}: {p.title}", result.takeaway) for p in result.panels]


@pytest.fixture(scope="module")
def deck(tmp_path_factory, embedded) -> Path:
    """The folder `sevis export lecture --format pdf pptx --views architecture` wrote (built once)."""
    if not static_export_available():
        pytest.skip("needs Chromium and kaleido")
    out = tmp_path_factory.mktemp("deck")
    assert main(["export", "lecture", "--format", "pdf", "pptx", "--views", VIEW, "--out", str(out)]) == 0
    return out


@pytest.mark.slow  # the deck: every Tour step drawn by Chromium
def test_pptx_has_one_slide_per_figure_with_the_takeaway_as_speaker_notes(deck, expected):
    from pptx import Presentation
    from pptx.util import Inches
    prs = Presentation(str(deck / "sevis_lecture.pptx"))
    assert (prs.slide_width, prs.slide_height) == (Inches(13.333), Inches(7.5))
    slides = list(prs.slides)
    assert len(slides) == len(expected[0]) + len(expected[1])
    for slide, (title, notes) in zip(slides, expected[0] + expected[1]):
        assert title in slide.shapes.title.text
        assert slide.has_notes_slide and slide.notes_slide.notes_text_frame.text == notes != ""
        (picture,) = [s for s in slide.shapes if s.shape_type == 13]  # one figure per slide, drawn by kaleido
        image = Image.open(io.BytesIO(picture.image.blob))
        assert image.size[0] == 1920 and picture.left + picture.width <= prs.slide_width
        assert picture.top + picture.height <= prs.slide_height


@pytest.mark.slow  # the deck: every Tour step drawn by Chromium
def test_pdf_has_a_16_9_page_per_slide_with_its_notes(deck, expected):
    import pypdfium2 as pdfium
    pdf = pdfium.PdfDocument(str(deck / "sevis_lecture.pdf"))
    assert len(pdf) == len(expected[0]) + len(expected[1])
    for i, (title, notes) in enumerate(expected[0] + expected[1]):
        page = pdf[i]
        width, height = page.get_size()
        assert abs(width / height - 16 / 9) < 0.01
        text = _plain(page.get_textpage().get_text_range())
        assert _plain(title) in text and _plain(notes) in text  # each page carries its notes
    for i in range(2):  # the first pages, drawn: 16:9, and a figure on them, not a blank page
        png = pdf[i].render(scale=1).to_pil().convert("L")
        assert abs(png.size[0] / png.size[1] - 16 / 9) < 0.01
        pixels = np.asarray(png)
        assert (pixels < 200).mean() > 0.02 and len(np.unique(pixels)) > 50


@needs_chrome
def test_slides_option_draws_16_9_figures(tmp_path):
    out = tmp_path / "slides"
    assert main(["export", VIEW, "--model", "embedded", "--slides", "--format", "png", "--out", str(out)]) == 0
    pngs = sorted(out.glob("*.png"))
    assert pngs
    for path in pngs:
        w, h = Image.open(path).size
        assert abs(w - 1920) <= 1 and abs(h - 1080) <= 1, (path.name, w, h)  # 16:9, a full-HD slide


def test_bad_format_and_existing_file_get_one_message(tmp_path, capsys):
    assert main(["export", "lecture", "--format", "png", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pdf and/or pptx" in err and "png" in err
    assert main(["export", "fig6", "--format", "pptx", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sevis export lecture" in err
    (tmp_path / "sevis_lecture.pdf").write_bytes(b"the lecturer's own file")
    assert main(["export", "lecture", "--format", "pdf", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sevis_lecture.pdf" in err and "--force" in err
    assert (tmp_path / "sevis_lecture.pdf").read_bytes() == b"the lecturer's own file"
    with pytest.raises(ExportError, match="pdf and/or pptx"):
        D.check_deck_formats(["docx"])


def test_deck_formats_match_the_cli():
    from sevis.cli.lecture import DECK_FORMATS
    assert DECK_FORMATS == D.DECK_FORMATS


def test_export_tour_writes_the_handout(tmp_path, embedded):
    from sevis.views import tour as T
    from sevis.views.registry import compute_view
    out = tmp_path / "tour"
    assert main(["export", "tour", "--format", "csv", "--out", str(out)]) == 0
    page = (out / "sevis_tour_handout.html").read_text()
    assert "What SE blocks do in embedded: a tour" in page and "Model: " in page
    for step in T.steps_of(compute_view(embedded, "tour")):
        assert html.escape(step.title) in page
    assert not (out / "sevis_tour_handout.pdf").exists()  # PDF only when --format asks for pdf
    assert main(["export", "tour", "--format", "csv", "--out", str(out)]) == 2  # refused: the files are there


@needs_chrome
@pytest.mark.app
def test_export_view_builds_the_same_deck(media, expected):
    """The Export view's button builds the deck of the Tour (the app's sidebar preselects the same sample images
    `sevis export lecture` uses) and offers it for download: one slide per figure, every step's notes."""
    from pptx import Presentation
    from streamlit.testing.v1 import AppTest
    app = str(Path(__file__).resolve().parent.parent / "app.py")
    at = AppTest.from_file(app, default_timeout=300)
    at.session_state["view"] = "Export"
    at.run()
    assert not at.exception
    at.multiselect(key="deck_formats").set_value(["pptx"])
    at.run()
    assert not any(b.proto.label.startswith("⬇ Download the deck") for b in at.get("download_button"))
    at.button(key="deck_build").click()
    at.run()
    assert not at.exception and not at.main.error
    assert any(b.proto.label.startswith("⬇ Download the deck (PPTX") for b in at.get("download_button"))
    prs = Presentation(io.BytesIO(media["sevis_lecture.pptx"]))
    slides = list(prs.slides)
    assert len(slides) == len(expected[0])  # the Tour alone: no view chosen
    for slide, (title, notes) in zip(slides, expected[0]):
        assert title in slide.shapes.title.text and slide.notes_slide.notes_text_frame.text == notes
