"""`streamlit run app.py` on a free localhost port, for the load benchmark, the browser test and the screenshots:
started headless, waited for until its health endpoint answers, always stopped (a context manager)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_rss_mib(pid: int) -> float:
    """Return the resident memory of process `pid` in MiB (/proc/<pid>/status VmRSS)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


class StreamlitServer:
    """The app served by `streamlit run app.py` (headless, no file watcher) on a free port of 127.0.0.1.

    `with StreamlitServer() as server:` returns once `server.url` answers its health check, and stops the
    process on exit; a server that exits or does not answer within `startup_s` raises RuntimeError, naming
    its log file."""

    def __init__(self, startup_s: float = 300, log_dir: str | Path | None = None, env: dict | None = None) -> None:
        self.startup_s = startup_s
        self.extra_env = dict(env or {})  # e.g. the SEVIS_* settings of a served class
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="sevis-streamlit-")) / "server.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "StreamlitServer":
        """Start the server and return self once it answers its health check."""
        # The repository root on PYTHONPATH: the app imports sevis from the checkout even when not installed.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, **self.extra_env, PYTHONPATH=path)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + self.startup_s
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"streamlit did not answer within {self.startup_s:.0f} s; see {self.log_path}")
            time.sleep(1)

    def rss(self) -> float:
        """Return the server's resident memory in MiB."""
        return server_rss_mib(self.proc.pid)

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 30 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()

    def __enter__(self) -> "StreamlitServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
