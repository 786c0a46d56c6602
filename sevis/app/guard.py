"""What the sidebar lets a student reach when the app is served to a class (settings in sevis.serving.settings): server
folders only under SEVIS_DATA_DIRS, typed model names only when allowed and small enough, uploaded weights in
the process's private store, per-image results kept per session within a byte budget. Messages name what the
student typed or uploaded, never a server path or a hash, and never suggest command-line flags.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import streamlit as st

from sevis.errors import SevisError
from sevis.data.folders import confine
from sevis.serving.settings import check_free_model, data_roots, result_cache_bytes
from sevis.serving.uploads import upload_store

UPLOAD_NAMES = "_upload_names"  # session state: stored upload path -> the name the student gave the file


def session_id() -> str:
    """Return this browser session's id ("" outside a Streamlit run)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else ""


def forget_ended_sessions() -> None:
    """Release the uploads of sessions the server no longer has (closed tabs, expired sessions)."""
    from streamlit import runtime
    if not runtime.exists():
        return
    rt, store = runtime.get_instance(), upload_store()
    store.sweep([h for h in store.holders() if rt.is_active_session(h)])


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

