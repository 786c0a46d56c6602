"""Channel view: one channel of one SE block over the reference set, on the current image, and knocked out."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.app.common import (
    Context,
    get_reference,
    intro,
    show_notes,
    show_panel,
    shown_result,
    takeaway,
    unless_default,
)
from sevis.app.screen import phone
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.channel import NO_BLOCKS, SLUG, TITLE, default_channel  # noqa: F401 (TITLE: the page's tab)

NO_IMAGE = "(no image)"


def render(ctx: Context) -> ViewResult | None:
    """Show the picked channel (from a click elsewhere or the pickers); return its result (None when it shows a
    message instead)."""
    intro("One channel of one SE block. Pick it here, or click a channel in the Live heat strip, in Fig. 6 or "
          "in Inside a block. You see its s for every class over the reference set, the reference images that "
          "excite it most and least, its feature map on the chosen image before and after scaling, and the "
          "prediction with this channel's s set to 0 and to 1.")
    if not ctx.blocks:
        st.info(NO_BLOCKS)
        return None
    names = [b.name for b in ctx.blocks]
    try:
        stats = get_reference(*ctx.key, ctx.folder).stats  # picks the default channel, as the view does
    except SevisError as e:
        st.error(str(e))
        return None
    first_block, first_channel = default_channel(stats, names)  # the model's most class-selective channel
    if st.session_state.get("ch_block") not in names:
        st.session_state["ch_block"] = first_block
    c1, c2, c3 = st.columns([2, 1, 2])
    block = c1.selectbox("SE block", names, key="ch_block")
    channels = next(b.channels for b in ctx.blocks if b.name == block)
    block_default = first_channel if block == first_block else default_channel(stats, names, block)[1]
    # Open on the block's most class-selective channel, and again whenever only the block changes; a channel set
    # together with its block (a click in another view) or typed in is kept.
    shown = st.session_state.get("ch_shown")  # (block, channel) of the last run
    channel_now = st.session_state.get("ch_channel")
    only_block_changed = shown is not None and shown[0] != block and channel_now == shown[1]
    if channel_now is None or only_block_changed or not 0 <= int(channel_now) < channels:
        st.session_state["ch_channel"] = block_default
    channel = c2.number_input(f"Channel (0–{channels - 1})", 0, channels - 1, key="ch_channel", step=1)
    st.session_state["ch_shown"] = (block, int(channel))
    if int(channel) == block_default:
        c2.caption("the block's most class-selective channel")
    options = [im.name for im in ctx.images] + [NO_IMAGE]
    img_name = c3.selectbox("Image", options, key="ch_image")
    image = next((im for im in ctx.images if im.name == img_name), None)
    request = ViewRequest(images=(image,) if image is not None else (), block=unless_default(block, first_block),
                          channel=unless_default(int(channel), block_default), folder=ctx.folder or None)
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    show_notes(result)
    p = result.panels
    show_panel(p[0], "ch_by_class")
    show_panel(p[1], "ch_gallery")
    if len(p) > 2 and (ctx.lecture or phone()):  # one above the other: a third of the page cuts the map's title
        show_panel(p[2], "ch_map")
        show_panel(p[3], "ch_knockout")
    elif len(p) > 2:
        left, right = st.columns([2, 3])
        with left:
            show_panel(p[2], "ch_map")
        with right:
            show_panel(p[3], "ch_knockout")
    else:
        st.info("Pick an image (sidebar) to see this channel's feature map and the one-channel knock-out.")
    takeaway(result.takeaway)
    return result
