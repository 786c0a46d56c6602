"""Tour view: the paper's argument on the current model, one step at a time (figure, two computed sentences,
Back / Next), and the whole tour as one HTML handout (PDF where Chromium is present). Every step is the Tour's
ViewResult for that step (sevis.views.tour.compute; prepared beside the shipped models)."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.app.common import PENDING_TAKEAWAYS, Context, intro, model_line, show_panel, static_ok, view_result
from sevis.figures.handout import handout_html, handout_pdf
from sevis.models.zoo import EMBEDDED
from sevis.views import tour as T
from sevis.views.base import ViewResult
from sevis.views.tour import SLUG, TITLE  # noqa: F401  (the page reads every view's TITLE and SLUG here)

STEP_KEY = "tour_step"


def step_result(ctx: Context, i: int) -> ViewResult:
    """Return the Tour's result for step `i` (0-based): the sidebar's first image for the steps that show one."""
    return view_result(ctx, SLUG, T.step_request(i, ctx.images, ctx.folder or None))


def shown_name(ctx: Context) -> str:
    """Return the name the app calls the model by: a shipped model's spec ("embedded"), else its own name."""
    return ctx.loaded.spec if ctx.loaded.spec in EMBEDDED else ctx.loaded.name


def _go(step: int) -> None:
    st.session_state[STEP_KEY] = step


def render(ctx: Context) -> ViewResult | None:
    """Show one step of the tour with Back / Next, and the handout export; return the step's result."""
    intro(f"A guided walk through what SE blocks do, on **{shown_name(ctx)}**, in {len(T.STEPS)} steps: each with "
          "a figure and two sentences computed from this model. Steps that need labels or trained weights say so.")
    if not ctx.blocks:
        st.info("This model has no SE blocks, so there is no tour to give.")
        return None
    i = min(max(int(st.session_state.get(STEP_KEY, 0)), 0), len(T.STEPS) - 1)
    back, where, nxt = st.columns([1, 4, 1])
    back.button("← Back", key="tour_back", on_click=_go, args=(i - 1,), disabled=i == 0, width="stretch")
    nxt.button("Next →", key="tour_next", on_click=_go, args=(i + 1,), disabled=i == len(T.STEPS) - 1,
               width="stretch")
    where.markdown(f"**Step {i + 1} of {len(T.STEPS)}** · " + " · ".join(
        f"**{k + 1}**" if k == i else str(k + 1) for k in range(len(T.STEPS))))  # where we are, not a progress bar
    try:
        result = step_result(ctx, i)
    except SevisError as e:
        st.error(str(e))
        return None
    for note in result.notes:  # a stale prepared file, said once
        st.caption(note)
    step = T.steps_of(result)[0]
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
    return result


def handout(ctx: Context) -> None:
    """'Build the handout' reads every step's result (prepared for shipped models) and offers them as one HTML file
    (and PDF with Chromium)."""
    st.divider()
    want = (ctx.key, ctx.folder, tuple(im.name for im in ctx.images[:1]))
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
        page = handout_html(f"What SE blocks do in {shown_name(ctx)}: a tour",
                            f"{model_line(ctx.loaded)} Every number below was computed on this "
                            "model; the figures are interactive (hover for values) and work offline.",
                            [T.handout_section(s) for s in steps])
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
