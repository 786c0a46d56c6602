"""Shared widget helpers of the app: cached work (models, reference statistics, sweeps), the figure +
caption + download menu, and the per-session context every view receives."""
from __future__ import annotations

import copy
import hashlib
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from sevis import SEBlock, load_model
from sevis.analysis.images import analyse_images, sample_images
from sevis.analysis.reference import class_mean_excitations, reference_batches, reference_control, reference_statistics
from sevis.app import style
from sevis.errors import SevisError
from sevis.figures import export as E
from sevis.figures.plots import Panel, slides_style
from sevis.models.zoo import LoadedModel
from sevis.views.architecture import architecture_panels
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.knockout import knockout_sweep_panel, precomputed_sweep_panel

CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
ModelKey = tuple  # (spec, pretrained, arch): what every cached function is keyed on


@dataclass
class Context:
    """What the sidebar picked, handed to every view."""

    loaded: LoadedModel
    key: ModelKey
    images: list = field(default_factory=list)  # NamedImage
    errors: list[str] = field(default_factory=list)
    blocks: list[SEBlock] = field(default_factory=list)
    folder: str = ""  # the sidebar's labelled reference set ("" = bundled set or sample photos)
    lecture: bool = False  # lecture mode: projector-sized figures and tables, fewer controls
    # Every image's prediction and excitations, computed only when a view asks for them: the views compute their own
    # results (Live's includes them), so an upload is not analysed twice on the server.
    analyse: Callable[[], list] | None = None

    @property
    def random_weights(self) -> bool:
        return not self.key[1]

    @cached_property
    def results(self) -> list:
        """Return one ImageResult per image (computed on first use, once per script run)."""
        return self.analyse() if self.analyse is not None and self.images else []


# ---------------------------------------------------------------------------------------- cached work
@st.cache_resource
def model_cache():
    """Return the server's one model cache: shared by every session, bounded by the bytes of the models'
    weights (SEVIS_MODEL_CACHE_MB), least recently used first out."""
    from sevis.serving.budget import ByteBudgetCache
    from sevis.serving.settings import model_cache_bytes
    return ByteBudgetCache(model_cache_bytes)

def model_line(loaded: LoadedModel) -> str:
    """Return "Model: …" for packs and handouts: the model's name and spec, an uploaded file by its own name only
    (its spec is a path in the server's private upload folder, which a student must never see)."""
    from pathlib import Path
    if loaded.source == "checkpoint":
        return f"Model: {Path(str(loaded.spec)).name} (an uploaded weights file)."
    return f"Model: {loaded.name} ({loaded.spec})."



def get_model(spec: str, pretrained: bool = True, arch: str | None = None) -> LoadedModel:
    """Return the loaded model for (spec, pretrained, arch), shared by every session."""
    return model_cache().get_or_make((spec, pretrained, arch),
                                     lambda: load_model(spec, pretrained=pretrained, arch=arch))


@st.cache_data(show_spinner=False, max_entries=8)
def get_samples(spec: str, pretrained: bool, arch: str | None):
    """Return the sample images (name -> bytes) that fit the model."""
    return sample_images(get_model(spec, pretrained, arch))


def get_results(spec: str, pretrained: bool, arch: str | None, keys: tuple, _images: list):
    """Return one ImageResult per image (keyed on the images' hashes in `keys`). Entries hold the decoded images,
    so they are kept in this session only, within SEVIS_RESULT_CACHE_MB: they end with the session."""
    from sevis.app.guard import session_results
    return session_results((spec, pretrained, arch, keys),
                           lambda: analyse_images(get_model(spec, pretrained, arch), _images))


@st.cache_data(show_spinner=False, max_entries=16)
def get_reference(spec: str, pretrained: bool, arch: str | None, folder: str):
    """Return the reference-set statistics (ReferenceStats) of the model, with a progress bar."""
    loaded = get_model(spec, pretrained, arch)
    bar = st.progress(0.0, text="Computing excitation statistics over the reference set…")
    ref = reference_statistics(loaded, folder or None,
                                 progress=lambda f: bar.progress(f, text=f"Reference statistics: {f:.0%}"))
    bar.empty()
    return ref


