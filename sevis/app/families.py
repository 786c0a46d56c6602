"""Architectures view: SE across the paper's architectures (SE-Inception, SE-ResNeXt, SE-MobileNet, SE-VGG against
their plain twins), our table beside the paper's, the depth profiles of every family, Fig. 6 of one, `sevis check`."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.train.family_grid import summary
from sevis.names import FAMILY_RUNS, fig6_default_classes, trained_families
from sevis.figures.plots import Panel
from sevis.views import families as F

from sevis.app.common import download_menu, intro, show_panel, takeaway

from sevis.views.families import SLUG, TITLE


@st.cache_data(show_spinner="Reading the architecture cards…", max_entries=2)
def get_summary(stamp: tuple):
    """Return the summary of the trained runs (`stamp`: their names, so a new run refreshes it)."""
    return summary()


@st.cache_resource(show_spinner="Measuring the model over the reference set…", max_entries=8)
def get_family_model(name: str) -> F.FamilyModel:
    """Return a trained family run with its reference statistics (shared by every session)."""
    return F.load_family_model(name)


@st.cache_data(show_spinner="Checking every SE block…", max_entries=16)
def get_check(name: str, stamp: tuple) -> tuple[Panel, str]:
    return F.check_panel(get_family_model(name))


def render(ctx) -> list[Panel]:
    """Show the Architectures view; return its panels. It reads the trained families whatever the sidebar holds."""
    intro("SE is a drop-in unit: the paper puts it into Inception, ResNeXt, VGG and MobileNet too (Tables 2-3). Here "
          "each of them is trained small, with and without SE, on the same schedule and two seeds. The table sets "
          "our gains beside the paper's; below, the depth profiles of every family and Fig. 6 of one.")
    trained = trained_families()
    if not trained:
        st.info("No architecture model is trained yet. `sevis family` trains them (16 runs, about 40 minutes on two "
                "CPU cores) into pretrained/families/.")
        return []
    table = get_summary(tuple(trained))
    panels = [F.table_panel(table), F.delta_panel(table)]
    st.markdown(f"**{panels[0].title}**")
    st.dataframe(F.display_table(panels[0].data), hide_index=True, width="stretch",
                 column_config={"paper's row": st.column_config.TextColumn(width="medium")})
    st.caption(panels[0].caption)
    download_menu(panels[0], "fam_table")
    show_panel(panels[1], "fam_delta")
    missing = [n for n in FAMILY_RUNS if n not in trained]
    if missing:
        st.caption(f"Not trained yet: {', '.join(missing)} (`sevis family` continues where it stopped).")
    runs = F.se_runs(table)
    if runs:
        profiles = F.profiles_panel({n: F.card_measures(n) for n in runs})
        show_panel(profiles, "fam_profiles")
        panels.append(profiles)
    c1, c2 = st.columns([1, 2])
    run = c1.selectbox("Architecture for Fig. 6 and the check", trained, key="fam_run",
                       index=trained.index(runs[0]) if runs else 0)
    try:
        fm = get_family_model(run)
    except SevisError as e:
        st.error(str(e))
        return panels
    classes = fm.ref.stats.classes
    picked = c2.multiselect("Classes", classes, default=fig6_default_classes(classes), key="fam_classes")
    fig = F.fig6_panel(fm, picked) if picked else None
    if not picked:
        st.info("Choose at least one class.")
    elif fig is None:
        st.info(f"{run} has no SE blocks (the plain twin): no excitations to plot.")
    else:
        show_panel(fig, f"fam_fig6_{run}")
        panels.append(fig)
    check, sentence = get_check(run, tuple(trained))
    st.markdown(f"**{check.title}**")
    st.dataframe(check.data, hide_index=True, width="stretch")
    st.caption(check.caption)
    panels.append(check)
    takeaway(F.families_takeaway(table))
    return panels
