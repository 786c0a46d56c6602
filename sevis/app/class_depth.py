"""Class × depth view: the paper's Fig. 6 and Fig. 7, the depth profile beside its untrained control, and the
paper's findings checked on this model."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.analysis.reference import paper_blocks, too_few_images
from sevis.app.common import (
    Context,
    block_picker,
    download_menu,
    get_reference,
    intro,
    show_panel,
    show_table,
    shown_result,
    takeaway,
    unless_default,
)
from sevis.app.screen import for_screen
from sevis.figures.plots import readable_table
from sevis.figures.shared_figures import add_channel_targets
from sevis.names import fig6_default_classes
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.class_depth import (  # noqa: F401 (TITLE: main.py)
    FIG6_FORMS,
    RANDOM_NOTE,
    SLUG,
    TITLE,
    default_channels,
)


def render(ctx: Context) -> ViewResult | None:
    """Show the class × depth view; return its result (None when it shows a message instead)."""
    blocks = ctx.blocks
    intro("The paper's Fig. 6 and Fig. 7 over a reference set: the mean excitation of each class at each SE "
          "block, and how much it varies within one class. Where class lines coincide, the block treats every "
          "class alike. Below, four measures of that against depth, beside an untrained copy of the network (a "
          "network that learned nothing can already tell classes apart when the data make it easy), and the "
          "paper's findings checked on this model. Click a channel in Fig. 6 to open it.")
    if not blocks:
        st.info("This model has no SE blocks.")
        return None
    folder = ctx.folder
    try:
        ref = get_reference(*ctx.key, folder)
    except SevisError as e:
        st.error(str(e))
        return None
    acc = f" · accuracy {ref.accuracy:.1%}" if ref.accuracy is not None else ""
    st.caption(f"Statistics over {ref.source}{acc} (change it in the sidebar).")
    if ref.note:
        st.caption(ref.note)
    problem = too_few_images(ref.stats)
    if problem:
        st.warning(problem)
        return None
    classes = ref.stats.classes
    default_classes = fig6_default_classes(classes)
    names = [b.name for b in blocks]
    default_mode, default_n = default_channels(blocks)
    c1, c2 = st.columns([3, 2])
    picked = c1.multiselect("Classes", classes, default=default_classes, key="cd_classes")
    sel = block_picker("Blocks (the paper: the last of each stage and all of the last stage)", names,
                       paper_blocks(blocks), "cd_blocks")
    mode = c2.radio("Channels", ["all", "first", "uniform"], horizontal=True, key="cd_mode",
                    format_func={"all": "all", "first": "first N", "uniform": "N evenly spaced"}.get,
                    index=["all", "first", "uniform"].index(default_mode))
    n = c2.slider("N", 5, max(b.channels for b in blocks), default_n, key="cd_n", disabled=mode == "all")
    c3, c4 = st.columns([3, 2])
    form = c3.radio("Fig. 6 shows", list(FIG6_FORMS), horizontal=True, key="cd_form", format_func=FIG6_FORMS.get)
    f7 = c4.selectbox("Fig. 7 class", picked or classes, key="cd_fig7")
    if not sel:
        st.info("Choose at least one block.")
        return None
    if not picked:
        st.info("Choose at least one class.")
        return None
    request = ViewRequest(classes=unless_default(picked, default_classes),
                          blocks=unless_default(sel, paper_blocks(blocks)),
                          channels=unless_default(mode, default_mode), n=unless_default(n, default_n),
                          fig7_class=unless_default(f7, picked[0]),
                          form=unless_default(form, "deviation") or "deviation",
                          folder=ctx.folder or None)
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    for note in result.notes[1:]:  # the first names the reference set, shown above
        (st.info if note == RANDOM_NOTE else st.caption)(note)
    for i, p in enumerate(result.panels):
        if p.key == "fig6_class_means":
            show_panel(p, f"cd_{i}", clickable_blocks=sel, figure=for_screen(add_channel_targets(p.figure, sel)))
        elif p.key == "paper_vs_model":  # a table reads better as a table on screen; the export keeps the figure
            st.markdown(f"**{p.title}**")
            show_table(readable_table(p.data[["finding", "paper", "blocks", "this_model", "criterion", "shows"]],
                                      text=ctx.lecture), hide_index=True, width="stretch",
                       column_config={"this model": st.column_config.TextColumn(width="large")})
            st.caption(p.caption)
            download_menu(p, f"cd_{i}")
        else:
            show_panel(p, f"cd_{i}", figure=for_screen(p.figure))
    takeaway(result.takeaway)
    return result
