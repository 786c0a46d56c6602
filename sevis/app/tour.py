"""Tour view: the paper's argument on the current model, one step at a time (figure, two computed sentences,
Back / Next), and the whole tour as one HTML handout (PDF where Chromium is present)."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError, find_se_blocks
from sevis.analysis.anatomy import block_anatomy
from sevis.figures.handout import HandoutSection, handout_html, handout_pdf
from sevis.analysis.images import decode_uploads
from sevis.analysis.inference import predict_images
from sevis.analysis.measures import measures_and_paper
from sevis.figures.plots import Panel
from sevis.analysis.reference import ReferenceStats, reference_inputs, too_few_images
from sevis.analysis.tour_search import SEARCH_IMAGES, find_flip, most_selective_channel, top_images
from sevis.views import tour as T
from sevis.models.zoo import EMBEDDED

from sevis.app.common import (PENDING_TAKEAWAYS, Context, get_control, get_model, get_reference, get_samples, get_sweep, intro,
                     model_line, show_panel, static_ok)

from sevis.views.tour import SLUG, TITLE
STEP_KEY = "tour_step"


# ---------------------------------------------------------------------------------------- cached searches
@st.cache_data(show_spinner="Searching the reference set for a knock-out that flips a prediction…", max_entries=8)
def get_flip(spec: str, pretrained: bool, arch: str | None, folder: str):
    """Return (the flip found, or None; the number of images searched)."""
    loaded = get_model(spec, pretrained, arch)
    classes, batches, total, _ = reference_inputs(loaded, folder or None)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    return find_flip(loaded, batches, blocks, classes), min(total, SEARCH_IMAGES)  # decodes only what it searches


@st.cache_data(show_spinner="Finding the most class-selective channel and its images…", max_entries=8)
def get_selective(spec: str, pretrained: bool, arch: str | None, folder: str):
    """Return (the most class-selective channel, its top images, their s, their class names)."""
    loaded = get_model(spec, pretrained, arch)
    sel = most_selective_channel(get_reference(spec, pretrained, arch, folder).stats)
    if sel is None:
        return None, [], [], []
    classes, batches, _, _ = reference_inputs(loaded, folder or None)
    x, s, y = top_images(loaded, batches, sel.block, sel.channel)
    return sel, list(x), list(s), [classes[int(k)] for k in y]


# ---------------------------------------------------------------------------------------- steps
def tour_image(ctx: Context):
    """Return the image the tour uses: the sidebar's first, else the first sample image."""
    if ctx.images:
        return ctx.images[0]
    samples = get_samples(*ctx.key)
    images, _ = decode_uploads(list(samples.items())[:1])
    if not images:
        raise SevisError("no image to show: upload one in the sidebar")
    return images[0]


def reference_measures(ctx: Context, ref: ReferenceStats):
    """Return (depth measures, paper table) over the reference set, or (None, None) with too few images per class."""
    if too_few_images(ref.stats):
        return None, None
    control = ko = None
    if not ctx.random_weights:
        control = get_control(*ctx.key, ctx.folder)
        if ref.accuracy is not None:
            ko = get_sweep(*ctx.key, ctx.folder, "identity").data
    return measures_and_paper(ref.stats, control, ctx.blocks, ko, None)


def compute_step(ctx: Context, key: str) -> T.TourStep:
    """Return tour step `key` for the current model (the expensive parts are cached per model and reference set)."""
    loaded, random = ctx.loaded, ctx.random_weights
    if key == "where":
        return T.where_step(loaded)
    if key == "cost":
        return T.cost_step(loaded)
    if key in ("block", "image"):
        image = tour_image(ctx)
        result = predict_images(loaded, [image.image])
        if key == "image":
            return T.image_step(result, image, ctx.blocks, random)
        return T.block_step(loaded, block_anatomy(loaded, image, T.pick_block(result)), image)
    if key == "knockout":
        flip, searched = get_flip(*ctx.key, ctx.folder)
        return T.knockout_step(loaded, flip, searched, len(ctx.blocks), random)
    ref = get_reference(*ctx.key, ctx.folder)
    if key == "channel":
        few = too_few_images(ref.stats)
        sel, images, s, labels = (None, [], [], []) if few else get_selective(*ctx.key, ctx.folder)
        return T.channel_step(loaded, ref, sel, images, s, labels, random)
    measures, paper = reference_measures(ctx, ref)
    if key == "class_depth":
        return T.class_depth_step(ref, measures, ctx.blocks, random)
    return T.paper_step(paper, ref.source, random)


