"""Long CLI passes show a tqdm progress bar on a terminal and print nothing extra when piped."""
from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARGV = [sys.executable, "-m", "sevis", "evaluate", "--split", "reference"]  # 1,000 bundled images


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.slow
def test_evaluate_is_quiet_when_piped():
    proc = subprocess.run(ARGV, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("accuracy: ") and "(1000 reference images)" in proc.stdout


@pytest.mark.slow
def test_evaluate_shows_a_progress_bar_on_a_terminal():
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))  # a 100-column terminal
    proc = subprocess.Popen(ARGV, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read()
    assert proc.wait(timeout=600) == 0
    os.close(master)
    text = seen.decode("utf-8", "replace")
    # 1000 images × 6 passes (stats, 3 control seeds, 2 sweeps)
    assert "evaluate " in text and " on reference" in text and "img/s" in text and "/6000 " in text, text[-500:]
    assert out.startswith("accuracy: ")  # the report itself still goes to stdout
