"""Architecture view: every SE block, SE's extra parameters per stage and against the reduction ratio r."""
from __future__ import annotations

import streamlit as st

from sevis.app.common import Context, download_menu, intro, show_panel, show_table, shown_result, takeaway
from sevis.figures.plots import readable_table
from sevis.views.architecture import SLUG, TITLE  # noqa: F401  (the page reads every view's TITLE and SLUG here)
from sevis.views.base import ViewResult

PER_STAGE_NAMES = {"parameters": "SE parameters (real)", "estimate": "paper estimate (2/r)·N·C²",
                   "share": "share of SE's parameters", "of_base": "extra vs plain model", "blocks": "SE blocks"}


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
    show_table(readable_table(panels[0].data, text=ctx.lecture), hide_index=True,
               height=min(38 + 35 * len(panels[0].data), 400))
    st.caption(panels[0].caption)
    download_menu(panels[0], "arch_table")
    for note in result.notes:  # "This model has no SE blocks."
        st.info(note)
    for i, p in enumerate(panels[1:], start=1):
        show_panel(p, f"arch_{i}")
        if p.key == "se_params_per_stage":
            show_table(readable_table(p.data, PER_STAGE_NAMES, percent=("share", "of_base"), text=ctx.lecture),
                       hide_index=True)
    takeaway(result.takeaway)
    return result
