"""`sevis export`: a view's figures (e.g. the paper's Fig. 6) as PNG/SVG/PDF/HTML and their data as CSV/JSON,
computed without the app (sevis.views.registry). Building its parser imports no plotting stack."""
from __future__ import annotations

import argparse
from pathlib import Path

from sevis.cli.args import command_line, load_from_args, nonnegative_int, out_path, positive_int, progress_bar
from sevis.cli.lecture import DECK, DECK_FORMATS, cmd_lecture, handout_names, refuse_existing, write_handout
from sevis.errors import ExportError, SevisError
from sevis.names import FIG6_DEFAULT_CLASSES


def request_from_args(args: argparse.Namespace, images: list):
    """Return the ViewRequest the export's arguments ask for (what is not given stays the view's default)."""
    from sevis.views.base import ViewRequest
    blocks = tuple(args.blocks) if args.blocks else None
    one_block = args.view in ("inside", "block", "channel")
    if one_block and blocks and len(blocks) > 1:
        raise SevisError(f"the {args.view} view shows one block; --block names {len(blocks)} (put image files "
                         "before --block, or after --channel)")
    return ViewRequest(images=tuple(images), classes=args.classes, blocks=None if one_block else blocks,
                       block=blocks[0] if one_block and blocks else None,
                       channels=args.channels, n=args.n, seed=args.seed, fig7_class=args.fig7_class,
                       form=args.form, folder=args.folder, knockout_blocks=args.knockout, mode=args.mode,
                       channel=args.channel, pair=tuple(args.variants) if args.variants else None,
                       step=args.step - 1 if args.step else None,  # --step counts from 1, the request from 0
                       run=args.run, find_flip=getattr(args, "find_flip", False))


def view_summary(result) -> dict:
    """Return what `sevis export` writes beside the figures as <view>_view.json: the view, its panel titles, the
    numbers it states, its takeaway and notes (the same ViewResult the app renders)."""
    from sevis.views.base import plain_numbers
    return {"view": result.slug, "title": result.title, "panels": result.panel_titles(),
            "numbers": plain_numbers(result.numbers), "takeaway": result.takeaway, "notes": list(result.notes)}


def view_formats(formats: list[str] | None) -> list[str]:
    """Return a view export's formats (default png html csv); ExportError names the formats when one is unknown."""
    formats = list(dict.fromkeys(f.lower() for f in formats or DEFAULT_FORMATS))
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad:
        deck = [f for f in bad if f in DECK_FORMATS]
        raise ExportError(f"unknown format {', '.join(bad)} for a view's figures; use {', '.join(EXPORT_FORMATS)}"
                          + (f" ({', '.join(deck)}: the lecture deck, `sevis export lecture --format pdf pptx`)"
                             if deck else ""))
    return formats


def _cmd_export(args: argparse.Namespace) -> int:
    import json

    from sevis.analysis.images import NamedImage
    from sevis.data.preprocess import open_image
    from sevis.figures.export import write_panels
    from sevis.files import write_atomic
    from sevis.views.registry import compute_view, view_module

    if args.view == DECK:
        return cmd_lecture(args)
    if args.views:
        raise SevisError(f"--views chooses the views of the lecture deck (`sevis export {DECK} --views …`); "
                         f"`sevis export {args.view}` writes one view")
    args.format = view_formats(args.format)
    module = view_module(args.view)  # an unknown view is refused before the model loads
    handout = module.SLUG == "tour" and not args.step  # the whole Tour: its handout too
    refuse_existing(Path(args.out), handout_names(args.format) if handout else [], args.force)
    loaded = load_from_args(args)
    images = [NamedImage(Path(p).name, open_image(p)) for p in args.images]
    with progress_bar(100, f"sevis export {args.view}", unit="%") as bar:
        def progress(frac: float) -> None:
            bar.update(round(100 * frac) - bar.n)
        result = compute_view(loaded, args.view, request_from_args(args, images), progress=progress)
    if not result.panels:
        raise SevisError(f"the {module.TITLE} view has nothing to show for {loaded.name} with these inputs"
                         + (f": {' '.join(result.notes)}" if result.notes else ""))
    context = f"Model: {loaded.name} ({loaded.spec}). Command: {command_line(args.argv)}"
    if result.takeaway:
        context += f"\n\nTakeaway: {result.takeaway}"
        print(f"takeaway: {result.takeaway}")
    for note in result.notes:
        print(f"note: {note}")
    if result.notes:  # the pack's README says what the app says beside the figures (e.g. what the ablation grid says)
        context += "\n\nNotes:\n" + "\n".join(f"- {note}" for note in result.notes)
    summary = Path(args.out) / f"{args.view}_view.json"
    if summary.exists() and not args.force:
        raise ExportError(f"{args.out} already holds {summary.name}; nothing was written",
                          cli_hint=". Pass --force to replace it, or name another --out folder.")
    written = write_panels(result.panels, args.out, args.format, pack=args.pack, view=args.view, force=args.force,
                           context=context, slides=args.slides)
    if handout:
        written += write_handout(result, loaded, Path(args.out), args.format, f"Model: {loaded.name} ({loaded.spec}).")
    written.append(write_atomic(summary, json.dumps(view_summary(result), indent=1, ensure_ascii=False).encode(),
                                error=ExportError))
    for path in written:
        print(path)
    return 0


