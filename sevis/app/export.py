"""Export view: a whole view's figures as a teaching-pack zip (each figure also has its own download menu), and the
lecture deck: every Tour step and chosen views as 16:9 slides (PDF/PPTX) with the takeaways as speaker notes, the
same deck `sevis export lecture` writes."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from sevis.app.common import Context, model_line, remember, show_panel, static_ok, takeaway, view_result
from sevis.app.tour import chosen_class, chosen_image, step_result  # the Tour as the teacher set it up
from sevis.errors import SevisError
from sevis.figures import deck as D
from sevis.figures import export as E
from sevis.views import tour as T
from sevis.views.base import ViewRequest, ViewResult

IMAGE_VIEWS = ("live", "compare", "knockout")  # views that take every image of the sidebar

TITLE = "Export"


def render(ctx: Context, modules: Sequence) -> None:
    """Offer the teaching pack of every view (`modules`: each has TITLE, SLUG and render(ctx)), then the lecture
    deck."""
    pack_section(ctx, modules)
    st.divider()
    deck_section(ctx, modules)


def pack_section(ctx: Context, modules: Sequence) -> None:
    """Offer the teaching pack of every view; a view not opened in this session is computed here, on demand, with
    its default settings."""
    st.markdown("Every figure has its own **Download** menu. Here you can take a whole view at once as a "
                "**teaching pack**: a zip with each figure, the data behind it, and a README with the view's "
                "takeaways and what each figure shows. Every view is listed: one you have not opened yet is computed "
                "when you pick it, with its default settings (open the view first to choose its settings).")
    stored = st.session_state.get("panels", {})
    titles = [m.TITLE for m in modules]
    if not static_ok():
        st.warning(E.NO_CHROME)
    last = st.session_state.get("last_view")
    view = st.selectbox("View", titles, key="ex_view", index=titles.index(last) if last in titles else 0)
    waiting = [t for t in titles if not stored.get(t)]
    if waiting:
        st.caption(f"Not opened in this session yet, so computed on demand when picked: {', '.join(waiting)}.")
    if not stored.get(view):
        module = modules[titles.index(view)]
        st.caption(f"{view} has not been opened in this session: computing it now with its default settings.")
        request = view_request(ctx, module.SLUG)
        try:
            with st.spinner(f"Computing {view}…", show_time=True):
                result = view_result(ctx, module.SLUG, request)
        except SevisError as e:
            st.error(str(e))
            return
        takeaway(result.takeaway)
        remember(view, result)
        stored = st.session_state.get("panels", {})
    panels = stored.get(view) or []
    if not panels:
        notes = (st.session_state.get("view_results", {}).get(view) or ViewResult("", "")).notes
        st.info(f"{view} has no figures for this model and these inputs" + (f": {' '.join(notes)}" if notes else "."))
        return
    formats_all = list(E.ALL_FORMATS) if static_ok() else ["html", "csv", "json"]
    formats = st.multiselect("Formats in the pack", formats_all,
                             default=[f for f in ("png", "html", "csv") if f in formats_all], key="ex_formats")
    slides = st.checkbox("Slide size: 16:9 figures with lecture mode's fonts, for a projector", value=ctx.lecture,
                         key="ex_slides")
    takeaways = st.session_state.get("takeaways", {}).get(view, [])
    if takeaways:
        st.markdown("**Takeaways** (they go into the README)\n\n" + "\n".join(f"- {t}" for t in takeaways))
    st.markdown("\n".join(f"- **{p.title}**: {p.caption}" for p in panels))
    pack_button(ctx, view, panels, formats or ["html"], takeaways, slides)
    for i, p in enumerate(panels):
        with st.expander(p.title):
            show_panel(p, f"ex_{i}")


def pack_button(ctx: Context, view: str, panels: list, formats: list[str], takeaways: Sequence[str] = (),
                slides: bool = False) -> None:
    """'Build teaching pack' renders every file under a progress bar, then offers the zip's download; the built
    pack (one per session) stays until the view's figures or the formats change."""
    loaded = ctx.loaded
    want = (view, tuple(formats), id(panels), tuple(p.caption for p in panels), slides)
    built = st.session_state.get("ex_built")
    if built is not None and built[0] != want:
        built = st.session_state["ex_built"] = None
    if st.button(f"Build teaching pack: {view} ({len(panels)} figures × {len(formats)} formats)", key="ex_build",
                 type="primary" if built is None else "secondary"):
        bar = st.progress(0.0, text="Rendering the teaching pack…")
        data = E.teaching_pack(panels, view, formats, context=model_line(loaded),
                               progress=lambda f: bar.progress(f, text=f"Rendering the teaching pack: {f:.0%}"),
                               takeaways=takeaways, slides=slides)
        bar.empty()
        built = st.session_state["ex_built"] = (want, data)
    if built is not None:
        st.download_button(f"⬇ Download the teaching pack ({len(built[1]) / 1e6:.1f} MB)", data=built[1],
                           file_name=E.safe_filename(f"sevis_{view}_teaching_pack", "zip"), mime=E.MIME["zip"],
                           key="ex_pack", on_click="ignore", type="primary")


