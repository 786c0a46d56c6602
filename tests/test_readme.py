"""The README's numbers come from the model cards: every generated table matches what the cards hold now."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_match_the_model_cards():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "tables.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in text.split("```bash\n")[1:3]]
    assert blocks == ["./setup.sh && .venv/bin/streamlit run app.py",
                      "./setup.sh --dev && .venv/bin/python -m pytest -q"]


def test_readme_layout_table_names_every_module():
    """The README's "What is inside" table names each sub-package's modules: every one exists, none is left out."""
    import re
    text = (ROOT / "README.md").read_text()
    table = text.split("## What is inside", 1)[1].split("### Architecture", 1)[0]
    named = set()
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        package = re.match(r"`([\w/]+)`", cells[0]).group(1).rstrip("/")
        package = "" if package == "sevis" else package
        for name in re.findall(r"`([a-z_/]+)`", cells[2]):  # module names are lower case; `ExcitationRecorder` is not
            named.add(f"{package}/{name}".strip("/").rstrip("/"))
    actual = {str(p.relative_to(ROOT / "sevis").with_suffix("")) for p in (ROOT / "sevis").glob("*/*.py")
              if p.name != "__init__.py"}
    actual |= {p.stem for p in (ROOT / "sevis").glob("*.py") if not p.name.startswith("__")}
    actual |= {"models/families"}
    view_modules = {m for m in actual if m.startswith("app/")} - {"app/main", "app/common", "app/guard"}
    assert named - actual == set(), f"the README names modules that do not exist: {sorted(named - actual)}"
    missing = actual - named - view_modules - {"app/script"}
    assert not missing, f"modules the README's layout table leaves out: {sorted(missing)}"
