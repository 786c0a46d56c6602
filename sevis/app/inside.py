"""Inside a block view: one SE block's computation for one image, U → z → δ(W1·z) → s → U·s → prediction."""
from __future__ import annotations

import streamlit as st

from sevis.analysis.anatomy import DEFAULT_K
from sevis.app.common import Context, intro, show_panel, shown_result, takeaway, unless_default
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.inside import MAX_K, NO_BLOCKS, SLUG, TITLE, default_block  # noqa: F401 (TITLE: the page's tab)


def render(ctx: Context) -> ViewResult | None:
    """Show the chosen block's computation for the chosen image; return its result (None when it shows a message
    instead)."""
    intro("One SE block at work on one image: its input U, the squeeze z (one average per channel), the "
          "bottleneck δ(W1·z), the excitation s and the rescaled output U·s, with their shapes. Feature maps show "
          "the channels s keeps most and least, before and after scaling on one colour scale.")
    if not ctx.blocks:
        st.info(NO_BLOCKS)
        return None
    if not ctx.images:
        st.info("Upload an image in the sidebar, or pick a sample image.")
        return None
    names = [b.name for b in ctx.blocks]
    first = default_block(ctx.blocks)
    c1, c2, c3 = st.columns([2, 2, 1])
    img_name = c1.selectbox("Image", [im.name for im in ctx.images], key="in_image")
    block = c2.selectbox("SE block (shallow → deep)", names, index=names.index(first), key="in_block")
    k = c3.number_input("Channels each side", 1, MAX_K, DEFAULT_K, key="in_k")
    image = next(im for im in ctx.images if im.name == img_name)
    request = ViewRequest(images=(image,), block=unless_default(block, first), n=unless_default(int(k), DEFAULT_K))
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    for note in result.notes:  # the chain with its shapes, the block's formula, then what could not be read
        if note.startswith("U ("):
            st.markdown(f"**{note}**")
        elif note.startswith("This block computes"):
            st.caption(note)
        else:
            st.warning(note)
    panels = {p.key.rsplit("_", 1)[-1]: p for p in result.panels}
    show_panel(panels["chain"], "in_chain", clickable_blocks=names)
    show_panel(panels["maps"], "in_maps")
    show_panel(panels["overlay"], "in_overlay")  # the same channels laid over the image (CAM-style)
    left, _ = st.columns([2, 1])
    with left:
        show_panel(panels["prediction"], "in_pred")
    takeaway(result.takeaway)
    return result
