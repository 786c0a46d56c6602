"""Tour view: the paper's argument on the current model, one step at a time (figure, two computed sentences,
Back / Next, also on the arrow keys), the teacher's choice of the image (image steps) and the class (class steps),
and the whole tour as one HTML handout (PDF where Chromium is present). Every step is the Tour's ViewResult for
that step (sevis.views.tour.compute; prepared beside the shipped models for the default choices)."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.analysis.images import NamedImage, decode_uploads
from sevis.app.common import (
    PENDING_TAKEAWAYS,
    Context,
    caption_on_stage,
    get_samples,
    intro,
    lecture_mode,
    model_line,
    show_panel,
    stage_here,
    static_ok,
    view_result,
)
from sevis.data.folders import folder_files
from sevis.figures.handout import handout_pdf, tour_handout_html
from sevis.views import tour as T
from sevis.views.base import ViewResult
from sevis.views.tour import SLUG, TITLE  # noqa: F401  (the page reads every view's TITLE and SLUG here)

STEP_KEY = "tour_step"
BACK_SHORTCUT, NEXT_SHORTCUT = "Left", "Right"  # st.button's keyboard shortcuts
IMAGE_KEY, CLASS_KEY = "tour_image", "tour_class"  # the teacher's choices (widget keys)
DEFAULT_CLASSES = "the default four"  # the class picker's first option: Fig. 6's default classes, no chosen one


def image_options(ctx: Context) -> list[str]:
    """Return the images the Tour can show, by name: the sidebar's (uploads and picked samples) first, then the
    other sample images that fit the model."""
    names = [im.name for im in ctx.images]
    return names + [n for n in get_samples(*ctx.key) if n not in names]


def chosen_image(ctx: Context) -> list[NamedImage]:
    """Return the image the teacher picked (a list of one; empty when there is none): the sidebar's first unless
    another is chosen, so the default request is the prepared one."""
    name = st.session_state.get(IMAGE_KEY)
    picked = [im for im in ctx.images if im.name == name]
    if picked or not name:
        return picked or ctx.images[:1]
    samples = get_samples(*ctx.key)
    images, _ = decode_uploads([(name, samples[name])]) if name in samples else ([], [])
    return images or ctx.images[:1]


def class_options(ctx: Context) -> list[str]:
    """Return the classes the class steps can single out: the labelled folder's, else the model's own classes for
    models whose reference set has them (Fashion-MNIST); none otherwise (the step needs labels there anyway)."""
    if ctx.folder:
        if ctx.folder.lower().endswith(".json"):
            return []
        try:
            return folder_files(ctx.folder)[0]
        except (SevisError, OSError):
            return []
    return list(ctx.loaded.classes) if ctx.loaded.dataset == "fashion-mnist" else []


def chosen_class(ctx: Context) -> str | None:
    """Return the class the teacher picked for the class steps, or None (the step's computed default)."""
    cls = st.session_state.get(CLASS_KEY)
    return cls if cls and cls != DEFAULT_CLASSES and cls in class_options(ctx) else None


def step_result(ctx: Context, i: int) -> ViewResult:
    """Return the Tour's result for step `i` (0-based) with the teacher's image and class (defaults: the sidebar's
    first image, the computed classes)."""
    return view_result(ctx, SLUG, T.step_request(i, chosen_image(ctx), ctx.folder or None, chosen_class(ctx)))


def step_numbers(keys: tuple[str, ...]) -> str:
    """Return the 1-based numbers of the steps with these keys, as a label ("steps 2 and 3")."""
    n = [str(T.STEPS.index(k) + 1) for k in keys]
    return f"step {n[0]}" if len(n) == 1 else f"steps {', '.join(n[:-1])} and {n[-1]}"


def choices(ctx: Context) -> None:
    """The teacher's pickers: the image of the image steps and the class of the class steps."""
    left, right = st.columns(2)
    images = image_options(ctx)
    if images:
        if st.session_state.get(IMAGE_KEY) not in images:
            st.session_state.pop(IMAGE_KEY, None)  # the sidebar changed: back to its first image
        left.selectbox(f"Image ({step_numbers(T.IMAGE_STEPS)})", images, key=IMAGE_KEY,
                       help="The sidebar's images first, then the other sample images.")
    classes = class_options(ctx)
    if classes:
        if st.session_state.get(CLASS_KEY) not in [DEFAULT_CLASSES, *classes]:
            st.session_state.pop(CLASS_KEY, None)
        right.selectbox(f"Class ({step_numbers(T.CLASS_STEPS)})", [DEFAULT_CLASSES, *classes], key=CLASS_KEY,
                        help="Fig. 6 shows this class in its top row and says how far it lies from all images; the "
                        "channel step shows the most class-selective channel among those that prefer it.")


def _go(step: int) -> None:
    st.session_state[STEP_KEY] = step


def render(ctx: Context) -> ViewResult | None:
    """Show one step of the tour with Back / Next, and the handout export; return the step's result. In lecture
    mode the first screen holds Back / Next with the step's title between them, then the step's figure with its two
    sentences; the teacher's pickers and the view's introduction wait folded below."""
    lecture = lecture_mode()
    about = (f"A guided walk through what SE blocks do, on **{ctx.loaded.shown_name}**, in {len(T.STEPS)} steps: "
             "each with a figure and two sentences computed from this model. Steps that need labels or trained weights "
             "say so.")
    if not lecture:
        intro(about)
    if not ctx.blocks:
        st.info("This model has no SE blocks, so there is no tour to give.")
        return None
    i = min(max(int(st.session_state.get(STEP_KEY, 0)), 0), len(T.STEPS) - 1)
    back, where, nxt = st.columns([1, 4, 1], vertical_alignment="center")
    # The arrow keys page through the steps, as in a slide show (a presenter's clicker sends them too).
    back.button("← Back", key="tour_back", on_click=_go, args=(i - 1,), disabled=i == 0, width="stretch",
                shortcut=BACK_SHORTCUT)
    nxt.button("Next →", key="tour_next", on_click=_go, args=(i + 1,), disabled=i == len(T.STEPS) - 1,
               width="stretch", shortcut=NEXT_SHORTCUT)
    where = where.empty()
    if not lecture:
        choices(ctx)
    try:
        result = step_result(ctx, i)
    except SevisError as e:
        st.error(str(e))
        return None
    for note in result.notes:  # a stale prepared file, said once
        st.caption(note)
    step = T.steps_of(result)[0]
    if lecture:  # the step's title between Back and Next: the figure starts right under them
        where.markdown(f"#### {i + 1}. {step.title} <small>· step {i + 1} of {len(T.STEPS)}</small>",
                       unsafe_allow_html=True)
    else:
        where.markdown(f"**Step {i + 1} of {len(T.STEPS)}** · " + " · ".join(
            f"**{k + 1}**" if k == i else str(k + 1) for k in range(len(T.STEPS))))  # where we are
        st.subheader(f"{i + 1}. {step.title}")
    stage_here()  # lecture mode: the step's figure comes right here, under Back / Next, its sentences under it
    if step.formula:
        st.latex(step.formula)
    if not lecture:
        for sentence in step.sentences:  # large type: read from the back of a lecture hall
            st.markdown(f"##### {sentence}")
    if step.needs:
        st.warning(step.needs)
    for j, panel in enumerate(step.panels):
        show_panel(panel, f"tour_{step.key}_{j}")
    if lecture and not caption_on_stage(list(step.sentences)):  # a step without a figure: sentences after all
        for sentence in step.sentences:
            st.markdown(f"##### {sentence}")
    st.session_state[PENDING_TAKEAWAYS] = list(step.sentences)  # the step's sentences go into a pack's README
    if lecture:  # the teacher's pickers and the introduction, folded, after the step
        with st.expander("Image and class of the tour"):
            choices(ctx)
        intro(about)
    handout(ctx)
    return result


def handout(ctx: Context) -> None:
    """'Build the handout' reads every step's result (prepared for shipped models) and offers them as one HTML file
    (and PDF with Chromium)."""
    st.divider()
    want = (ctx.key, ctx.folder, tuple(im.name for im in chosen_image(ctx)), chosen_class(ctx))
    built = st.session_state.get("tour_handout")
    if built is not None and built[0] != want:
        built = st.session_state["tour_handout"] = None
    if st.button("Build the handout: every step as one HTML page", key="tour_build"):
        bar = st.progress(0.0, text="Computing every step of the tour…")
        steps = []
        for n in range(len(T.STEPS)):
            steps += T.steps_of(step_result(ctx, n))
            bar.progress((n + 1) / len(T.STEPS), text=f"Computed step {n + 1} of {len(T.STEPS)}")
        bar.empty()
        page = tour_handout_html(ctx.loaded.shown_name, model_line(ctx.loaded), [T.handout_section(s) for s in steps])
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
