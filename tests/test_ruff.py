"""House style: ruff (pyflakes, import order, lines of at most 120 characters; pyproject.toml's [tool.ruff]) finds
nothing in the package, the tests, the benchmarks, the docs' scripts and app.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["sevis", "tests", "bench", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.py")), "app.py"]


def _ruff() -> list[str]:
    """Return the command that runs ruff: the venv's executable beside this interpreter, else one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.is_file() else shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: pip install -r requirements-dev.txt")
    return [found]


def test_ruff_finds_nothing():
    done = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", *TARGETS], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"ruff check found problems (`ruff check --fix` sorts imports and drops unused " \
                                 f"ones; long lines need wrapping by hand):\n{done.stdout}{done.stderr}"


def test_ruff_reads_the_project_config():
    """The settings in pyproject.toml are the ones in force (line length 120, the three rule families)."""
    done = subprocess.run([*_ruff(), "check", "--show-settings", "app.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "line_length = 120" in done.stdout
    rules = done.stdout.split("linter.rules.enabled", 1)[1].split("]", 1)[0]
    assert "unsorted-imports (I001)" in rules and "unused-import (F401)" in rules
    assert "line-too-long (E501)" in rules
