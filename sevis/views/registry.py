"""The panels of any view for `sevis export`, computed without the app. Sits above the views: no view imports it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

from sevis.analysis.anatomy import block_anatomy
from sevis.errors import SevisError
from sevis.analysis.images import NamedImage, analyse_images
from sevis.analysis.knockout import Mode
from sevis.names import DEFAULT_SPEC, EMBEDDED, fig6_default_classes, snapshot_epochs
from sevis.figures.overlay import overlay_panel
from sevis.figures.plots import Panel
from sevis.core.recorder import find_se_blocks
from sevis.analysis.reference import class_mean_excitations, paper_blocks, reference_batches, reference_statistics
from sevis.views.ablations import lab_panels
from sevis.views.architecture import architecture_panels
from sevis.views.channel import channel_panels, reference_excitations
from sevis.views.class_depth import class_depth_panels
from sevis.views.compare import compare_panels
from sevis.views.families import families_panels
from sevis.views.inside import anatomy_panels
from sevis.views.knockout import knockout_image, knockout_sweep_panel
from sevis.views.live import live_panels, with_input_images
from sevis.views.training import snapshot_panels, training_history, training_overview_panels
from sevis.models.zoo import LoadedModel


EXPORT_VIEWS = ("class-depth", "fig6", "fig7", "depth", "live", "compare", "knockout", "architecture", "block",
                "channel", "ablations", "families", "training")
# ablations: sevis.views.ablations.lab_panels (it compares models, not one); training: the snapshots of the embedded
# model picked (sevis.views.training)


def export_view_panels(loaded: LoadedModel, view: str, images: Sequence[NamedImage] = (),
                       classes: Sequence[str] | None = None, blocks: Sequence[str] | None = None,
                       channels: str = "uniform", n: int | None = 50, seed: int = 0, fig7_class: str | None = None,
                       folder: str | None = None, knockout_blocks: Sequence[str] | None = None, mode: Mode = "identity",
                       progress: Callable[[float], None] | None = None, channel: int | None = None) -> list[Panel]:
    """Return the panels of one view, computed without the app (for `sevis export`).

    class-depth: Fig. 6, Fig. 7 and the depth profile (fig6 / fig7 / depth: just that one); live: per image;
    compare: the images against each other; knockout: the images' predictions with `knockout_blocks` knocked
    out and the reference-set sweep; architecture: block table and parameter views; block: Inside a block
    for one image and one block (`blocks`); channel: the Channel view of `channel` in one block, with an
    optional image.
    """
    if view not in EXPORT_VIEWS:
        raise SevisError(f"unknown view {view!r}; choose one of {', '.join(EXPORT_VIEWS)}")
    if view == "ablations":
        from sevis.names import DEFAULT_ABLATION_PAIR
        return lab_panels(*DEFAULT_ABLATION_PAIR, list(classes) if classes else None)[0]
    if view == "families":  # every architecture (sevis.views.families); Fig. 6 and the check of a family:<run>
        run = loaded.spec.partition(":")[2] if loaded.spec.startswith("family:") else None
        return families_panels(run, list(classes) if classes else None)[0]
    se_blocks = [b for b, _ in find_se_blocks(loaded.model)]
    names = [b.name for b in se_blocks]
    if view == "training":
        return _training_panels(loaded, classes, blocks, channels, n, seed, progress)
    if view in ("block", "channel") and (not blocks or len(blocks) != 1):
        raise SevisError(f"the {view} view needs exactly one block, --block NAME (put image files before "
                         "--block, or after --channel)")
    if blocks:
        unknown = [b for b in blocks if b not in names]
        if unknown:
            raise SevisError(f"no SE block named {', '.join(unknown)} in {loaded.name}; blocks: {', '.join(names)}")
    if view == "architecture":
        return architecture_panels(loaded)
    if not se_blocks:
        raise SevisError(f"{loaded.name} has no SE blocks, so there are no excitations to plot")
    if view in ("live", "compare") and not images:
        raise SevisError(f"the {view} view needs image files")
    if view in ("block", "channel"):
        return _block_or_channel_panels(loaded, view, images, blocks, channel, folder, progress)
    if view == "live":
        return [p for r in analyse_images(loaded, images)
                for p in with_input_images(loaded, r, live_panels(r, blocks))]
    if view == "compare":
        results = analyse_images(loaded, images)
        if len(results) < 2:
            raise SevisError("compare needs at least two images")
        return compare_panels(OrderedDict((r.name, r.excitations) for r in results), blocks)
    if view == "knockout":
        ko = list(knockout_blocks or blocks or [b.name for b in se_blocks if b.stage == se_blocks[-1].stage])
        means = None
        if mode == "mean":
            means = class_mean_excitations(reference_statistics(loaded, folder).stats, "all")
        panels = [knockout_image(loaded, im, ko, mode, means).panel for im in images]
        batches, source = reference_batches(loaded, folder)
        panels.append(knockout_sweep_panel(loaded, batches, mode, means, source, progress,
                                           total=sum(len(y) for _, y in batches)))
        return panels
    ref = reference_statistics(loaded, folder, progress=progress)
    classes = list(classes) if classes else fig6_default_classes(ref.stats.classes)
    unknown = [c for c in classes if c not in ref.stats.classes]
    if unknown:
        raise SevisError(f"unknown class(es) {', '.join(unknown)}; classes: {', '.join(ref.stats.classes)}")
    if fig7_class and fig7_class not in ref.stats.classes:
        raise SevisError(f"unknown class {fig7_class!r} for Fig. 7; classes: {', '.join(ref.stats.classes)}")
    panels = class_depth_panels(ref, classes, list(blocks) if blocks else paper_blocks(se_blocks), channels, n,
                                seed, fig7_class)
    keep = {"fig6": "fig6_class_means", "fig7": "fig7_within_class", "depth": "depth_profile"}.get(view)
    return [p for p in panels if keep is None or p.key == keep]


def _training_panels(loaded: LoadedModel, classes: Sequence[str] | None, blocks: Sequence[str] | None,
                     channels: str, n: int | None, seed: int, progress: Callable[[float], None] | None) -> list[Panel]:
    """Return the Training view for `sevis export training`: the overview, then Fig. 6 and the depth profile of
    every snapshot of the embedded model picked (or of the default one when the picked model has none)."""
    base = loaded.spec.partition("@")[0]
    history = training_history(base if base in EMBEDDED and snapshot_epochs(base) else DEFAULT_SPEC,
                               progress=progress)
    stats = history.snapshots[-1].stats
    classes = list(classes) if classes else fig6_default_classes(stats.classes)
    unknown = [c for c in classes if c not in stats.classes] + [b for b in blocks or () if b not in stats.blocks]
    if unknown:
        raise SevisError(f"unknown class(es) or block(s) {', '.join(unknown)}; classes: {', '.join(stats.classes)}; "
                         f"blocks: {', '.join(stats.blocks)}")
    blocks = list(blocks) if blocks else paper_blocks(history.blocks)
    panels = training_overview_panels(history)
    for epoch in history.epochs:
        panels += snapshot_panels(history, epoch, classes, blocks, channels, n, seed)
    return panels


def _block_or_channel_panels(loaded: LoadedModel, view: str, images: Sequence[NamedImage],
                             blocks: Sequence[str] | None, channel: int | None, folder: str | None,
                             progress: Callable[[float], None] | None) -> list[Panel]:
    """Return the Inside a block (view "block") or Channel (view "channel") panels for `sevis export`."""
    if view == "block":
        if len(images) != 1:
            raise SevisError("the block view needs exactly one image file")
        if channel is not None:
            raise SevisError("--channel belongs to the channel view (sevis export channel --block B --channel C)")
        a = block_anatomy(loaded, images[0], blocks[0])
        return anatomy_panels(a) + [overlay_panel(loaded, a, images[0])]
    if channel is None:
        raise SevisError("the channel view needs --channel N")
    if len(images) > 1:
        raise SevisError("the channel view takes at most one image file")
    ref = reference_excitations(loaded, folder, progress=progress)
    return channel_panels(loaded, ref, blocks[0], channel, images[0] if images else None).panels
