"""Compare view: two or more images (or class means) overlaid per block, their difference and similarity."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.analysis.reference import paper_blocks
from sevis.app.common import (
    Context,
    block_picker,
    get_reference,
    intro,
    show_notes,
    show_panel,
    shown_result,
    takeaway,
    unless_default,
)
from sevis.app.screen import for_screen
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.compare import ALL_IMAGES, NO_BLOCKS, SLUG, TITLE, mean_label  # noqa: F401 (TITLE: the page's tab)


def render(ctx: Context) -> ViewResult | None:
    """Show the compare view; return its result (None when it shows a message instead)."""
    blocks = ctx.blocks
    intro("Two or more images, or class means from the reference set, side by side at each SE block: overlaid, "
          "their difference channel by channel, and how similar the patterns are at each depth.")
    if not blocks:
        st.info(NO_BLOCKS)
        return None
    use_means = st.toggle("Also offer class means from the reference set", value=len(ctx.images) < 2,
                          key="cmp_means")
    by_name = {im.name: im for im in ctx.images}
    options = list(by_name)
    means: dict[str, str] = {}  # option -> the class it means (ALL_IMAGES: every image)
    if use_means:
        try:
            classes = get_reference(*ctx.key, ctx.folder).stats.classes
        except SevisError as e:
            st.error(str(e))
            return None
        means = {mean_label(c): c for c in [*classes, ALL_IMAGES]}
        options += list(means)
    if len(options) < 2:
        st.info("Pick two or more images (sidebar), or turn on class means.")
        return None
    default = options[:2]
    if len(ctx.images) == 1 and means:
        try:
            results = ctx.results
        except SevisError as e:
            st.error(str(e))
            return None
        top = mean_label(results[0].topk[0][0]) if results else None  # the image against its predicted class's mean
        default = [ctx.images[0].name, top if top in means else options[1]]
    picked = st.multiselect("Compare", options, default=default, key="cmp_items")
    if len(picked) < 2:
        st.info("Choose at least two items to compare.")
        return None
    names = [b.name for b in blocks]
    default_blocks = names if len(names) <= 8 else paper_blocks(blocks)
    sel = block_picker("Blocks", names, default_blocks, "cmp_blocks")
    # Images first, then class means, each in the order picked (the first two are the difference plot's pair).
    classes = tuple(means[p] for p in picked if p in means and p not in by_name) or None
    request = ViewRequest(images=tuple(by_name[p] for p in picked if p in by_name), classes=classes,
                          blocks=unless_default(sel or names, default_blocks),
                          folder=ctx.folder or None if classes else None)  # the reference set only for class means
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    show_notes(result)
    for i, p in enumerate(result.panels):
        show_panel(p, f"cmp_{i}", figure=for_screen(p.figure))
    takeaway(result.takeaway)
    return result