@st.cache_data(show_spinner=False, max_entries=16)
def get_control(spec: str, pretrained: bool, arch: str | None, folder: str):
    """Return the untrained control's statistics over the reference set (None for a `sevis stats` file)."""
    with st.spinner("Measuring the untrained control (same architecture, random weights)…"):
        return reference_control(get_model(spec, pretrained, arch), folder or None)


@st.cache_data(show_spinner=False, max_entries=16)
def get_sweep(spec: str, pretrained: bool, arch: str | None, folder: str, mode: str):
    """Return the knock-out sweep panel (one pass over the reference set per SE block)."""
    loaded = get_model(spec, pretrained, arch)
    panel = precomputed_sweep_panel(loaded, mode) if pretrained and not folder else None
    if panel is not None:  # a shipped model: computed once, beside its card
        return panel
    means = None
    if mode == "mean":
        means = class_mean_excitations(get_reference(spec, pretrained, arch, folder).stats, "all")
    bar = st.progress(0.0, text="Preparing the reference set for the knock-out sweep…")
    try:
        batches, source = reference_batches(loaded, folder or None)
    except Exception:
        bar.empty()
        raise
    total = sum(len(y) for _, y in batches)
    bar.progress(0.0, text="Knocking out one SE block at a time…")
    panel = knockout_sweep_panel(loaded, batches, mode, means, source,
                                   progress=lambda f: bar.progress(f, text=f"Knock-out sweep: {f:.0%}"), total=total)
    bar.empty()
    return panel


@st.cache_data(show_spinner=False, max_entries=8)
def get_reference_excitations(spec: str, pretrained: bool, arch: str | None, folder: str):
    """Return s at every block for every reference image (sevis.views.channel.ReferenceExcitations)."""
    from sevis.views.channel import reference_excitations
    bar = st.progress(0.0, text="Recording s for every reference image…")
    ref = reference_excitations(get_model(spec, pretrained, arch), folder or None,
                                progress=lambda f: bar.progress(f, text=f"Reference excitations: {f:.0%}"))
    bar.empty()
    return ref


@st.cache_data(show_spinner="Counting parameters…", max_entries=8)
def get_architecture(spec: str, pretrained: bool, arch: str | None):
    """Return the architecture view's panels."""
    return architecture_panels(get_model(spec, pretrained, arch))


@st.cache_data(show_spinner=False, ttl=300)
def static_ok() -> bool:
    """Return True when PNG/SVG/PDF export works here."""
    return E.static_export_available()


# ---------------------------------------------------------------------------------------- helpers
def content_hash(data: bytes) -> str:
    """Return a short hex digest of `data` (cache keys, upload file names)."""
    return hashlib.sha256(data).hexdigest()[:16]


CHANNEL_VIEW = "Channel"


def open_channel(chart_key: str, blocks: list[str]) -> None:
    """Selection callback: a clicked channel (heat strip, Fig. 6, Inside a block) opens the Channel view."""
    from sevis.views.channel import channel_from_point
    state = st.session_state.get(chart_key) or {}
    points = (state.get("selection") or {}).get("points") or []
    for point in points:
        picked = channel_from_point(point, blocks)
        if picked is not None:
            st.session_state["ch_block"], st.session_state["ch_channel"] = picked
            st.session_state["view"] = CHANNEL_VIEW
            return


