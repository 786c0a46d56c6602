"""Live inference view: the prediction, the heat strip of s at every block, and per-block line plots."""
from __future__ import annotations

import io

import streamlit as st
from PIL import Image

from sevis.analysis.images import image_stem
from sevis.app.common import (
    STAGE_KEY,
    Context,
    block_picker,
    display_image,
    intro,
    show_panel,
    shown_result,
    takeaway,
    unless_default,
)
from sevis.core.gates import range_words
from sevis.figures.shared_figures import add_channel_targets
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.live import NO_BLOCKS, SLUG, TITLE, line_blocks, prediction_text  # noqa: F401 (TITLE: the tab)

# The prediction and the domain verdict share one row, in the same (large) type, so a warning never hides below a
# confident bar: the row's container key gives it the class st-key-live_verdict.
VERDICT_CSS = "<style>.st-key-live_verdict p {font-size: 1.3rem; line-height: 1.45;}</style>"


def render(ctx: Context) -> ViewResult | None:
    """Show the live view for the picked images; return its result (None when it shows a message instead)."""
    blocks = ctx.blocks
    intro("The model's prediction for an image and the excitation s of every SE block: one row per block in the "
          f"heat strip (shallow at the top), one value per channel, {range_words(ctx.loaded.model)}. Click a cell "
          "to open that channel.")
    if not ctx.images:
        st.info("Upload one or more images in the sidebar, or pick sample images.")
        return None
    names = [b.name for b in blocks]
    # The page top to bottom: thumbnails and the image picked, the image and its prediction, the heat strip, then
    # the block picker and the line plots. The picker's value is part of the request, so the areas above it are
    # filled once the result is in.
    thumbs = st.container()
    image_names = [im.name for im in ctx.images]
    if len(ctx.images) > 1:
        new = [n for n in image_names if n not in st.session_state.get("live_seen", [])]
        if new and st.session_state.get("live_seen"):
            st.session_state["live_pick"] = new[0]  # a fresh upload is what the student wants to see
        st.session_state["live_seen"] = image_names
        pick = st.selectbox("Look closer at", image_names, key="live_pick")
    else:
        pick = image_names[0]
        st.session_state["live_seen"] = [pick]  # so that a second upload is the one shown next
    top, heat = st.container(), st.container()
    default_lines = line_blocks(blocks)
    sel = block_picker("Blocks for the line plots", names, default_lines, "live_blocks") if len(names) > 8 else names
    request = ViewRequest(images=tuple(ctx.images), blocks=unless_default(sel, default_lines) if sel else None)
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    n = result.numbers
    if len(ctx.images) > 1:
        cols = thumbs.columns(8)
        for i, im in enumerate(ctx.images):
            cols[i % 8].image(display_image(im.image, 96), width="stretch",
                              caption=f"{im.name} → {n[f'prediction/{im.name}']} ({n[f'probability/{im.name}']:.0%})")
    image = next(im for im in ctx.images if im.name == pick)
    stem = image_stem(pick)
    panels = {p.key.removeprefix(f"{stem}_"): p for p in result.panels if p.key.startswith(f"{stem}_")}
    notes = [note.removeprefix(f"{pick}: ") for note in result.notes if note.startswith(f"{pick}: ")]
    # where the model has a domain verdict it is the note after the preprocessing one (views.live.image_notes)
    verdict = notes[1] if f"in_domain/{pick}" in n and len(notes) > 1 else None
    others = notes[2:] if verdict is not None else notes[1:]
    stage = st.session_state.get(STAGE_KEY) or {}  # lecture mode: the row goes on the stage, above the lead figure
    with stage.get("area") or top:
        show_verdict(n, pick, verdict)
    with top:
        left, right = st.columns([1, 3])
        with left:
            given, seen = st.columns(2)
            given.image(display_image(image.image), caption=pick, width="stretch")
            seen_png = panels["top5"].files.get(f"{stem}_model_input.png")
            if seen_png:
                seen.image(display_image(Image.open(io.BytesIO(seen_png))), width="stretch",
                           caption="what the model saw (after its preprocessing)")
            st.caption(notes[0])  # what the preprocessing did
            for note in others:  # e.g. a colour image sent to a grey model
                st.warning(note)
        with right:
            show_panel(panels["top5"], "live_top5")
    with heat:
        if "heat_strip" in panels:
            show_panel(panels["heat_strip"], "live_heat", clickable_blocks=names,
                       figure=add_channel_targets(panels["heat_strip"].figure, names))
        else:
            st.info(NO_BLOCKS)
    if "block_lines" in panels:
        show_panel(panels["block_lines"], "live_lines")
    takeaway(result.takeaway)
    return result


def show_verdict(numbers: dict, name: str, verdict: str | None) -> None:
    """Show the prediction of image `name` and, beside it in one row and the same type, the domain verdict (where the
    model has one): a warning when out of domain, where the prediction itself says it is unreliable."""
    in_domain = numbers.get(f"in_domain/{name}")
    st.html(VERDICT_CSS)
    with st.container(key="live_verdict"):
        cols = st.columns(2 if verdict else 1, border=True, vertical_alignment="center")
        cols[0].markdown(prediction_text(numbers, name, bold=True))
        if verdict:
            show = cols[1].success if in_domain else cols[1].warning
            show(verdict, icon=":material/check_circle:" if in_domain else ":material/warning:")
