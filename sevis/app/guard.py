"""What the sidebar lets a student reach when the app is served to a class (settings in sevis.serving.settings): server
folders only under SEVIS_DATA_DIRS, typed model names only when allowed and small enough, uploaded weights in
the process's private store, per-image results kept per session within a byte budget. Messages name what the
student typed or uploaded, never a server path or a hash, and never suggest command-line flags.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import streamlit as st

from sevis.data.folders import confine
from sevis.errors import SevisError
from sevis.serving.settings import (
    batch_pixels,
    check_free_model,
    data_roots,
    max_uploads,
    result_cache_bytes,
    upload_bytes,
)
from sevis.serving.uploads import return_memory, session_images, upload_store

if TYPE_CHECKING:
    from sevis.analysis.images import NamedImage

UPLOAD_NAMES = "_upload_names"  # session state: stored upload path -> the name the student gave the file
REFUSED = "_uploads_refused"  # session state: (the uploads kept, the sentence about those refused)


def session_id() -> str:
    """Return this browser session's id ("" outside a Streamlit run)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else ""


def _known_sessions(rt) -> Callable[[str], bool]:
    """Return a test of whether the server still has a session: connected, or kept for a reconnect (Streamlit
    keeps a closed tab's session two minutes); falls back to "connected" should Streamlit's internals move."""
    manager = getattr(rt, "_session_mgr", None)
    get_info = getattr(manager, "get_session_info", None)
    if get_info is None:
        return rt.is_active_session
    # The reconnect store is a cachetools TTLCache the event loop changes; Streamlit guards it with this lock.
    lock = getattr(manager, "_storage_lock", None) or contextlib.nullcontext()

    def known(sid: str) -> bool:
        with lock:
            return get_info(sid) is not None
    return known


def _reap_expired_sessions(rt) -> int:
    """Make Streamlit drop the sessions whose reconnect window has passed; return how many it dropped.

    Streamlit reaps its reconnect store only when it next stores a session (at another tab's disconnect), and
    until then an expired session keeps its session state, uploaded files included. Dropped here, the session is
    shut down as Streamlit does when it collects one (AppSession.__del__: its files and state go). Uses
    Streamlit's internals; should they move, this does nothing and Streamlit's own reaping remains."""
    manager = getattr(rt, "_session_mgr", None)
    expire = getattr(getattr(getattr(manager, "_session_storage", None), "_cache", None), "expire", None)
    if not callable(expire):
        return 0
    with getattr(manager, "_storage_lock", None) or contextlib.nullcontext():
        removed = expire()
    return len(removed)


def forget_ended_sessions() -> None:
    """Release what sessions the server no longer has (closed tabs, expired sessions) still hold: their uploaded
    weights, their decoded images, and the session state and uploaded files Streamlit keeps for them. Streamlit
    drops a closed tab's session only once it reaps it from its reconnect store (at some later disconnect) and
    collects it; until then its uploads would stay in the server's memory."""
    from streamlit import runtime
    if not runtime.exists():
        return
    rt, store = runtime.get_instance(), upload_store()
    known = _known_sessions(rt)
    freed = _reap_expired_sessions(rt)
    store.sweep([h for h in store.holders() if known(h)])
    freed += session_images().sweep(known)
    files = rt.uploaded_file_mgr
    for sid in [s for s in list(getattr(files, "file_storage", None) or {}) if not known(s)]:
        files.remove_session_files(sid)
        freed += 1
    if freed:
        return_memory()


def store_upload(name: str, data: bytes) -> str:
    """Write an uploaded weights file to the private store for this session; return its path (the model spec)."""
    forget_ended_sessions()
    path = str(upload_store().put(data, name, session_id()))
    st.session_state.setdefault(UPLOAD_NAMES, {})[path] = name
    upload_store().check(path)
    return path


def release_upload() -> None:
    """This session no longer needs an uploaded weights file."""
    upload_store().release(session_id())


def shown(spec: str) -> str:
    """Return how a model spec is named to the student: an upload by the file name they gave it."""
    return st.session_state.get(UPLOAD_NAMES, {}).get(spec, spec)


