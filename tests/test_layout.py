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


# Sub-packages from the bottom up: a module imports only its own layer and the ones listed before it. The package's
# root modules (errors, files, names: no torch) sit below everything; sevis/__init__ and __main__ name the public API.
LAYERS = ["sevis.core", "sevis.data", "sevis.models", "sevis.analysis", "sevis.train", "sevis.figures",
          "sevis.serving", "sevis.views", "sevis.app", "sevis.cli"]
ROOT_MODULES = {"sevis.errors", "sevis.files", "sevis.names"}


def layer_of(module: str) -> int:
    if module in ROOT_MODULES:
        return -1
    for i, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return i
    if module == "sevis":  # the public API (lazy re-exports of lower layers): for the views, the app and the CLI
        return LAYERS.index("sevis.views")
    return len(LAYERS)  # sevis/__main__: above everything


def test_every_module_sits_in_a_layer(graph):
    loose = {m for m in graph if layer_of(m) == len(LAYERS)} - {"sevis.__main__"}
    assert not loose, f"modules outside the layers: {sorted(loose)}"


def test_layers_import_only_downwards(graph):
    up = sorted(f"{m} -> {n}" for m in graph for n in graph[m]
                if layer_of(n) > layer_of(m))
    # the app and the CLI are siblings at the top: neither imports the other
    up += sorted(f"{m} -> {n}" for m in graph for n in graph[m]
                 if layer_of(m) == LAYERS.index("sevis.cli") and layer_of(n) == LAYERS.index("sevis.app"))
    assert not up, "imports that point up a layer:\n" + "\n".join(up)


def test_views_import_no_other_view_and_no_dispatcher(graph):
    views = {m for m in graph if m.startswith("sevis.views.")} - {"sevis.views.registry", "sevis.views.base"}
    assert {"sevis.views.live", "sevis.views.class_depth", "sevis.views.channel"} <= views
    for v in views:
        bad = {m for m in graph[v] if m in views or m == "sevis.views.registry" or m.startswith("sevis.app")}
        assert not bad, f"{v} imports {bad}"
