"""SE knock-out view: replace s of chosen blocks by 1 or the reference mean; the prediction and the sweep."""
from __future__ import annotations

import streamlit as st

from sevis import DatasetError, SevisError

from sevis.app.common import Context, get_reference, get_sweep, intro, show_panel, takeaway
from sevis.figures.plots import Panel
from sevis.analysis.reference import class_mean_excitations
from sevis.figures.sentences import pct
from sevis.views.knockout import (block_effects, default_knockout, knockout_image, knockout_image_takeaway,
                                  knockout_takeaway)

from sevis.views.knockout import SLUG, TITLE


def render(ctx: Context) -> list[Panel]:
    """Show the knock-out view; return its panels."""
    loaded, key, images, blocks = ctx.loaded, ctx.key, ctx.images, ctx.blocks
    intro("Switch SE blocks off: their s is replaced by 1 (the block passes everything on) or by its "
          "reference-set mean (the block stops adapting to the input). Compare the prediction before and after, "
          "and the reference-set accuracy with each block knocked out in turn.")
    if not blocks:
        st.info("This model has no SE blocks to knock out.")
        return []
    names = [b.name for b in blocks]
    image = None
    if images:
        img_name = st.selectbox("Image", [im.name for im in images], key="ko_image")
        image = next(im for im in images if im.name == img_name)
    c1, c2 = st.columns([3, 2])
    mode = c2.radio("Replace s by", ["identity", "mean"], horizontal=True, key="ko_mode",
                    format_func={"identity": "1 (identity)", "mean": "reference-set mean"}.get)
    folder = ctx.folder
    means = None
    if mode == "mean":
        try:
            means = class_mean_excitations(get_reference(*key, folder).stats, "all")
        except SevisError as e:
            st.error(str(e))
            return []
    note = None
    if image is not None:
        # Preselect the block whose knock-out alone changes this image's prediction most (once per image and
        # mode; the user's own pick stays until then).
        memo_key = (key, image.name, image.image.size, mode, folder, tuple(names))
        memo = st.session_state.setdefault("ko_effects", {})
        if memo_key not in memo:  # one pass per block: worth keeping across reruns of this session
            memo.clear()
            memo[memo_key] = block_effects(loaded, image, names, mode, means)
        effects = memo[memo_key]
        preselect, note = default_knockout(effects)
        if st.session_state.get("ko_default_for") != memo_key:
            st.session_state["ko_default_for"] = memo_key
            st.session_state["ko_blocks"] = preselect
    elif "ko_blocks" not in st.session_state:
        last = [b.name for b in blocks if b.stage == blocks[-1].stage] if blocks[-1].stage is not None else names[-1:]
        st.session_state["ko_blocks"] = last
    picked = c1.multiselect("Knock out these SE blocks", names, key="ko_blocks")
    panels = []
    if image is not None:
        if note:
            st.caption(note)
        res = knockout_image(loaded, image, [n for n in names if n in picked], mode, means)
        b, a = res.before[0], res.after[0]
        verdict = "**the prediction changes**" if res.changed else "the prediction stays the same"
        st.markdown(f"Original: **{b[0]}** ({pct(b[1])}) → knocked out: **{a[0]}** ({pct(a[1])}): {verdict}.")
        show_panel(res.panel, "ko_image")
        panels.append(res.panel)
        takeaway(knockout_image_takeaway(res, [n for n in names if n in picked]))
    else:
        st.info("Pick an image in the sidebar to see how its prediction changes.")
    st.subheader("Reference-set accuracy with each block knocked out")
    if ctx.random_weights:
        st.info("With random weights the model's accuracy is chance whatever is knocked out, so the sweep would "
                "measure nothing. Pick trained weights to run it.")
        return panels
    sweep_key = (key, folder, mode)
    requested = st.session_state.setdefault("sweeps", set())
    if sweep_key not in requested:
        st.caption(f"Runs the reference set once per SE block ({len(blocks)} blocks); the result is cached.")
        if st.button("Run the sweep (one pass per SE block)", key="ko_run"):
            requested.add(sweep_key)
            st.rerun()
    if sweep_key in requested:
        try:
            panel = get_sweep(*key, folder, mode)
        except DatasetError as e:  # no labelled images for this model: a hint, not a failure
            st.warning(str(e))
        except SevisError as e:
            st.error(str(e))
        else:
            show_panel(panel, "ko_sweep")
            panels.append(panel)
            takeaway(knockout_takeaway(panel.data, blocks))
    return panels
