"""'Show students the way in': QR codes of the app's address and of the link to what is open now (a view, a Tour
step), for a teacher to put on the projector. The address is the one the teacher's browser uses
(st.context.url); SEVIS_PUBLIC_URL overrides it for a server behind a proxy or reached by another name."""
from __future__ import annotations

import io
import os
from urllib.parse import urlencode, urlsplit, urlunsplit

import segno
import streamlit as st

PUBLIC_URL_ENV = "SEVIS_PUBLIC_URL"
QR_SCALE = 10  # pixels per module: a 33-module code is 410 px, readable from the back of a hall
QR_BORDER = 2  # the quiet zone, in modules


def app_address(browser_url: str | None = None) -> str | None:
    """Return the app's address for students: SEVIS_PUBLIC_URL when set, else the address the browser shows
    (`browser_url`, default st.context.url) without its query; None when neither is known."""
    public = os.environ.get(PUBLIC_URL_ENV, "").strip()
    url = public or (browser_url if browser_url is not None else st.context.url) or ""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def deep_link(address: str, query: dict[str, str]) -> str:
    """Return `address` with the query that opens what is open now (?view=<slug>&step=<n>)."""
    return address + ("?" + urlencode(query) if query else "")


def qr_code(url: str) -> segno.QRCode:
    """Return the QR code of `url` (error correction M: a projector's glare or a student's shaky phone)."""
    return segno.make(url, error="m", micro=False)


def qr_png(url: str) -> bytes:
    """Return the QR code of `url` as a black-on-white PNG (QR_SCALE pixels per module, a QR_BORDER quiet zone)."""
    buffer = io.BytesIO()
    qr_code(url).save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER, dark="#000000", light="#ffffff")
    return buffer.getvalue()


def show_the_way_in(query: dict[str, str]) -> None:
    """A popover with the QR codes of the app's address and of the link to what is open (`query`), each with its
    address in words for those who type."""
    with st.popover("Show students the way in", icon=":material/qr_code_2:", key="share"):
        address = app_address()
        if address is None:
            st.caption(f"The app's address is not known here: set {PUBLIC_URL_ENV} to the address students use.")
            return
        link = deep_link(address, query)
        left, right = st.columns(2)
        with left:
            st.markdown("**The app**")
            st.image(qr_png(address), width="stretch", output_format="PNG")
            st.code(address, language=None)
        with right:
            st.markdown("**What is open now**")
            st.image(qr_png(link), width="stretch", output_format="PNG")
            st.code(link, language=None)
        st.caption("Point a phone's camera at a code. Behind a proxy, set "
                   f"{PUBLIC_URL_ENV} to the address students use.")
