"""Class × depth view: the paper's Fig. 6 and Fig. 7, and class specificity / saturation against depth."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis import figures as F
from sevis import views as V

from .common import Context, block_picker, get_reference, intro, show_panel, takeaway

TITLE = "Class × depth"


def render(ctx: Context) -> list[F.Panel]:
    """Show the class × depth view; return its panels."""
    loaded, blocks = ctx.loaded, ctx.blocks
    intro("The paper's Fig. 6 and Fig. 7 over a reference set: the mean excitation of each class at each SE "
          "block, and how much it varies within one class. Where class lines coincide, the block treats every "
          "class alike. Click a channel in Fig. 6 to open it.")
    if not blocks:
        st.info("This model has no SE blocks.")
        return []
    folder = st.text_input("Reference images (optional): a folder with one sub-folder per class",
                           key="ref_folder", placeholder="empty: the bundled reference set" if loaded.dataset ==
                           "fashion-mnist" else "empty: the sample photos, one per 'class'")
    try:
        ref = get_reference(*ctx.key, folder.strip())
    except SevisError as e:
        st.error(str(e))
        return []
    acc = f" · accuracy {ref.accuracy:.1%}" if ref.accuracy is not None else ""
    st.caption(f"Statistics over {ref.source}{acc}.")
    classes = ref.stats.classes
    default_classes = [c for c in ("Trouser", "Sneaker", "Bag", "Coat") if c in classes] or classes[:4]
    names = [b.name for b in blocks]
    c1, c2 = st.columns([3, 2])
    picked = c1.multiselect("Classes", classes, default=default_classes, key="cd_classes")
    sel = block_picker("Blocks (the paper: the last of each stage and all of the last stage)", names,
                       V.paper_blocks(blocks), "cd_blocks")
    mode = c2.radio("Channels", ["all", "first", "uniform"], horizontal=True, key="cd_mode",
                    format_func={"all": "all", "first": "first N", "uniform": "N sampled uniformly"}.get,
                    index=2 if max(b.channels for b in blocks) > 64 else 0)
    n = c2.slider("N", 5, max(b.channels for b in blocks), min(50, max(b.channels for b in blocks)), key="cd_n",
                  disabled=mode == "all")
    f7 = st.selectbox("Fig. 7 class", picked or classes, key="cd_fig7")
    if not sel:
        st.info("Choose at least one block.")
        return []
    panels = V.class_depth_panels(ref, picked, sel, mode, n, 0, f7)
    for i, p in enumerate(panels):
        if p.key == "fig6_class_means":
            show_panel(p, f"cd_{i}", clickable_blocks=sel, figure=F.add_channel_targets(p.figure, sel))
        else:
            show_panel(p, f"cd_{i}")
    takeaway(V.class_depth_takeaway(ref.stats.summary()))
    return panels