def view_request(ctx: Context, slug: str) -> ViewRequest | None:
    """Return the request the Export view computes a view with: the sidebar's images for the views that take
    them, else the view's default (None)."""
    return ViewRequest(images=tuple(ctx.images)) if ctx.images and slug in IMAGE_VIEWS else None


def deck_section(ctx: Context, modules: Sequence) -> None:
    """'Build the lecture deck': every Tour step, then the chosen views, one figure per 16:9 slide with the step's or
    view's takeaway as speaker notes (sevis.figures.deck, as `sevis export lecture`); then its downloads."""
    st.subheader("Lecture deck")
    st.markdown(f"Every step of the Tour ({len(T.STEPS)} steps, with the image and class chosen there), then the "
                "views you choose, as 16:9 slides: one "
                "figure per slide with its title, the step's or view's takeaway as the **speaker notes** (PPTX) or "
                "under the figure (PDF). The same deck as `sevis export lecture --format pdf pptx`.")
    if not static_ok():
        st.info("The deck's figures are drawn by Chrome or Chromium, and none was found here.")
        return
    others = [m for m in modules if m.SLUG != T.SLUG]
    titles = st.multiselect("Views after the Tour", [m.TITLE for m in others], default=[], key="deck_views")
    formats = st.multiselect("Formats", list(D.DECK_FORMATS), default=list(D.DECK_FORMATS), key="deck_formats")
    chosen = [m for m in others if m.TITLE in titles]
    want = (ctx.key, ctx.folder, tuple(im.name for im in ctx.images), tuple(im.name for im in chosen_image(ctx)),
            chosen_class(ctx), tuple(m.SLUG for m in chosen), tuple(formats))
    built = st.session_state.get("deck_built")
    if built is not None and built[0] != want:
        built = st.session_state["deck_built"] = None
    if st.button(f"Build the lecture deck: the Tour{' + ' + ', '.join(titles) if titles else ''}", key="deck_build",
                 disabled=not formats, type="primary" if built is None else "secondary"):
        bar = st.progress(0.0, text="Computing every step of the Tour…")
        try:
            steps = []
            for i in range(len(T.STEPS)):
                steps += T.steps_of(step_result(ctx, i))
                bar.progress((i + 1) / (len(T.STEPS) + len(chosen)) / 2, text=f"Computed step {i + 1}")
            results = []
            for k, m in enumerate(chosen, start=1):
                results.append(view_result(ctx, m.SLUG, view_request(ctx, m.SLUG)))
                bar.progress((len(T.STEPS) + k) / (len(T.STEPS) + len(chosen)) / 2, text=f"Computed {m.TITLE}")
            slides = D.lecture_slides(steps, results)
            decks = D.build_deck(slides, formats, D.deck_title(ctx.loaded.shown_name),
                                 progress=lambda f: bar.progress(0.5 + f / 2, text=f"Drawing the slides: {f:.0%}"))
        except SevisError as e:
            bar.empty()
            st.error(str(e))
            return
        bar.empty()
        built = st.session_state["deck_built"] = (want, decks, len(slides))
    if built is None:
        return
    st.caption(f"{built[2]} slides, each with its speaker notes.")
    for col, (fmt, data) in zip(st.columns(len(built[1])), built[1].items()):
        col.download_button(f"⬇ Download the deck ({fmt.upper()}, {len(data) / 1e6:.1f} MB)", data=data,
                            file_name=D.deck_file_name(fmt), mime=D.DECK_MIME[fmt], key=f"deck_{fmt}",
                            on_click="ignore", type="primary")