def show_panel(panel: Panel, key: str, clickable_blocks: list[str] | None = None, figure=None):
    """Show a figure (or `figure`, an app-only variant of it), its caption under it and its download menu.
    With `clickable_blocks` a click on a channel (a point with customdata [block, channel]) opens the
    Channel view, through Streamlit's selection events. In lecture mode the view's lead figure goes on the stage
    (lecture_stage), with a place for the takeaway between it and its caption."""
    chart_key = f"chart_{key}"
    lecture = lecture_mode()
    if lecture:
        figure = slides_style(figure or panel.figure)
    stage = _stage_for(panel) if lecture else None
    with stage["area"] if stage is not None else nullcontext():
        # the element toolbar keeps its full-screen button in every mode (CHART_CONFIG hides only Plotly's logo)
        if clickable_blocks:
            st.plotly_chart(figure or panel.figure, key=chart_key, theme=None, config=CHART_CONFIG,
                            on_select=lambda: open_channel(chart_key, clickable_blocks), selection_mode="points")
        else:
            st.plotly_chart(figure or panel.figure, key=chart_key, theme=None, config=CHART_CONFIG)
        if stage is not None:
            stage["slot"] = st.empty()  # the takeaway, once the view has computed it
        st.caption(panel.caption)
    download_menu(panel, key)


def lecture_mode() -> bool:
    """Return True when the sidebar's lecture-mode switch is on."""
    return bool(st.session_state.get(LECTURE_KEY))


LECTURE_KEY = "lecture"
LECTURE_CSS = style.LECTURE_CSS  # lecture mode's page style (sevis/app/style.py)
STAGE_KEY = "_lecture_stage"  # session state: the stage of the view being drawn (lecture mode), for this run only


@contextmanager
def lecture_stage(on: bool, lead: str | None = None, at_top: bool = True):
    """While a view draws (the body of the `with`), in lecture mode (`on`): keep a stage for its lead figure (the
    first panel, or the first whose key ends with `lead`) with the view's takeaway right under it as its caption
    (show_panel and takeaway put them there). The stage is the top of the view (`at_top`), or where the view calls
    stage_here() (the Tour: under its Back / Next)."""
    if not on:
        yield
        return
    st.session_state[STAGE_KEY] = {"area": st.container(key="lecture_stage") if at_top else None, "lead": lead,
                                   "slot": None}
    try:
        yield
    finally:
        st.session_state.pop(STAGE_KEY, None)  # containers live for one run only


def stage_here() -> None:
    """Put the lecture stage (lecture_stage) here, in a view whose stage is not at its top; nothing otherwise."""
    stage = st.session_state.get(STAGE_KEY)
    if stage is not None and stage["area"] is None:
        stage["area"] = st.container(key="lecture_stage")


def _stage_for(panel: Panel) -> dict | None:
    """Return the stage when `panel` is the lead figure it still waits for, else None."""
    stage = st.session_state.get(STAGE_KEY)
    if stage is None or stage["area"] is None or stage["slot"] is not None:
        return None
    return stage if stage["lead"] is None or panel.key.endswith(stage["lead"]) else None


def show_table(frame, key: str | None = None, **dataframe_kw) -> None:
    """Show a table: in lecture mode as a static table whose cells wrap (every column fits 1280 px, no
    horizontal scrolling); otherwise as Streamlit's interactive data frame (sortable, `dataframe_kw`)."""
    if lecture_mode():
        st.table(frame, hide_index=dataframe_kw.get("hide_index"))
    else:
        st.dataframe(frame, key=key, **dataframe_kw)


