"""Architectures view: SE across the paper's architectures (SE-Inception, SE-ResNeXt, SE-MobileNet, SE-VGG against
their plain twins), our table beside the paper's, the depth profiles of every family, Fig. 6 of one, `sevis check`."""
from __future__ import annotations

import streamlit as st

from sevis.app.common import Context, download_menu, intro, show_panel, shown_result, takeaway, unless_default
from sevis.figures.plots import readable_table
from sevis.names import fig6_default_classes, trained_families
from sevis.views import families as F
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.families import SLUG, TITLE  # noqa: F401 (TITLE: the page's tab)


def render(ctx: Context) -> ViewResult | None:
    """Show the Architectures view; return its result (None when it shows a message instead). It reads the trained
    families whatever the sidebar holds (a family run picked there opens as the run below)."""
    intro("SE is a drop-in unit: the paper puts it into Inception, ResNeXt, VGG and MobileNet too (Tables 2-3). Here "
          "each of them is trained small, with and without SE, on the same schedule and several seeds; SE − plain is "
          "read with a paired 95% interval on the test split and on backgrounds training never used. Below: the "
          "depth profiles of every family, what SE adds beyond its input, and Fig. 6 of one.")
    trained = trained_families()
    if not trained:
        st.info(F.NOT_TRAINED)
        return None
    head = st.container()  # the table, gains and profiles, above the pickers that choose the request
    c1, c2 = st.columns([1, 2])
    default_run = F.default_run(ctx.loaded, trained)
    run = c1.selectbox("Architecture for Fig. 6 and the check", trained, key="fam_run",
                       index=trained.index(default_run))
    classes = F.run_classes(run)
    default_classes = fig6_default_classes(classes)
    picked = c2.multiselect("Classes", classes, default=default_classes, key="fam_classes")
    # Without classes Fig. 6 is not drawn, but the rest is: the default classes' result holds it.
    request = ViewRequest(run=unless_default(run, default_run),
                          classes=unless_default(picked, default_classes) if picked else None)
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    with head:
        table = result.panel("architectures_table")
        if F.is_paired_table(table.data):
            shown = F.display_table(table.data)
            st.markdown(f"**{table.title}**")
            # two tables, so that at projector width neither hides columns: our results, then cost and the paper's
            st.dataframe(shown[F.RESULT_COLUMNS], hide_index=True, width="stretch")
            st.dataframe(shown[F.COST_COLUMNS], hide_index=True, width="stretch",
                         column_config={"paper's row": st.column_config.TextColumn(width="medium")})
            st.caption(table.caption)
            download_menu(table, "fam_table")
        else:  # a result prepared by an older sevis: its own table figure
            show_panel(table, "fam_table")
        show_panel(result.panel("architectures_delta"), "fam_delta")
        for note in result.notes:
            if note.startswith("Not trained yet"):
                st.caption(note)
        if result.panel("architectures_depth_profiles") is not None:
            show_panel(result.panel("architectures_depth_profiles"), "fam_profiles")
        adds = result.panel("architectures_what_se_adds")
        if adds is not None:
            show_panel(adds, "fam_adds")
            with st.expander("What SE adds, block by block"):
                st.dataframe(F.se_adds_table(adds.data), hide_index=True, width="stretch")
                st.caption(F.SE_ADDS_TABLE_CAPTION)
        for note in result.notes:
            if note.startswith("What SE adds"):
                st.caption(note)
    fig = result.panel(f"fig6_{run}")
    if not picked:
        st.info("Choose at least one class.")
    elif fig is None:
        st.info(f"{run} has no SE blocks (the plain twin): no excitations to plot.")
    else:
        show_panel(fig, f"fam_fig6_{run}")
    check = result.panel(f"check_{run}")
    st.markdown(f"**{check.title}**")
    st.dataframe(readable_table(check.data.drop(columns=["path"]), F.CHECK_NAMES,
                                percent=("near_0", "near_half", "near_1"), digits=2), hide_index=True, width="stretch")
    st.caption(check.caption)
    takeaway(result.takeaway)
    return result