def shown_name(ctx: Context) -> str:
    """Return the name the app calls the model by: a shipped model's spec ("embedded"), else its own name."""
    return ctx.loaded.spec if ctx.loaded.spec in EMBEDDED else ctx.loaded.name


def _go(step: int) -> None:
    st.session_state[STEP_KEY] = step


def render(ctx: Context) -> list[Panel]:
    """Show one step of the tour with Back / Next, and the handout export; return the step's panels."""
    intro(f"A guided walk through what SE blocks do, on **{shown_name(ctx)}**, in {len(T.STEPS)} steps: each with "
          "a figure and two sentences computed from this model. Steps that need labels or trained weights say so.")
    if not ctx.blocks:
        st.info("This model has no SE blocks, so there is no tour to give.")
        return []
    i = min(max(int(st.session_state.get(STEP_KEY, 0)), 0), len(T.STEPS) - 1)
    back, where, nxt = st.columns([1, 4, 1])
    back.button("← Back", key="tour_back", on_click=_go, args=(i - 1,), disabled=i == 0, width="stretch")
    nxt.button("Next →", key="tour_next", on_click=_go, args=(i + 1,), disabled=i == len(T.STEPS) - 1,
               width="stretch")
    where.markdown(f"**Step {i + 1} of {len(T.STEPS)}** · " + " · ".join(
        f"**{k + 1}**" if k == i else str(k + 1) for k in range(len(T.STEPS))))  # where we are, not a progress bar
    try:
        step = compute_step(ctx, T.STEPS[i])
    except SevisError as e:
        st.error(str(e))
        return []
    st.subheader(f"{i + 1}. {step.title}")
    if step.formula:
        st.latex(step.formula)
    for sentence in step.sentences:  # large type: read from the back of a lecture hall
        st.markdown(f"##### {sentence}")
    if step.needs:
        st.warning(step.needs)
    for j, panel in enumerate(step.panels):
        show_panel(panel, f"tour_{step.key}_{j}")
    st.session_state[PENDING_TAKEAWAYS] = list(step.sentences)  # the step's sentences go into a pack's README
    handout(ctx)
    return step.panels


def handout(ctx: Context) -> None:
    """'Build the handout' computes every step and offers them as one HTML file (and PDF with Chromium)."""
    st.divider()
    want = (ctx.key, ctx.folder, tuple(im.name for im in ctx.images[:1]))
    built = st.session_state.get("tour_handout")
    if built is not None and built[0] != want:
        built = st.session_state["tour_handout"] = None
    if st.button("Build the handout: every step as one HTML page", key="tour_build"):
        bar = st.progress(0.0, text="Computing every step of the tour…")
        sections = []
        for n, key in enumerate(T.STEPS):
            step = compute_step(ctx, key)
            sections.append(HandoutSection(step.title, step.sentences, [(p.figure, p.caption) for p in step.panels],
                                           step.needs, T.formula_text(step) if step.formula else None))
            bar.progress((n + 1) / len(T.STEPS), text=f"Computed step {n + 1} of {len(T.STEPS)}")
        bar.empty()
        page = handout_html(f"What SE blocks do in {shown_name(ctx)}: a tour",
                            f"{model_line(ctx.loaded)} Every number below was computed on this "
                            "model; the figures are interactive (hover for values) and work offline.", sections)
        built = st.session_state["tour_handout"] = (want, page)
    if built is None:
        return
    c1, c2 = st.columns(2)
    c1.download_button("Download the handout (HTML)", data=built[1].encode(), file_name="sevis_tour_handout.html",
                       mime="text/html", key="tour_html", on_click="ignore", type="primary")
    if static_ok():
        c2.download_button("Download the handout (PDF)", data=lambda page=built[1]: handout_pdf(page),
                           file_name="sevis_tour_handout.pdf", mime="application/pdf", key="tour_pdf",
                           on_click="ignore")
