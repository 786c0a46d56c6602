"""Ablations view: the paper's ablation tables beside our trained variants, and two variants side by side
(Fig. 6 at the same blocks and classes, depth profiles overlaid, knock-out sweeps, a computed takeaway)."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.views import ablations as L
from sevis.train.ablations import NOISE_SEEDS, grid_findings, noise_floor, summary
from sevis.names import ABLATIONS, DEFAULT_ABLATION_PAIR as DEFAULT_PAIR, fig6_default_classes

from sevis.app.common import download_menu, intro, show_panel, show_table, takeaway
from sevis.figures.plots import Panel

from sevis.views.ablations import SLUG, TITLE


@st.cache_data(show_spinner="Reading the ablation cards…", max_entries=2)
def get_summary(stamp: tuple):
    """Return the summary of the trained variants (`stamp`: their names, so a new variant refreshes it)."""
    return summary()


@st.cache_resource(show_spinner="Measuring the variant over the reference set…", max_entries=8)
def get_variant(name: str) -> L.Variant:
    """Return a trained variant with its reference statistics (shared by every session)."""
    return L.load_variant(name)


def render(ctx) -> list[Panel]:
    """Show the Ablations view; return its panels. It compares trained variants whatever model the sidebar holds."""
    intro("The paper's ablations (Tables 10-16: the reduction ratio r, the squeeze and excitation operators, which "
          "stages get SE, and where SE sits in the residual unit), each trained here as a small variant of the "
          "default model on the same short schedule. The table sets the paper's numbers beside ours; below, pick "
          "two variants to see how the change shows in the excitations.")
    from sevis.names import trained_ablations
    trained = trained_ablations()
    if not trained:
        st.info("No ablation variant is trained yet. `sevis ablate` trains them (about 5 minutes each on one CPU "
                "core) into pretrained/ablations/.")
        return []
    table = get_summary(tuple(trained))
    panels = [L.table_panel(table), L.deltas_panel(table)]
    stale = L.stale_note(table)
    if stale:
        st.warning(stale)
    st.markdown(f"**{panels[0].title}**")
    show_table(L.display_table(panels[0].data), hide_index=True, width="stretch",
               column_config={"paper's row": st.column_config.TextColumn(width="medium")})
    st.caption(panels[0].caption)
    download_menu(panels[0], "ab_table")
    show_panel(panels[1], "ab_deltas")
    findings = grid_findings(table)
    if findings:
        st.markdown("**What the grid says** (computed from the trained variants)\n\n"
                    + "\n".join(f"- {line}" for line in findings))
    missing = [n for n in ABLATIONS if n not in trained]
    if missing:
        st.caption(f"Not trained yet: {', '.join(missing)} (`sevis ablate` continues where it stopped).")
    if noise_floor(table)["range"] is None:
        st.warning("The noise floor needs the baseline's extra seeds (`sevis ablate --variants "
                   f"{' '.join(NOISE_SEEDS[1:])}`); until then no difference can be called real.")

    c1, c2, c3 = st.columns([1, 1, 2])
    default_a = DEFAULT_PAIR[0] if DEFAULT_PAIR[0] in trained else trained[0]
    a = c1.selectbox("Variant A", trained, index=trained.index(default_a), key="ab_a",
                     format_func=lambda n: f"{n} ({ABLATIONS[n]['axis']})")
    others = [n for n in trained if n != a] or trained
    default_b = DEFAULT_PAIR[1] if DEFAULT_PAIR[1] in others else others[0]
    b = c2.selectbox("Variant B", others, index=others.index(default_b), key="ab_b",
                     format_func=lambda n: f"{n} ({ABLATIONS[n]['axis']})")
    st.caption(f"**{a}**: {ABLATIONS[a]['change']} · **{b}**: {ABLATIONS[b]['change']}")
    try:
        va, vb = get_variant(a), get_variant(b)
    except SevisError as e:
        st.error(str(e))
        return panels
    classes = va.ref.stats.classes
    picked = c3.multiselect("Classes", classes, default=fig6_default_classes(classes), key="ab_classes")
    if not picked:
        st.info("Choose at least one class.")
        return panels
    pair = L.pair_panels(va, vb, picked)
    # One above the other at full width: side by side, each variant's 3×2 grid of blocks is too narrow to read.
    for panel, v in zip(pair[:2], (va, vb)):
        if panel is None:
            st.info(f"{v.name} has no SE blocks: no excitations to plot.")
        else:
            show_panel(panel, f"ab_fig6_{v.name}")
    for i, p in enumerate(pair[2:]):
        show_panel(p, f"ab_pair_{i}")
    takeaway(L.pair_takeaway(table, va, vb))
    return panels + [p for p in pair if p is not None]
