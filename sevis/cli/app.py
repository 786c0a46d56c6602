"""`sevis app`: serve the app from the installed package, i.e. `streamlit run` on sevis/app/script.py.

Any argument `sevis app` does not know goes to `streamlit run` unchanged (`sevis app --server.port 8502`). Unless
given, the server runs headless (no browser opened, no first-run e-mail prompt: it is a server for a class) and
without a file watcher (an installed package does not change under a running app, and watching site-packages costs
CPU). Building the parser imports nothing heavy.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sevis.errors import SevisError

SCRIPT = Path(__file__).resolve().parent.parent / "app" / "script.py"
# streamlit options `sevis app` sets unless the user gives them; the same ones bench/server.py passes.
DEFAULT_OPTIONS = {"--server.headless": "true", "--server.fileWatcherType": "none"}


def streamlit_command(extra: list[str], python: str | None = None) -> list[str]:
    """Return the command line that serves the app: `python -m streamlit run SCRIPT`, the default options the user
    did not give, then `extra` as given."""
    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}
    defaults = [part for opt, value in DEFAULT_OPTIONS.items() if opt not in given for part in (opt, value)]
    return [python or sys.executable, "-m", "streamlit", "run", str(SCRIPT), *defaults, *extra]


def _cmd_app(args: argparse.Namespace) -> int:
    if not SCRIPT.is_file():
        raise SevisError(f"the app's page {SCRIPT} is missing: reinstall sevis")
    cmd = streamlit_command(list(getattr(args, "streamlit_args", None) or []))
    sys.stdout.flush()
    sys.stderr.flush()
    # Replace this process with streamlit, so Ctrl-C and a service manager's SIGTERM reach the server itself.
    os.execv(cmd[0], cmd)
    return 0  # not reached


def add_app(sub) -> None:
    p = sub.add_parser("app", help="serve the app (streamlit run on the installed page; extra options go to streamlit)",
                       description="Serve the sevis app with `streamlit run` from the installed package, headless and "
                                   "without a file watcher unless told otherwise. Every other option is passed to "
                                   "streamlit, e.g. `sevis app --server.port 8502 --server.address 0.0.0.0`.")
    p.set_defaults(func=_cmd_app, streamlit_args=[])
