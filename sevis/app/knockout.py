"""SE knock-out view: replace s of chosen blocks by 1 or the reference mean; the prediction and the sweep. Widgets
only: the view's result comes from sevis.views.knockout.compute (prepared beside the shipped models)."""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from sevis import SevisError
from sevis.analysis.images import image_stem
from sevis.app.common import Context, intro, show_panel, takeaway, view_result
from sevis.figures.sentences import pct
from sevis.views import knockout as K
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.knockout import SLUG, TITLE  # noqa: F401  (the page reads every view's TITLE and SLUG here)


def result_for(ctx: Context, request: ViewRequest, with_sweep: bool) -> ViewResult:
    """Return the view's result for `request`; without the reference-set part until the user asks for it, when it
    is not stored (one pass per SE block over the reference set)."""
    if with_sweep:
        return view_result(ctx, SLUG, request)
    from sevis.app.guard import session_results
    return session_results((*ctx.key, SLUG, request.key(), "no sweep"),
                           lambda: K.compute(ctx.loaded, request, sweep=False))


def render(ctx: Context) -> ViewResult | None:
    """Show the knock-out view; return its result."""
    key, images, blocks = ctx.key, ctx.images, ctx.blocks
    intro("Switch SE blocks off: their s is replaced by 1 (the block passes everything on) or by its "
          "reference-set mean (the block stops adapting to the input). Compare the prediction before and after, "
          "find the smallest knock-out that flips it, and see the reference-set accuracy with each block knocked "
          "out in turn.")
    if not blocks:
        st.info("This model has no SE blocks to knock out.")
        return None
    names = [b.name for b in blocks]
    image = None
    if images:
        img_name = st.selectbox("Image", [im.name for im in images], key="ko_image")
        image = next(im for im in images if im.name == img_name)
    c1, c2 = st.columns([3, 2])
    mode = c2.radio("Replace s by", ["identity", "mean"], horizontal=True, key="ko_mode",
                    format_func={"identity": "1 (identity)", "mean": "reference-set mean"}.get)
    folder = ctx.folder
    sweep_key = (key, folder, mode)
    requested = st.session_state.setdefault("sweeps", set())
    with_sweep = sweep_key in requested or K.sweep_is_stored(ctx.loaded, folder or None, mode)
    # The default request: every sidebar image with its own preselected block (the one whose knock-out alone
    # changes its prediction most), as `sevis export knockout IMAGES` computes it and `sevis prepare` stores it;
    # after "Find a flip", with each image's flip search (`sevis export knockout IMAGES --find-flip`).
    flip_key = (key, folder, tuple((im.name, im.image.size) for im in images))
    asked = st.session_state.setdefault("ko_flip_asked", set())
    request = ViewRequest(images=tuple(images), mode=mode, folder=folder or None, find_flip=flip_key in asked)
    try:
        result = result_for(ctx, request, with_sweep)
    except SevisError as e:
        st.error(str(e))
        return None
    if image is not None:
        preselect = list(result.numbers[f"knocked_out/{image.name}"])
        memo_key = (key, image.name, image.image.size, mode, folder, tuple(names))
        if st.session_state.get("ko_default_for") != memo_key:  # the user's own pick stays until then
            st.session_state["ko_default_for"] = memo_key
            st.session_state["ko_blocks"] = preselect
    elif "ko_blocks" not in st.session_state:
        last = [b.name for b in blocks if b.stage == blocks[-1].stage] if blocks[-1].stage is not None else names[-1:]
        st.session_state["ko_blocks"] = last
    picked = c1.multiselect("Knock out these SE blocks", names, key="ko_blocks")
    picked = [n for n in names if n in picked]
    if image is not None and picked != preselect:
        try:
            result = result_for(ctx, replace(request, knockout_blocks=tuple(picked)), with_sweep)
        except SevisError as e:
            st.error(str(e))
            return None
    if image is not None:
        why = result.numbers.get(f"preselected/{image.name}")
        if why:
            st.caption(why)
        (b, pb), (a, pa) = result.numbers[f"before/{image.name}"], result.numbers[f"after/{image.name}"]
        verdict = "**the prediction changes**" if a != b else "the prediction stays the same"
        st.markdown(f"Original: **{b}** ({pct(pb)}) → knocked out: **{a}** ({pct(pa)}): {verdict}.")
        show_panel(result.panels[[im.name for im in images].index(image.name)], "ko_image")
        show_flip(result, image.name, image_stem(image.name), request.find_flip, flip_key, asked)
    else:
        st.info("Pick an image in the sidebar to see how its prediction changes.")
    st.subheader("Reference-set accuracy with each block knocked out")
    sweep = result.panel("knockout_sweep")
    for note in result.notes:
        if note == K.RANDOM_NOTE:
            st.info(note)
        elif note != K.NO_IMAGE:
            st.warning(note)  # no labelled images for this model: a hint, not a failure
    if sweep is not None:
        show_panel(sweep, "ko_sweep")
    elif not ctx.random_weights and not with_sweep:
        st.caption(f"Runs the reference set twice per SE block ({len(blocks)} blocks; s := 1 and s := its mean, "
                   "which the finding reads); the result is cached.")
        if st.button("Run the sweep (two passes per SE block)", key="ko_run"):
            requested.add(sweep_key)
            st.rerun()
    takeaway(result.takeaway)
    return result


def show_flip(result: ViewResult, name: str, stem: str, searched: bool, flip_key: tuple, asked: set) -> None:
    """Show the flip search of image `name` (its headline, figure and sentence), or the button that runs it for
    every picked image."""
    st.subheader("Find a flip")
    if not searched:
        st.caption("Searches for the smallest knock-out that changes this prediction: each SE block alone (s := its "
                   "mean, then s := 1), then, if none flips it, channels of the most influential blocks, then of "
                   "every block (a few dozen passes per image).")
        if st.button("Find a flip", key="ko_find_flip", icon=":material/search:"):
            asked.add(flip_key)
            st.rerun()
        return
    panel = result.panel(f"{stem}_flip")
    n = result.numbers
    if panel is None or f"flip/{name}" not in n:
        return
    (b, pb) = n[f"flip_before/{name}"]
    if f"flip_after/{name}" in n:
        a, pa = n[f"flip_after/{name}"]
        what = "with the flip" if n[f"flip/{name}"] else "with the closest knock-out searched"
        verdict = "**the prediction changes**" if n[f"flip/{name}"] else "no knock-out searched changes it"
        st.markdown(f"Original: **{b}** ({pct(pb)}) → {what}: **{a}** ({pct(pa)}): {verdict}.")
    show_panel(panel, "ko_flip")
