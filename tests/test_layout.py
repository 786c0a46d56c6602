"""The package's layout: no import cycle, no module over 500 lines, a view never imports another view or the
export dispatcher, and the lower layers never import a view or the app."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sevis"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Return the sevis modules `name` imports anywhere in its file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from . import params` names a module; `from .x import y` names module x
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def test_no_import_cycle(graph):
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n] if n in path else [m, n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_no_module_over_500_lines():
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_views_import_no_other_view_and_no_dispatcher(graph):
    views = {m for m in graph if m.startswith("sevis.views.")}
    assert {"sevis.views.live", "sevis.views.class_depth", "sevis.views.channel"} <= views
    for v in views:
        bad = {m for m in graph[v] if m in views or m == "sevis.view_export" or m.startswith("sevis.app")}
        assert not bad, f"{v} imports {bad}"


def test_lower_layers_import_no_view(graph):
    # the views, the app and the command line (sevis.cli and its subcommand modules) sit above everything else
    upper = {m for m in graph if m.startswith(("sevis.views", "sevis.app", "sevis.cli")) or m.endswith("_cli")}
    upper |= {"sevis.view_export", "sevis.__main__"}
    for m in set(graph) - upper:
        bad = graph[m] & upper
        assert not bad, f"{m} (a lower layer) imports {bad}"
