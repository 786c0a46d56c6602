"""Export view: a whole view's figures as a teaching-pack zip (each figure also has its own download menu)."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from sevis import export as E

from .common import Context, show_panel, static_ok

TITLE = "Export"


def render(ctx: Context, views: Sequence[str]) -> None:
    """Offer the teaching pack of any of `views` that has shown figures in this session."""
    st.markdown("Every figure has its own **⬇ Download** menu. Here you can take a whole view at once as a "
                "**teaching pack**: a zip with each figure, the data behind it, and a README saying what each "
                "figure shows.")
    stored = st.session_state.get("panels", {})
    available = [v for v in views if stored.get(v)]
    if not static_ok():
        st.warning(E.NO_CHROME)
    if not available:
        st.info("Open a view first (e.g. Live inference or Class × depth); its figures can then be packed here.")
        return
    last = st.session_state.get("last_view")
    view = st.selectbox("View", available, key="ex_view", index=available.index(last) if last in available else 0)
    formats_all = list(E.ALL_FORMATS) if static_ok() else ["html", "csv", "json"]
    formats = st.multiselect("Formats in the pack", formats_all,
                             default=[f for f in ("png", "html", "csv") if f in formats_all], key="ex_formats")
    panels = stored[view]
    st.markdown("\n".join(f"- **{p.title}**: {p.caption}" for p in panels))
    pack_button(ctx, view, panels, formats or ["html"])
    for i, p in enumerate(panels):
        with st.expander(p.title):
            show_panel(p, f"ex_{i}")


def pack_button(ctx: Context, view: str, panels: list, formats: list[str]) -> None:
    """'Build teaching pack' renders every file under a progress bar, then offers the zip's download; the built
    pack (one per session) stays until the view's figures or the formats change."""
    loaded = ctx.loaded
    want = (view, tuple(formats), id(panels), tuple(p.caption for p in panels))
    built = st.session_state.get("ex_built")
    if built is not None and built[0] != want:
        built = st.session_state["ex_built"] = None
    if st.button(f"Build teaching pack: {view} ({len(panels)} figures × {len(formats)} formats)", key="ex_build",
                 type="primary" if built is None else "secondary"):
        bar = st.progress(0.0, text="Rendering the teaching pack…")
        data = E.teaching_pack(panels, view, formats, context=f"Model: {loaded.name} ({loaded.spec}).",
                               progress=lambda f: bar.progress(f, text=f"Rendering the teaching pack: {f:.0%}"))
        bar.empty()
        built = st.session_state["ex_built"] = (want, data)
    if built is not None:
        st.download_button(f"⬇ Download the teaching pack ({len(built[1]) / 1e6:.1f} MB)", data=built[1],
                           file_name=E.safe_filename(f"sevis_{view}_teaching_pack", "zip"), mime=E.MIME["zip"],
                           key="ex_pack", on_click="ignore", type="primary")