# Kept literal so building the parser imports no plotting stack; tests check they match sevis.views.registry.
EXPORT_VIEWS = ("tour", "live", "compare", "class-depth", "inside", "channel", "knockout", "ablations", "architectures",
                "training", "architecture", "block", "families", "fig6", "fig7", "depth")
EXPORT_FORMATS = ("png", "svg", "pdf", "html", "csv", "json")
DEFAULT_FORMATS = ("png", "html", "csv")


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a view's figures (e.g. the paper's Fig. 6) as PNG/SVG/PDF/HTML and "
                                      "their data as CSV/JSON, or the lecture deck (PDF/PPTX)",
                       description="Examples: sevis export fig6 --classes Trouser Bag --blocks SE_2_2 SE_5_1 "
                                   "--format png csv --out figs/;  sevis export live photo.jpg --out figs/ --pack;  "
                                   "sevis export lecture --format pdf pptx --views class-depth knockout --out deck/;  "
                                   "sevis export tour --out handout/ (the figures and the Tour's handout)")
    p.add_argument("view", choices=EXPORT_VIEWS + (DECK,), metavar="VIEW",
                   help="the app's views: tour (its figures and the handout), live, compare, class-depth (Fig. 6, "
                        "Fig. 7, the depth profile and the paper's findings), inside (one block, one image), channel, "
                        "knockout, ablations, architectures (SE across architectures), training (how the excitations "
                        "emerged), architecture; parts and older names: fig6, fig7, depth, block (= inside), families "
                        "(= architectures); lecture: the deck of every Tour step and the --views, as 16:9 slides with "
                        "the takeaways as speaker notes")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (live, compare, knockout; inside: one; "
                                                               "channel: at most one)")
    p.add_argument("--model", default="embedded", help="model spec (see `sevis models`); default embedded")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card, e.g. timm:seresnet50")
    p.add_argument("--out", required=True, type=out_path, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--force", action="store_true", help="replace files already in --out (without it, an export that "
                                                        "would replace a file stops and names them)")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of pretrained ones: timm/torchvision/sevis names, offline")
    p.add_argument("--format", nargs="+", metavar="FORMAT",
                   help=f"one or more of {' '.join(EXPORT_FORMATS)} (default: png html csv); the lecture deck: "
                        f"{' and/or '.join(DECK_FORMATS)} (default both)")
    p.add_argument("--slides", action="store_true", help="slide-size figures: 16:9 (1920×1080 PNG), with lecture "
                                                         "mode's fonts for a projector")
    p.add_argument("--views", nargs="+", metavar="VIEW", help="lecture: the views whose figures follow the Tour's "
                                                              "steps in the deck (default: the Tour alone)")
    p.add_argument("--classes", nargs="+", metavar="CLASS", help="classes for Fig. 6 (default: the app's, "
                   f"{' '.join(FIG6_DEFAULT_CLASSES)}, or a model's first four); compare: class means to compare "
                   "the images with ('all': the mean over every reference image); lecture: the one class of the "
                   "Tour's class steps")
    p.add_argument("--blocks", "--block", nargs="+", metavar="BLOCK",
                   help="SE blocks to plot (default: the paper's choice); block and channel views: exactly one")
    p.add_argument("--channel", type=nonnegative_int, metavar="N",
                   help="channel of --block (channel view; default: the most class-selective channel of --block, "
                        "or of the whole model without --block)")
    p.add_argument("--channels", choices=("all", "first", "uniform"),
                   help="all channels, the first N or N sampled uniformly (default, as in the app: N evenly spaced "
                        "channels of blocks wider than 64, else all)")
    p.add_argument("--n", type=positive_int, help="N for --channels first/uniform (default 50, or a narrower block's "
                                                  "width); inside: channels each side (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed for the uniform channel sample")
    p.add_argument("--fig7-class", metavar="CLASS", help="class for Fig. 7 (default: the first of --classes)")
    p.add_argument("--folder", metavar="DIR", help="reference images: one sub-folder per class (default: the "
                                                   "bundled reference set for Fashion-MNIST models), or a "
                                                   "FILE.json `sevis stats` wrote (class-depth views)")
    p.add_argument("--knockout", nargs="+", metavar="BLOCK", help="blocks to knock out (knockout view; default: "
                                                                  "for each image the block whose knock-out alone "
                                                                  "changes its prediction most, as the app preselects)")
    p.add_argument("--mode", choices=("identity", "mean"), default="identity",
                   help="knock-out: s := 1 (identity) or s := the reference-set mean")
    p.add_argument("--find-flip", action="store_true",
                   help="knockout: also search each image for the smallest knock-out that changes its prediction "
                        "(each block alone with s := its mean and s := 1, then channels of the most influential "
                        "blocks), as the app's Find a flip button does")
    p.add_argument("--form", choices=("deviation", "paper"), default="deviation",
                   help="Fig. 6 as deviations from all (default) or in the paper's form")
    p.add_argument("--step", type=positive_int, metavar="N", help="tour: only step N (default: every step)")
    p.add_argument("--run", metavar="RUN", help="architectures view: the run whose Fig. 6 and check to show")
    p.add_argument("--variants", nargs=2, metavar=("A", "B"),
                   help="ablations view: the two trained variants to compare (default: baseline gate-tanh)")
    p.add_argument("--pack", action="store_true", help="also write a teaching-pack zip with a README")
    p.set_defaults(func=_cmd_export)