def download_menu(panel: Panel, key: str) -> None:
    """A popover with the panel as PNG/SVG/PDF (rendered on click), HTML, and its data as CSV/JSON; none in lecture
    mode (fewer controls in front of a class: the Export view still has every file)."""
    if lecture_mode():
        return
    with st.popover("⬇ Download", key=f"dl_{key}"):
        st.caption(panel.caption)
        cols = st.columns(3)
        if static_ok():
            for col, fmt in zip(cols, E.IMAGE_FORMATS):
                col.download_button(fmt.upper(), data=lambda p=panel, f=fmt: E.panel_bytes(p, f),
                                    file_name=E.panel_filename(panel, fmt), mime=E.MIME[fmt],
                                    key=f"dl_{key}_{fmt}", on_click="ignore")
        else:
            st.caption("PNG/SVG/PDF: " + E.NO_CHROME)
        cols = st.columns(3)
        cols[0].download_button("HTML", data=lambda p=panel: E.panel_bytes(p, "html"),
                                file_name=E.panel_filename(panel, "html"), mime=E.MIME["html"],
                                key=f"dl_{key}_html", on_click="ignore")
        # Callables, like the images: built on click, not on every rerun of every view that shows a panel.
        cols[1].download_button("CSV", data=lambda d=panel.data: E.frame_to_csv(d),
                                file_name=E.panel_filename(panel, "csv"), mime=E.MIME["csv"], key=f"dl_{key}_csv",
                                on_click="ignore")
        cols[2].download_button("JSON", data=lambda d=panel.data: E.frame_to_json(d),
                                file_name=E.panel_filename(panel, "json"), mime=E.MIME["json"], key=f"dl_{key}_json",
                                on_click="ignore")


def remember(view: str, shown) -> None:
    """Keep what a view last showed (its ViewResult, or a list of panels), for the Export view's teaching pack and
    for the tests that check the app against `sevis export`."""
    result = shown if isinstance(shown, ViewResult) else None
    panels = result.panels if result is not None else list(shown or [])
    st.session_state.setdefault("panels", {})[view] = panels
    st.session_state.setdefault("view_results", {})[view] = result
    st.session_state.setdefault("takeaways", {})[view] = st.session_state.pop(PENDING_TAKEAWAYS, [])
    if panels:
        st.session_state["last_view"] = view


# ---------------------------------------------------------------------------------------- the view protocol
def unless_default(value, default):
    """Return None when a widget still holds the view's default (so the request is the view's default request and
    a prepared result serves it), else the widget's value."""
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return None if list(value) == list(default) else tuple(value)
    return None if value == default else value


@st.cache_resource(show_spinner=False, max_entries=64)
def _shared_result(spec: str, pretrained: bool, arch: str | None, slug: str, request_key: str,
                   _request: ViewRequest) -> ViewResult:
    """Return a view's result for a request no student's upload is part of, computed once for every session (keyed on
    the request's hash) and kept as one object, not pickled (a pickled Plotly figure costs as much to load as to
    build, on every rerun). Sessions get their own copies (view_result, own_copy)."""
    from sevis.views.registry import compute_view
    bar = st.progress(0.0, text="Computing…")
    try:
        return compute_view(get_model(spec, pretrained, arch), slug, _request,
                            progress=lambda f: bar.progress(min(max(f, 0.0), 1.0), text=f"Computing: {f:.0%}"))
    finally:
        bar.empty()


@st.cache_resource(show_spinner=False, max_entries=16)
def prepared_keys(spec: str, pretrained: bool, arch: str | None) -> frozenset:
    """Return the (view slug, request key) pairs `sevis prepare` stores for a shipped model (their images are the
    bundled sample images, never a student's); empty for a model without prepared results."""
    from sevis.analysis.precomputed import weights_file
    from sevis.views.prepared import prepared_path
    from sevis.views.registry import default_requests
    loaded = get_model(spec, pretrained, arch)
    weights = weights_file(loaded)
    if weights is None or not prepared_path(weights).is_file():
        return frozenset()
    return frozenset((slug, r.key()) for slug, requests in default_requests(loaded).items() for r in requests)


def view_result(ctx: Context, slug: str, request: ViewRequest | None = None) -> ViewResult:
    """Return the view's result for `request` (default: the view's default request; a shipped model's prepared
    result when one is stored). Requests with a student's images are computed in this session only; the rest
    (prepared requests with the bundled sample images included) are computed once for every session, and each
    session keeps its own copy. Raises SevisError with the view's one message."""
    from sevis.app.guard import session_results
    request = request or ViewRequest()
    key = request.key()
    if request.images and (slug, key) not in prepared_keys(*ctx.key):
        from sevis.views.registry import compute_view
        return session_results((*ctx.key, slug, key), lambda: compute_view(ctx.loaded, slug, request))
    # The shared result is never handed out: each session draws its own copy, made once per session (not per rerun)
    return session_results((*ctx.key, slug, key, "copy"),
                           lambda: own_copy(_shared_result(*ctx.key, slug, key, request)))


