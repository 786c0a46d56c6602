"""Architecture view: every SE block, SE's extra parameters per stage and against the reduction ratio r."""
from __future__ import annotations

import streamlit as st


from sevis.app.common import Context, download_menu, get_architecture, intro, show_panel, show_table, takeaway
from sevis.figures.plots import Panel
from sevis.views.architecture import architecture_takeaway, model_summary

from sevis.views.architecture import SLUG, TITLE


def render(ctx: Context) -> list[Panel]:
    """Show the architecture view; return its panels."""
    intro("Where the SE blocks sit and what they cost: each block's channels C and squeeze width C/r, and the "
          "parameters SE adds per stage, beside the paper's estimate (2/r)·N·C².")
    panels = get_architecture(*ctx.key)
    facts = model_summary(ctx.loaded)
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", f"{facts['parameters']:,}")
    m2.metric("SE blocks", facts["se_blocks"])
    share = facts["se_parameters"] / max(facts["parameters"] - facts["se_parameters"], 1)
    m3.metric("SE's extra parameters", f"{facts['se_parameters']:,}", f"+{share:.1%} of the plain model",
              delta_color="off", delta_arrow="off")
    st.markdown("**SE blocks** (name, stage, channels C, squeeze width C/r as the model rounds it, parameters)")
    show_table(panels[0].data, hide_index=True, height=min(38 + 35 * len(panels[0].data), 400))
    st.caption(panels[0].caption)
    download_menu(panels[0], "arch_table")
    if not ctx.blocks:
        st.info("This model has no SE blocks.")
    for i, p in enumerate(panels[1:], start=1):
        show_panel(p, f"arch_{i}")
        if p.key == "se_params_per_stage":
            st.dataframe(p.data, hide_index=True, column_config={
                "parameters": st.column_config.NumberColumn("SE parameters (real)", format="localized"),
                "estimate": st.column_config.NumberColumn("paper estimate (2/r)·N·C²", format="localized"),
                "share": st.column_config.NumberColumn("share of SE's parameters", format="percent"),
                "of_base": st.column_config.NumberColumn("extra vs plain model", format="percent"),
                "channels": st.column_config.NumberColumn("channels C", format="%d")})
    takeaway(architecture_takeaway(ctx.loaded))
    return panels
