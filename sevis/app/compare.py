"""Compare view: two or more images (or class means) overlaid per block, their difference and similarity."""
from __future__ import annotations

from collections import OrderedDict

import streamlit as st


from sevis.app.common import Context, block_picker, get_reference, intro, show_panel, takeaway
from sevis.figures.plots import Panel
from sevis.analysis.reference import class_mean_excitations, paper_blocks
from sevis.views.compare import compare_panels, compare_takeaway

from sevis.views.compare import SLUG, TITLE


def render(ctx: Context) -> list[Panel]:
    """Show the compare view; return its panels."""
    results, blocks = ctx.results, ctx.blocks
    intro("Two or more images, or class means from the reference set, side by side at each SE block: overlaid, "
          "their difference channel by channel, and how similar the patterns are at each depth.")
    if not blocks:
        st.info("This model has no SE blocks: nothing to compare.")
        return []
    use_means = st.toggle("Also offer class means from the reference set", value=len(results) < 2, key="cmp_means")
    options = [r.name for r in results]
    ref = None
    if use_means:
        ref = get_reference(*ctx.key, ctx.folder)
        options += [f"mean of {c}" for c in ref.stats.classes] + ["mean of all images"]
    if len(options) < 2:
        st.info("Pick two or more images (sidebar), or turn on class means.")
        return []
    default = options[:2]
    if len(results) == 1 and ref is not None:
        top = results[0].topk[0][0]
        default = [results[0].name, f"mean of {top}" if f"mean of {top}" in options else options[1]]
    picked = st.multiselect("Compare", options, default=default, key="cmp_items")
    if len(picked) < 2:
        st.info("Choose at least two items to compare.")
        return []
    items = OrderedDict()
    by_name = {r.name: r for r in results}
    for p in picked:
        if p in by_name:
            items[p] = by_name[p].excitations
        else:
            cls = p.removeprefix("mean of ")
            items[p] = class_mean_excitations(ref.stats, "all" if cls == "all images" else cls)
    names = [b.name for b in blocks]
    sel = block_picker("Blocks", names, names if len(names) <= 8 else paper_blocks(blocks), "cmp_blocks")
    panels = compare_panels(items, sel or names)
    if len(picked) > 2:
        st.caption(f"The difference plot shows the first two: {picked[0]} and {picked[1]}.")
    for i, p in enumerate(panels):
        show_panel(p, f"cmp_{i}")
    takeaway(compare_takeaway(panels[-1].data))
    return panels
