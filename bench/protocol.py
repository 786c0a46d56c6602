"""A protocol-level Streamlit client: what a browser tab sends and receives, without a browser.

One `StreamlitSession` is one student's tab: it fetches the XSRF cookie over HTTP, opens the WebSocket
`/_stcore/stream` with the same sub-protocol header the frontend sends ("streamlit", XSRF token), and speaks the
protobufs Streamlit ships (`streamlit.proto.BackMsg_pb2` out, `ForwardMsg_pb2` in). Running the script is a
`rerun_script` BackMsg carrying the full widget state of the tab (as the frontend does on every interaction);
an upload is a `file_urls_request` BackMsg, an HTTP PUT of the file (multipart, X-Xsrftoken header) to the URL
the server answers with, then a rerun with the uploader's `file_uploader_state_value`. A run is over at the
`script_finished` ForwardMsg.

The client does no rendering, so a hundred of them cost less CPU than one headless browser: what the load
benchmark then measures is the server. Used by bench/load.py and tests/test_replicas.py.
"""
from __future__ import annotations

import asyncio
import re
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urljoin, urlparse

XSRF_COOKIE = "_streamlit_xsrf"
REPLICA_HEADER = "X-Sevis-Replica"  # set by `sevis serve`'s nginx: which replica answered
UPLOADER_LABEL = "Upload images"  # the sidebar uploader of sevis/app/main.py
PREDICTION = re.compile(r"\*\*Prediction: (?P<label>[^*]+)\*\* \((?P<pct>[0-9.]+)%\)")


class ProtocolError(RuntimeError):
    """The server answered something a browser tab would not accept (HTTP error, failed run, timeout)."""


@dataclass
class RunResult:
    """What one script run sent to the tab."""

    seconds: float
    status: str  # ScriptFinishedStatus name of the run's end
    payload_bytes: int = 0
    messages: int = 0
    markdown: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    error_alerts: list[str] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def prediction(self) -> tuple[str, float] | None:
        """Return the (label, percent) of the first "**Prediction: …**" line the run showed, or None."""
        for body in self.markdown:
            m = PREDICTION.search(body)
            if m:
                return m["label"].strip(), float(m["pct"])
        return None

    def mentions(self, text: str) -> bool:
        """Return whether any message of the run contains `text` (file names, titles: anywhere in the protobufs)."""
        needle = text.encode()
        return any(needle in chunk for chunk in self.raw)