def user_message(spec: str, error: BaseException) -> str:
    """Return the sentence a failed load shows: a SevisError's own sentence with any stored upload's path (or
    the folder named by its hash) replaced by the student's file name; anything else without its internals."""
    name = shown(spec)
    if not isinstance(error, SevisError):  # the details go to the server's console, for the operator
        logging.getLogger("sevis.app").warning("loading %s failed", spec, exc_info=error)
        return f"{name} could not be loaded: it does not work with this app."
    text = str(error)
    if name != spec:
        text = text.replace(spec, name).replace(str(Path(spec).parent), "the upload")
    return text


def check_model(spec: str, listed: set[str]) -> None:
    """Raise ModelError when the student may not load the timm/torchvision name `spec` they typed."""
    if spec.partition(":")[0] in ("timm", "torchvision"):
        check_free_model(spec, listed)


def free_names() -> bool:
    """Return whether typed model names are on for this server."""
    from sevis.serving.settings import free_model_names
    return free_model_names()


def folder_field(label: str, key: str, placeholder: str, help: str) -> str:
    """The reference-set folder field: off (saying why) when the operator shares no folder, otherwise a text
    field whose value is resolved inside the shared folders. Return the ConfinedFolder, or "" (none picked or
    refused: the refusal is shown under the field)."""
    sb = st.sidebar
    roots = data_roots()
    if not roots:
        sb.text_input(label, key=key, disabled=True, value="",
                      placeholder="off: this server shares no folders",
                      help="The operator lists the folders students may read in SEVIS_DATA_DIRS; none is listed, "
                           "so the bundled reference set (or the sample photos) is used.")
        return ""
    text = sb.text_input(label, key=key, placeholder=placeholder,
                         help=help + " Folders inside: " + ", ".join(roots) + " (a name relative to one works).")
    text = (text or "").strip()
    if not text:
        return ""
    try:
        return confine(text, roots)
    except SevisError as e:
        sb.error(str(e))
        return ""


def session_results(key: tuple, compute: Callable[[], list]) -> list:
    """Return the per-image results for `key`, kept in this session within SEVIS_RESULT_CACHE_MB (a finished
    session takes its decoded images with it)."""
    from sevis.serving.budget import ByteBudgetCache
    cache = st.session_state.get("_results_cache")
    if cache is None:
        cache = st.session_state["_results_cache"] = ByteBudgetCache(result_cache_bytes)
    return cache.get_or_make(key, compute)



def admit_uploads(uploads: Sequence) -> tuple[list, str | None]:
    """Return the uploaded images this session may use, in order, within SEVIS_MAX_UPLOADS files and
    SEVIS_UPLOAD_MB bytes, and one sentence about the rest (None when all fit). Counted from UploadedFile.size,
    before a byte is copied; the rest are dropped from Streamlit's memory at once, not at the session's end."""
    count, budget = max_uploads(), upload_bytes()
    kept, refused, used = [], [], 0
    for f in uploads:
        if len(kept) < count and used + f.size <= budget:
            kept.append(f)
            used += f.size
        else:
            refused.append(f)
    ids = tuple(f.file_id for f in kept)
    if refused:
        from streamlit import runtime
        if runtime.exists():
            for f in refused:
                runtime.get_instance().uploaded_file_mgr.remove_file(session_id(), f.file_id)
        names = ", ".join(f.name for f in refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
        message = (f"{len(refused)} of {len(uploads)} uploaded files not used ({names}): this server analyses at "
                   f"most {count} images and {budget // 2**20} MB of uploads per session. Remove some to add others.")
        st.session_state[REFUSED] = (ids, message)
        return kept, message
    previous = st.session_state.get(REFUSED)
    if previous and previous[0] == ids:  # the refused files are gone from memory; the sentence stays until
        return kept, previous[1]          # the student changes the uploads
    st.session_state.pop(REFUSED, None)
    return kept, None


def session_decode(uploads: Sequence, samples: Sequence[tuple[str, bytes]]) -> tuple[list[NamedImage], list[str]]:
    """Return (images, error lines) for this session's uploads and picked sample images, within the upload caps
    and SEVIS_BATCH_MEGAPIXELS; decoded images are kept per session by content hash, so a rerun decodes nothing."""
    from sevis.analysis.images import decode_uploads
    kept, message = admit_uploads(uploads)
    files = [(f.name, f.getvalue()) for f in kept] + list(samples)  # getvalue shares the upload's bytes, no copy
    images, errors = decode_uploads(files, limit=max_uploads(), cache=session_images().of(session_id()),
                                    max_pixels=batch_pixels())
    return images, ([message] if message else []) + errors