_COPYING = threading.Lock()


def own_copy(shared: ViewResult) -> ViewResult:
    """Return a copy of a shared result whose figures are this session's own, built from Plotly's dicts of the
    shared figures without validating them again (they were validated when built). A copy, because Plotly is not
    thread-safe even to read: go.Figure(fig), which the app's figure variants and lecture mode make, takes each
    trace's "type" out of `fig` while it copies, so two sessions copying one shared figure at once could build a
    scatter from a heat map (found by the load benchmark). Every copy of a shared figure is made here, under one
    lock, and nothing else ever sees the shared one."""
    with _COPYING:
        panels = [replace(p, figure=go.Figure({"data": copy.deepcopy(p.figure._data),
                                               "layout": copy.deepcopy(p.figure._layout)},
                                              skip_invalid=True, _validate=False)) for p in shared.panels]
    return replace(shared, panels=panels, numbers=dict(shared.numbers), notes=list(shared.notes))


def shown_result(ctx: Context, slug: str, request: ViewRequest | None = None) -> ViewResult | None:
    """Return the view's result (view_result), or None after showing its one error message in the view."""
    try:
        return view_result(ctx, slug, request)
    except SevisError as e:
        st.error(str(e))
        return None


def show_notes(result: ViewResult) -> None:
    """Show a result's notes (its source, what is missing, a stale prepared file) as captions."""
    for note in result.notes:
        st.caption(note)


def display_image(img: Image.Image, size: int = 160) -> Image.Image:
    """Return `img` enlarged with hard pixels when small (28 px garments), so students see what the model saw."""
    if max(img.size) < size:
        factor = max(1, size // max(img.size))
        return img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    return img


def block_picker(label: str, names: list[str], default: list[str], key: str) -> list[str]:
    """A multiselect of SE blocks; return the picked ones in depth order."""
    picked = st.multiselect(label, names, default=[d for d in default if d in names], key=key)
    return [n for n in names if n in picked]


def intro(text: str) -> None:
    """The one to three sentences a view opens with: what is shown and how to read it (folded away in lecture
    mode, where the figure comes first)."""
    if lecture_mode():
        with st.expander("How to read this view", icon=":material/help:"):
            st.markdown(text)
    else:
        st.markdown(text)


def takeaway(text: str | None) -> None:
    """The sentence a view ends with, computed from what is on screen; in lecture mode right under the lead figure
    (its place on the stage), as that figure's caption."""
    if text:
        stage = st.session_state.get(STAGE_KEY)
        slot = stage["slot"] if stage is not None else None
        if slot is not None and not stage.get("said"):
            stage["said"] = True
            slot.info(f"**Takeaway.** {text}")
        else:
            st.info(f"**Takeaway.** {text}")
        st.session_state.setdefault(PENDING_TAKEAWAYS, []).append(text)  # for the teaching pack's README


def caption_on_stage(sentences: list[str]) -> bool:
    """In lecture mode, write `sentences` (a Tour step's two) right under the lead figure on the stage, in large
    type, and return True; return False (nothing written) when there is no stage figure to write them under."""
    stage = st.session_state.get(STAGE_KEY)
    slot = stage["slot"] if stage is not None else None
    if slot is None or stage.get("said") or not sentences:
        return False
    stage["said"] = True
    with slot.container():
        for sentence in sentences:
            st.markdown(f"##### {sentence}")
    return True


PENDING_TAKEAWAYS = "pending_takeaways"  # takeaways shown during this run, until remember() files them
