"""Inside a block view: one SE block's computation for one image, U → z → δ(W1·z) → s → U·s → prediction."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.analysis.anatomy import DEFAULT_K, block_anatomy, chain_text
from sevis.core.formula import block_formula
from sevis.figures.overlay import overlay_panel
from sevis.views.inside import anatomy_panels, anatomy_takeaway, default_block

from sevis.app.common import Context, intro, show_panel, takeaway
from sevis.figures.plots import Panel

from sevis.views.inside import SLUG, TITLE


def render(ctx: Context) -> list[Panel]:
    """Show the chosen block's computation for the chosen image; return its panels."""
    intro("One SE block at work on one image: its input U, the squeeze z (one average per channel), the "
          "bottleneck δ(W1·z), the excitation s and the rescaled output U·s, with their shapes. Feature maps show "
          "the channels s keeps most and least, before and after scaling on one colour scale.")
    if not ctx.blocks:
        st.info("This model has no SE blocks, so there is no block to look inside.")
        return []
    if not ctx.images:
        st.info("Upload an image in the sidebar, or pick a sample image.")
        return []
    names = [b.name for b in ctx.blocks]
    c1, c2, c3 = st.columns([2, 2, 1])
    img_name = c1.selectbox("Image", [im.name for im in ctx.images], key="in_image")
    block = c2.selectbox("SE block (shallow → deep)", names, index=names.index(default_block(ctx.blocks)),
                         key="in_block")
    k = c3.number_input("Channels each side", 1, 8, DEFAULT_K, key="in_k")
    image = next(im for im in ctx.images if im.name == img_name)
    try:
        a = block_anatomy(ctx.loaded, image, block)
    except SevisError as e:
        st.error(str(e))
        return []
    gate, act = block_formula(ctx.loaded.model, a.block)
    st.markdown(f"**{chain_text(a, gate)}**")
    st.caption(f"This block computes s = {gate}(W₂·{act}(W₁·z))" if act else f"This block computes s = {gate}(W·z)")
    for note in a.notes:
        st.warning(note)
    panels = anatomy_panels(a, int(k), gate, act)
    show_panel(panels[0], "in_chain", clickable_blocks=names)
    show_panel(panels[1], "in_maps")
    panels.append(overlay_panel(ctx.loaded, a, image))  # the same channels laid over the image (CAM-style)
    show_panel(panels[-1], "in_overlay")
    left, _ = st.columns([2, 1])
    with left:
        show_panel(panels[2], "in_pred")
    takeaway(anatomy_takeaway(a, int(k)))
    return panels
