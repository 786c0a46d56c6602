"""Export view: a whole view's figures as a teaching-pack zip (each figure also has its own download menu)."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from sevis.app.common import Context, model_line, remember, show_panel, static_ok, takeaway, view_result
from sevis.errors import SevisError
from sevis.figures import export as E
from sevis.views.base import ViewRequest, ViewResult

IMAGE_VIEWS = ("live", "compare", "knockout")  # views that take every image of the sidebar

TITLE = "Export"


def render(ctx: Context, modules: Sequence) -> None:
    """Offer the teaching pack of every view (`modules`: each has TITLE and render(ctx)); a view not opened in this
    session is computed here, on demand, with its default settings."""
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
        request = ViewRequest(images=tuple(ctx.images)) if ctx.images and module.SLUG in IMAGE_VIEWS else None
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
    slides = st.checkbox("Slides size (lecture mode's fonts, for a projector)", value=ctx.lecture, key="ex_slides")
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
