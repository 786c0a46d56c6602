"""Architecture view: every SE block, SE's extra parameters per stage and against the reduction ratio r."""
from __future__ import annotations

import streamlit as st

from sevis.app.common import Context, download_menu, intro, show_panel, show_table, shown_result, takeaway
from sevis.views.architecture import SLUG, TITLE  # noqa: F401  (the page reads every view's TITLE and SLUG here)
from sevis.views.base import ViewResult


def render(ctx: Context) -> ViewResult | None:
    """Show the architecture view; return its result."""
    intro("Where the SE blocks sit and what they cost: each block's channels C and squeeze width C/r, and the "
          "parameters SE adds per stage, beside the paper's estimate (2/r)·N·C².")
    result = shown_result(ctx, SLUG)
    if result is None:
        return None
    n, panels = result.numbers, result.panels
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", f"{n['parameters']:,}")
    m2.metric("SE blocks", n["se_blocks"])
    m3.metric("SE's extra parameters", f"{n['se_parameters']:,}", f"+{n['se_share']:.1%} of the plain model",
              delta_color="off", delta_arrow="off")
    st.markdown("**SE blocks** (name, stage, channels C, squeeze width C/r as the model rounds it, parameters)")
    show_table(panels[0].data, hide_index=True, height=min(38 + 35 * len(panels[0].data), 400))
    st.caption(panels[0].caption)
    download_menu(panels[0], "arch_table")
    for note in result.notes:  # "This model has no SE blocks."
        st.info(note)
    for i, p in enumerate(panels[1:], start=1):
        show_panel(p, f"arch_{i}")
        if p.key == "se_params_per_stage":
            st.dataframe(p.data, hide_index=True, column_config={
                "parameters": st.column_config.NumberColumn("SE parameters (real)", format="localized"),
                "estimate": st.column_config.NumberColumn("paper estimate (2/r)·N·C²", format="localized"),
                "share": st.column_config.NumberColumn("share of SE's parameters", format="percent"),
                "of_base": st.column_config.NumberColumn("extra vs plain model", format="percent"),
                "channels": st.column_config.NumberColumn("channels C", format="%d")})
    takeaway(result.takeaway)
    return result
