"""`sevis export`: a view's figures (e.g. the paper's Fig. 6) as PNG/SVG/PDF/HTML and their data as CSV/JSON,
computed without the app (sevis.views.registry). Building its parser imports no plotting stack."""
from __future__ import annotations

import argparse
from pathlib import Path

from sevis.cli.args import command_line, load_from_args, nonnegative_int, out_path, positive_int, progress_bar
from sevis.errors import SevisError
from sevis.names import FIG6_DEFAULT_CLASSES


def _cmd_export(args: argparse.Namespace) -> int:
    from sevis.figures.export import write_panels
    from sevis.data.preprocess import open_image
    from sevis.analysis.images import NamedImage
    from sevis.views.registry import export_view_panels

    if args.view == "ablations":
        return _export_ablations(args)
    loaded = load_from_args(args)
    images = [NamedImage(Path(p).name, open_image(p)) for p in args.images]
    with progress_bar(100, f"sevis export {args.view}", unit="%") as bar:
        def progress(frac: float) -> None:
            bar.update(round(100 * frac) - bar.n)
        panels = export_view_panels(
            loaded, args.view, images, classes=args.classes, blocks=args.blocks, channels=args.channels, n=args.n,
            seed=args.seed, fig7_class=args.fig7_class, folder=args.folder, knockout_blocks=args.knockout,
            mode=args.mode, progress=progress, channel=args.channel)
    written = write_panels(panels, args.out, args.format, pack=args.pack, view=args.view, force=args.force,
                           context=f"Model: {loaded.name} ({loaded.spec}). Command: {command_line(args.argv)}")
    for path in written:
        print(path)
    return 0


def _export_ablations(args: argparse.Namespace) -> int:
    """`sevis export ablations`: the paper's table beside ours and a pair of variants, headless."""
    from sevis.views.ablations import lab_panels
    from sevis.train.ablations import grid_findings, summary
    from sevis.figures.export import write_panels
    from sevis.names import DEFAULT_ABLATION_PAIR

    pair = args.variants or list(DEFAULT_ABLATION_PAIR)
    if len(pair) != 2:
        raise SevisError(f"--variants takes two ablation variants to compare, got {len(pair)}")
    panels, takeaway = lab_panels(pair[0], pair[1], args.classes)
    context = f"Ablation variants {pair[0]} and {pair[1]}. Command: {command_line(args.argv)}"
    findings = grid_findings(summary())
    if findings:
        context += "\n\nWhat the grid says:\n" + "\n".join(f"- {line}" for line in findings)
        print("what the grid says:\n" + "\n".join(f"  - {line}" for line in findings))
    if takeaway:
        context += f"\n\nTakeaway: {takeaway}"
        print(f"takeaway: {takeaway}")
    for path in write_panels(panels, args.out, args.format, pack=args.pack, view="ablations", context=context,
                             force=args.force):
        print(path)
    return 0


# Kept literal so building the parser imports no plotting stack; tests check they match views/export.
EXPORT_VIEWS = ("class-depth", "fig6", "fig7", "depth", "live", "compare", "knockout", "architecture", "block",
                "channel", "ablations", "families", "training")
EXPORT_FORMATS = ("png", "svg", "pdf", "html", "csv", "json")


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a view's figures (e.g. the paper's Fig. 6) as PNG/SVG/PDF/HTML and "
                                      "their data as CSV/JSON",
                       description="Examples: sevis export fig6 --classes Trouser Bag --blocks SE_2_2 SE_5_1 "
                                   "--format png csv --out figs/;  sevis export live photo.jpg --out figs/ --pack")
    p.add_argument("view", choices=EXPORT_VIEWS, help="class-depth (Fig. 6, Fig. 7 and the depth profile), fig6, "
                                                      "fig7, depth, live, compare, knockout, architecture, block, channel "
                                                      "ablations (the paper's ablation table beside ours), families (SE across "
                                                      "architectures) or training "
                                                      "(how the excitations emerged, from the training snapshots)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (live, compare, knockout)")
    p.add_argument("--model", default="embedded", help="model spec (see `sevis models`); default embedded")
    p.add_argument("--arch", help="architecture of a weights file without a sevis card, e.g. timm:seresnet50")
    p.add_argument("--out", required=True, type=out_path, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--force", action="store_true", help="replace files already in --out (without it, an export that "
                                                        "would replace a file stops and names them)")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of pretrained ones: timm/torchvision/sevis names, offline")
    p.add_argument("--format", nargs="+", choices=EXPORT_FORMATS, default=["png", "html", "csv"],
                   help="one or more of %(choices)s (default: png html csv)")
    p.add_argument("--classes", nargs="+", metavar="CLASS", help="classes for Fig. 6 (default: the app's, "
                   f"{' '.join(FIG6_DEFAULT_CLASSES)}, or a model's first four)")
    p.add_argument("--blocks", "--block", nargs="+", metavar="BLOCK",
                   help="SE blocks to plot (default: the paper's choice); block and channel views: exactly one")
    p.add_argument("--channel", type=nonnegative_int, metavar="N", help="channel of --block (channel view)")
    p.add_argument("--channels", choices=("all", "first", "uniform"), default="uniform",
                   help="all channels, the first N or N sampled uniformly (default, as in the paper)")
    p.add_argument("--n", type=positive_int, default=50, help="N for --channels first/uniform (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed for the uniform channel sample")
    p.add_argument("--fig7-class", metavar="CLASS", help="class for Fig. 7 (default: the first of --classes)")
    p.add_argument("--folder", metavar="DIR", help="reference images: one sub-folder per class (default: the "
                                                   "bundled reference set for Fashion-MNIST models), or a "
                                                   "FILE.json `sevis stats` wrote (class-depth views)")
    p.add_argument("--knockout", nargs="+", metavar="BLOCK", help="blocks to knock out (knockout view; default: "
                                                                  "the last stage)")
    p.add_argument("--mode", choices=("identity", "mean"), default="identity",
                   help="knock-out: s := 1 (identity) or s := the reference-set mean")
    p.add_argument("--variants", nargs=2, metavar=("A", "B"),
                   help="ablations view: the two trained variants to compare (default: baseline gate-tanh)")
    p.add_argument("--pack", action="store_true", help="also write a teaching-pack zip with a README")
    p.set_defaults(func=_cmd_export)