def _http(method: str, url: str, data: bytes | None = None, headers: dict | None = None,
          timeout: float = 60) -> tuple[int, list[tuple[str, str]], bytes]:
    """One blocking HTTP request; return (status, headers, body). HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, list(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, list(e.headers.items()), e.read()


def multipart(name: str, data: bytes, mime: str = "image/png") -> tuple[bytes, str]:
    """Return (body, content type) of a multipart form holding one file field, as the frontend's upload."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class StreamlitSession:
    """One tab of a Streamlit app at `base` (http://host:port), driven over its own protocol.

    `async with StreamlitSession(url) as s:` connects and runs the page once (as a fresh tab does); then
    `await s.upload(name, data)` and `await s.open_tab(title)` each return the RunResult of the run they cause.
    Cookies the server (or a proxy in front of it) sets are sent back on every request, so a cookie-based
    sticky proxy keeps the tab on one replica."""

    def __init__(self, base: str, timeout_s: float = 600, cookies: dict[str, str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.timeout_s = timeout_s
        self.cookies: dict[str, str] = dict(cookies or {})
        self.replica = ""  # the upstream that answered the first request, when a `sevis serve` proxy says so
        self.session_id = ""
        self.page_hash = ""
        self.widget_ids: dict[str, str] = {}  # "uploader" → widget id, learnt from the page's deltas
        self.view_pills: dict[str, str] = {}  # view title → id of the navigation pills that open it
        self.widgets: dict[str, object] = {}  # widget id → WidgetState the tab sends with every rerun
        self.first_run: RunResult | None = None
        self._ws = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    # ------------------------------------------------------------------ plumbing
    def _cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _take_cookies(self, headers: list[tuple[str, str]]) -> None:
        for k, v in headers:
            if k.lower() == "set-cookie":
                jar = SimpleCookie()
                jar.load(v)
                self.cookies.update({name: morsel.value for name, morsel in jar.items()})

    async def request(self, method: str, path: str, data: bytes | None = None,
                      headers: dict | None = None) -> tuple[int, bytes]:
        """Send one HTTP request with this tab's cookies (and take the cookies it sets); return (status, body)."""
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = self._cookie_header()
        status, got, body = await asyncio.to_thread(_http, method, urljoin(self.base + "/", path.lstrip("/")),
                                                     data, h, self.timeout_s)
        self._take_cookies(got)
        self.replica = self.replica or next((v for k, v in got if k.lower() == REPLICA_HEADER.lower()), "")
        return status, body

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        try:
            async for raw in self._ws:
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                await self._queue.put((msg, raw))
        except Exception as e:  # noqa: BLE001 the closed connection is reported to whoever waits
            await self._queue.put((None, f"{type(e).__name__}: {e}"))
            return
        await self._queue.put((None, "connection closed by the server"))

    async def _send(self, **fields) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        await self._ws.send(BackMsg(**fields).SerializeToString())

    async def _next(self, deadline: float):
        try:
            msg, raw = await asyncio.wait_for(self._queue.get(), max(deadline - time.monotonic(), 0.01))
        except asyncio.TimeoutError:
            raise ProtocolError(f"no answer within {self.timeout_s:.0f} s") from None
        if msg is None:
            raise ProtocolError(raw)
        return msg, raw

    # ------------------------------------------------------------------ runs
    async def rerun(self) -> RunResult:
        """Ask the server to run the script with this tab's widget states; return what the run sent."""
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.WidgetStates_pb2 import WidgetStates
        state = ClientState(query_string="", page_script_hash=self.page_hash,
                            widget_states=WidgetStates(widgets=list(self.widgets.values())))
        t0 = time.monotonic()
        await self._send(rerun_script=state)
        return await self._collect(t0)

    async def _collect(self, t0: float) -> RunResult:
        from streamlit.proto.Alert_pb2 import Alert
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        deadline = t0 + self.timeout_s
        out = RunResult(0.0, "")
        started = False
        while True:
            msg, raw = await self._next(deadline)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                started = True
                self.session_id = msg.new_session.initialize.session_id or self.session_id
                self.page_hash = msg.new_session.page_script_hash or msg.new_session.main_script_hash
                continue
            if kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN or not started:
                    continue  # a run the server replaced by ours (or one that ended before ours began)
                out.status, out.seconds = status, time.monotonic() - t0
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    out.exceptions.append("the script failed to compile")
                return out
            if kind != "delta":
                continue
            out.messages += 1
            out.payload_bytes += len(raw)
            out.raw.append(raw)
            d = msg.delta
            if d.WhichOneof("type") == "add_block":
                continue
            if d.WhichOneof("type") != "new_element":
                continue
            el = d.new_element
            etype = el.WhichOneof("type")
            if etype == "markdown":
                out.markdown.append(el.markdown.body)
            elif etype == "exception":
                out.exceptions.append(f"{el.exception.type}: {el.exception.message[:200]}")
            elif etype == "alert" and el.alert.format == Alert.ERROR:
                out.error_alerts.append(el.alert.body[:200])
            elif etype == "file_uploader" and el.file_uploader.label == UPLOADER_LABEL:
                self.widget_ids["uploader"] = el.file_uploader.id
            elif etype == "button_group" and "nav_" in el.button_group.id:  # the page's grouped navigation
                for option in el.button_group.options:
                    self.view_pills[option.content] = el.button_group.id
            elif etype == "imgs":
                out.captions += [img.caption for img in el.imgs.imgs if img.caption]

    # ------------------------------------------------------------------ what a student does
    async def connect(self) -> RunResult:
        """Fetch the XSRF cookie, open the WebSocket and run the page once; return that first run."""
        from websockets.asyncio.client import connect
        status, _ = await self.request("GET", "/_stcore/health")
        if status != 200:
            raise ProtocolError(f"health check answered HTTP {status}")
        host = urlparse(self.base)
        ws_url = ("wss" if host.scheme == "https" else "ws") + f"://{host.netloc}/_stcore/stream"
        protocols = ["streamlit"] + ([self.cookies[XSRF_COOKIE]] if XSRF_COOKIE in self.cookies else [])
        headers = {"Cookie": self._cookie_header()} if self.cookies else {}
        self._ws = await connect(ws_url, subprotocols=protocols, origin=self.base, additional_headers=headers,
                                 max_size=None, proxy=None, open_timeout=self.timeout_s, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        self.first_run = await self.rerun()
        return self.first_run

    async def upload(self, name: str, data: bytes, mime: str = "image/png") -> RunResult:
        """Put `data` into the sidebar uploader as the tab's only file and wait for the run it causes; the
        result's seconds count from the request for an upload URL to the end of that run."""
        from streamlit.proto.Common_pb2 import FileUploaderState, FileURLsRequest, UploadedFileInfo
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        if "uploader" not in self.widget_ids:
            raise ProtocolError("the page shows no image uploader")
        t0 = time.monotonic()
        rid = uuid.uuid4().hex
        await self._send(file_urls_request=FileURLsRequest(request_id=rid, session_id=self.session_id,
                                                           file_names=[name]))
        deadline = t0 + self.timeout_s
        while True:
            msg, _ = await self._next(deadline)
            if msg.WhichOneof("type") == "file_urls_response" and msg.file_urls_response.response_id == rid:
                break
        resp = msg.file_urls_response
        if resp.error_msg or not resp.file_urls:
            raise ProtocolError(f"no upload URL: {resp.error_msg or 'empty answer'}")
        urls = resp.file_urls[0]
        body, ctype = multipart(name, data, mime)
        headers = {"Content-Type": ctype}
        if XSRF_COOKIE in self.cookies:
            headers["X-Xsrftoken"] = self.cookies[XSRF_COOKIE]
        status, answer = await self.request("PUT", urls.upload_url, body, headers)
        if status not in (200, 204):
            raise ProtocolError(f"upload answered HTTP {status}: {answer[:200].decode(errors='replace')}")
        wid = self.widget_ids["uploader"]
        info = UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id)
        info.file_urls.CopyFrom(urls)
        self.widgets[wid] = WidgetState(id=wid, file_uploader_state_value=FileUploaderState(uploaded_file_info=[info]))
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.WidgetStates_pb2 import WidgetStates
        await self._send(rerun_script=ClientState(query_string="", page_script_hash=self.page_hash,
                                                  widget_states=WidgetStates(widgets=list(self.widgets.values()))))
        return await self._collect(t0)

    async def open_tab(self, title: str) -> RunResult:
        """Open the view `title` as a click on its pill in the page's grouped navigation does, and return that
        run."""
        from streamlit.proto.Common_pb2 import StringArray
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        if title not in self.view_pills:
            raise ProtocolError(f"the page's navigation shows no view {title!r}")
        wid = self.view_pills[title]
        for other in set(self.view_pills.values()) - {wid}:  # the page clears the other groups' pills itself
            self.widgets.pop(other, None)
        self.widgets[wid] = WidgetState(id=wid, string_array_value=StringArray(data=[title]))
        return await self.rerun()

    async def close(self) -> None:
        """Close the WebSocket (the server ends the session as when a tab closes)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()

    async def __aenter__(self) -> "StreamlitSession":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
