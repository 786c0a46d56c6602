"""`sevis export lecture`: the lecture deck (every Tour step, then the chosen views, as 16:9 slides with the takeaways
as speaker notes; sevis.figures.deck), and the Tour's handout that `sevis export tour` writes beside its figures.
Imports nothing heavy at module level (the parser is built without the plotting stack)."""
from __future__ import annotations

import argparse
from pathlib import Path

from sevis.cli.args import load_from_args, progress_bar
from sevis.errors import ExportError

DECK = "lecture"  # `sevis export lecture`: not a view, the deck of the Tour and the chosen views
DECK_FORMATS = ("pdf", "pptx")  # kept literal (the parser imports no plotting stack); tests match sevis.figures.deck
ONE_IMAGE_VIEWS = ("inside", "block", "channel")  # views that show one image: they get the first one
IMAGE_VIEWS = ("live", "compare", "knockout")  # views that take every image given


def refuse_existing(out: Path, names: list[str], force: bool) -> None:
    """Raise ExportError naming the files of `names` already in `out` (nothing is written), unless `force`."""
    from sevis.files import existing
    taken = existing([out / n for n in names])
    if taken and not force:
        raise ExportError(f"{out} already holds {', '.join(p.name for p in taken)}; nothing was written",
                          cli_hint=". Pass --force to replace them, or name another --out folder.")


def cmd_lecture(args: argparse.Namespace) -> int:
    """Write sevis_lecture.pdf / .pptx into --out: every Tour step and each of --views, one figure per slide."""
    from sevis.analysis.images import NamedImage, default_sample_images
    from sevis.data.preprocess import open_image
    from sevis.figures import deck as D
    from sevis.files import write_atomic
    from sevis.views import tour as T
    from sevis.views.base import ViewRequest
    from sevis.views.registry import compute_view, view_module

    formats = D.check_deck_formats(args.format or DECK_FORMATS)
    if args.classes and len(args.classes) > 1:
        raise ExportError(f"the Tour's class steps show one class; --classes names {len(args.classes)}")
    cls = args.classes[0] if args.classes else None
    views = list(dict.fromkeys(args.views or ()))
    for view in views:
        if view_module(view) is T:  # an unknown view is refused before the model loads
            raise ExportError(f"the deck always begins with every step of the Tour; --views names the views that "
                              f"follow it, so leave {view} out")
    out = Path(args.out)
    refuse_existing(out, [D.deck_file_name(f) for f in formats], args.force)
    loaded = load_from_args(args)
    # The app's sidebar preselects these samples, so the Tour's and the views' requests equal the app's (prepared).
    images = [NamedImage(Path(p).name, open_image(p)) for p in args.images] or default_sample_images(loaded)
    steps, results = [], []
    with progress_bar(len(T.STEPS) + len(views), "sevis export lecture: computing", unit="view") as bar:
        for i in range(len(T.STEPS)):
            steps += T.steps_of(compute_view(loaded, T.SLUG, T.step_request(i, images, args.folder, cls)))
            bar.update(1)
        for view in views:
            shown = images[:1] if view in ONE_IMAGE_VIEWS else images if view in IMAGE_VIEWS else ()
            results.append(compute_view(loaded, view, ViewRequest(images=tuple(shown), folder=args.folder)))
            bar.update(1)
    slides = D.lecture_slides(steps, results)
    with progress_bar(100, "sevis export lecture: drawing the slides", unit="%") as bar:
        decks = D.build_deck(slides, formats, D.deck_title(loaded.shown_name),
                             progress=lambda f: bar.update(round(100 * f) - bar.n))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create output folder {out}: {e.strerror or e}") from None
    for fmt in formats:
        print(write_atomic(out / D.deck_file_name(fmt), decks[fmt], error=ExportError))
    from_tour = sum(len(s.panels) for s in steps)
    print(f"{len(slides)} slides: {from_tour} from the Tour's {len(steps)} steps"
          + (f", {len(slides) - from_tour} from {', '.join(views)}" if views else "")
          + "; each slide's speaker notes hold its step's or view's takeaway.")
    return 0


HANDOUT = "sevis_tour_handout"


def handout_names(formats) -> list[str]:
    """Return the handout files `sevis export tour` writes: HTML always, PDF when the formats ask for PDF."""
    return [f"{HANDOUT}.html"] + ([f"{HANDOUT}.pdf"] if "pdf" in formats else [])


def write_handout(result, loaded, out: Path, formats, context: str) -> list[Path]:
    """Write the Tour's handout (the app's Tour download: figures.handout.tour_handout_html) of a whole-Tour result
    into `out`: HTML, and PDF when `formats` ask for it; return the paths written."""
    from sevis.figures.handout import handout_pdf, tour_handout_html
    from sevis.files import write_atomic
    from sevis.views import tour as T

    page = tour_handout_html(loaded.shown_name, context, [T.handout_section(s) for s in T.steps_of(result)])
    written = [write_atomic(out / f"{HANDOUT}.html", page, error=ExportError)]
    if "pdf" in formats:
        written.append(write_atomic(out / f"{HANDOUT}.pdf", handout_pdf(page), error=ExportError))
    return written
