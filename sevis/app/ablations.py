"""Ablations view: the paper's ablation tables beside our trained variants, and two variants side by side
(Fig. 6 at the same blocks and classes, depth profiles overlaid, knock-out sweeps, a computed takeaway)."""
from __future__ import annotations

import streamlit as st

from sevis.app.common import (
    Context,
    download_menu,
    intro,
    show_panel,
    show_table,
    shown_result,
    takeaway,
    unless_default,
)
from sevis.app.screen import for_screen
from sevis.names import ABLATIONS, DEFAULT_ABLATION_PAIR, fig6_default_classes, trained_ablations
from sevis.views import ablations as L
from sevis.views.ablations import SLUG, TITLE  # noqa: F401 (TITLE: the page's tab)
from sevis.views.base import ViewRequest, ViewResult


def render(ctx: Context) -> ViewResult | None:
    """Show the Ablations view; return its result (None when it shows a message instead). It compares trained
    variants whatever model the sidebar holds."""
    intro("The paper's ablations (Tables 10-16: the reduction ratio r, the squeeze and excitation operators, which "
          "stages get SE, and where SE sits in the residual unit), each trained here as a small variant of the "
          "default model on the same short schedule. The table sets the paper's numbers beside ours; below, pick "
          "two variants to see how the change shows in the excitations.")
    trained = trained_ablations()
    if not trained:
        st.info(L.NOT_TRAINED)
        return None
    head = st.container()  # the table and what the grid says, above the pickers that choose the request
    c1, c2, c3 = st.columns([1, 1, 2])
    default_a = L.default_pair(trained)[0]
    a = c1.selectbox("Variant A", trained, index=trained.index(default_a), key="ab_a",
                     format_func=lambda n: f"{n} ({ABLATIONS[n]['axis']})")
    others = [n for n in trained if n != a] or trained
    default_b = DEFAULT_ABLATION_PAIR[1] if DEFAULT_ABLATION_PAIR[1] in others else others[0]
    b = c2.selectbox("Variant B", others, index=others.index(default_b), key="ab_b",
                     format_func=lambda n: f"{n} ({ABLATIONS[n]['axis']})")
    st.caption(f"**{a}**: {ABLATIONS[a]['change']} · **{b}**: {ABLATIONS[b]['change']}")
    classes = L.variant_classes(a)
    default_classes = fig6_default_classes(classes)
    picked = c3.multiselect("Classes", classes, default=default_classes, key="ab_classes")
    # Without classes the pair is not drawn, but the table still is: the default classes' result holds it.
    request = ViewRequest(pair=unless_default((a, b), L.default_pair(trained)),
                          classes=unless_default(picked, default_classes) if picked else None)
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    with head:
        _show_grid(result)
    if not picked:
        st.info("Choose at least one class.")
        return result
    # One above the other at full width: side by side, each variant's 3×2 grid of blocks is too narrow to read.
    for name in (a, b):
        panel = result.panel(f"fig6_{name}")
        if panel is None:
            st.info(f"{name} has no SE blocks: no excitations to plot.")
        else:
            show_panel(panel, f"ab_fig6_{name}", figure=for_screen(panel.figure))
    for i, key in enumerate(("ablation_depth_profiles", "ablation_knockouts")):
        if result.panel(key) is not None:
            show_panel(result.panel(key), f"ab_pair_{i}", figure=for_screen(result.panel(key).figure))
    takeaway(result.takeaway)
    return result


def _show_grid(result: ViewResult) -> None:
    """Show the table, the accuracy changes and what the grid says, with the result's warnings and captions."""
    kinds = {note: L.note_kind(note) for note in result.notes}
    for note, kind in kinds.items():
        if kind == "warning" and not note.startswith("The noise floor needs"):
            st.warning(note)  # stale variants: before the numbers they qualify
    table = result.panel("ablation_table")
    st.markdown(f"**{table.title}**")
    show_table(L.display_table(table.data), hide_index=True, width="stretch",
               column_config={"paper's row": st.column_config.TextColumn(width="medium")})
    st.caption(table.caption)
    download_menu(table, "ab_table")
    show_panel(result.panel("ablation_deltas"), "ab_deltas")
    findings = [note.removeprefix(L.FINDING) for note, kind in kinds.items() if kind == "finding"]
    if findings:
        st.markdown("**What the grid says** (computed from the trained variants)\n\n"
                    + "\n".join(f"- {line}" for line in findings))
    for note, kind in kinds.items():
        if kind == "caption" and note.startswith("Not trained yet"):
            st.caption(note)
        elif kind == "warning" and note.startswith("The noise floor needs"):
            st.warning(note)
