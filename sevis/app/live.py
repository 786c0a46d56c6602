"""Live inference view: the prediction, the heat strip of s at every block, and per-block line plots."""
from __future__ import annotations

import streamlit as st

from sevis.core.gates import range_words

from sevis.app.common import Context, block_picker, display_image, intro, show_panel, takeaway
from sevis.figures.plots import Panel
from sevis.analysis.reference import paper_blocks
from sevis.figures.shared_figures import add_channel_targets
from sevis.analysis.domain import domain_verdict
from sevis.data.framing import describe_preprocessing
from sevis.views.live import domain_note, live_panels, live_takeaway, model_input_image, with_input_images

from sevis.views.live import SLUG, TITLE


def render(ctx: Context) -> list[Panel]:
    """Show the live view for the picked images; return its panels."""
    results, blocks = ctx.results, ctx.blocks
    intro("The model's prediction for an image and the excitation s of every SE block: one row per block in the "
          f"heat strip (shallow at the top), one value per channel, {range_words(ctx.loaded.model)}. Click a cell "
          "to open that channel.")
    if not ctx.images:
        st.info("Upload one or more images in the sidebar, or pick sample images.")
        return []
    if len(results) > 1:
        cols = st.columns(8)
        for i, r in enumerate(results):
            cols[i % 8].image(display_image(r.image, 96), caption=f"{r.name} → {r.topk[0][0]} ({r.topk[0][1]:.0%})",
                              width="stretch")
        names = [r.name for r in results]
        new = [n for n in names if n not in st.session_state.get("live_seen", [])]
        if new and st.session_state.get("live_seen"):
            st.session_state["live_pick"] = new[0]  # a fresh upload is what the student wants to see
        st.session_state["live_seen"] = names
        pick = st.selectbox("Look closer at", names, key="live_pick")
        r = next(x for x in results if x.name == pick)
    else:
        r = results[0]
        st.session_state["live_seen"] = [r.name]  # so that a second upload is the one shown next
    panels = with_input_images(ctx.loaded, r, live_panels(r))  # the teaching pack carries the images too
    left, right = st.columns([1, 3])
    with left:
        given, seen = st.columns(2)
        given.image(display_image(r.image), caption=r.name, width="stretch")
        seen.image(display_image(model_input_image(ctx.loaded, r.image)), width="stretch",
                   caption="what the model saw (after its preprocessing)")
        st.caption(describe_preprocessing(ctx.loaded.preprocess, r.image))
        st.markdown(f"**Prediction: {r.topk[0][0]}** ({r.topk[0][1]:.1%})")
        verdict = domain_verdict(ctx.loaded, r.image)  # None: no reference set to measure it against
        if verdict is not None:
            (st.caption if verdict.in_domain else st.warning)(verdict.note())
        note = domain_note(ctx.loaded, r.image)
        if note:
            st.warning(note)
    with right:
        show_panel(panels[0], "live_top5")
    if len(panels) > 1:
        names = [b.name for b in blocks]
        show_panel(panels[1], "live_heat", clickable_blocks=names,
                   figure=add_channel_targets(panels[1].figure, names))
    else:
        st.info("This model has no SE blocks, so there are no excitations to show.")
    if len(panels) > 2:
        names = [b.name for b in blocks]
        sel = block_picker("Blocks for the line plots", names, names if len(names) <= 8 else paper_blocks(blocks),
                           "live_blocks") if len(names) > 8 else names
        panels[2] = live_panels(r, sel)[2] if sel != names else panels[2]
        show_panel(panels[2], "live_lines")
    takeaway(live_takeaway(r))
    return panels
