"""Class × depth view: the paper's Fig. 6 and Fig. 7, the depth profile beside its untrained control, and the
paper's findings checked on this model."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.names import fig6_default_classes

from sevis.app.common import (Context, block_picker, download_menu, get_control, get_reference, get_sweep, intro, show_panel,
                     show_table, takeaway)
from sevis.figures.plots import Panel
from sevis.analysis.reference import paper_blocks, too_few_images
from sevis.figures.shared_figures import add_channel_targets
from sevis.views.class_depth import (FIG6_FORMS, class_depth_measures, class_depth_takeaway, class_figure_panels,
                                     depth_profile_panels)

TITLE = "Class × depth"


def render(ctx: Context) -> list[Panel]:
    """Show the class × depth view; return its panels."""
    blocks = ctx.blocks
    intro("The paper's Fig. 6 and Fig. 7 over a reference set: the mean excitation of each class at each SE "
          "block, and how much it varies within one class. Where class lines coincide, the block treats every "
          "class alike. Below, four measures of that against depth, beside an untrained copy of the network (a "
          "network that learned nothing can already tell classes apart when the data make it easy), and the "
          "paper's findings checked on this model. Click a channel in Fig. 6 to open it.")
    if not blocks:
        st.info("This model has no SE blocks.")
        return []
    folder = ctx.folder
    try:
        ref = get_reference(*ctx.key, folder)
    except SevisError as e:
        st.error(str(e))
        return []
    acc = f" · accuracy {ref.accuracy:.1%}" if ref.accuracy is not None else ""
    st.caption(f"Statistics over {ref.source}{acc} (change it in the sidebar).")
    if ref.note:
        st.caption(ref.note)
    problem = too_few_images(ref.stats)
    if problem:
        st.warning(problem)
        return []
    classes = ref.stats.classes
    default_classes = fig6_default_classes(classes)
    names = [b.name for b in blocks]
    c1, c2 = st.columns([3, 2])
    picked = c1.multiselect("Classes", classes, default=default_classes, key="cd_classes")
    sel = block_picker("Blocks (the paper: the last of each stage and all of the last stage)", names,
                       paper_blocks(blocks), "cd_blocks")
    mode = c2.radio("Channels", ["all", "first", "uniform"], horizontal=True, key="cd_mode",
                    format_func={"all": "all", "first": "first N", "uniform": "N evenly spaced"}.get,
                    index=2 if max(b.channels for b in blocks) > 64 else 0)
    n = c2.slider("N", 5, max(b.channels for b in blocks), min(50, max(b.channels for b in blocks)), key="cd_n",
                  disabled=mode == "all")
    c3, c4 = st.columns([3, 2])
    form = c3.radio("Fig. 6 shows", list(FIG6_FORMS), horizontal=True, key="cd_form", format_func=FIG6_FORMS.get)
    f7 = c4.selectbox("Fig. 7 class", picked or classes, key="cd_fig7")
    if not sel:
        st.info("Choose at least one block.")
        return []
    # Fig. 6 and 7 first; the untrained control and the knock-out sweeps behind the depth profile take longer.
    panels = class_figure_panels(ref, picked, sel, mode, n, 0, f7, form)
    for i, p in enumerate(panels):
        if p.key == "fig6_class_means":
            show_panel(p, f"cd_{i}", clickable_blocks=sel, figure=add_channel_targets(p.figure, sel))
        else:
            show_panel(p, f"cd_{i}")
    control = ko_identity = ko_mean = None
    if ctx.random_weights:
        st.info("With random weights these statistics are themselves an untrained control: they show what the data "
                "and the architecture give without learning. The paper's findings are about trained models, so "
                "their table is not shown.")
    else:
        try:
            control = get_control(*ctx.key, folder)
            if ref.accuracy is not None:  # the knock-out finding needs labels in the model's classes
                ko_identity = get_sweep(*ctx.key, folder, "identity").data
                ko_mean = get_sweep(*ctx.key, folder, "mean").data
        except SevisError as e:
            st.warning(str(e))
    measures, paper = class_depth_measures(ref, control, blocks, ko_identity, ko_mean)
    profile = depth_profile_panels(ref, measures, None if ctx.random_weights else paper)
    for i, p in enumerate(profile, start=len(panels)):
        if p.key == "paper_vs_model":  # a table reads better as a table on screen; the export keeps the figure
            st.markdown(f"**{p.title}**")
            show_table(p.data[["finding", "paper", "blocks", "this_model", "criterion", "shows"]],
                       hide_index=True, width="stretch",
                       column_config={"this_model": st.column_config.TextColumn("this model", width="large")})
            st.caption(p.caption)
            download_menu(p, f"cd_{i}")
        else:
            show_panel(p, f"cd_{i}")
    panels += profile
    fig6_data = panels[0].data if form == "deviation" else None
    takeaway(class_depth_takeaway(measures, None if ctx.random_weights else paper, sel, fig6_data))
    return panels
