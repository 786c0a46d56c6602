"""The view protocol: every view is one module with a TITLE, a SLUG and one function

    compute(loaded: LoadedModel, request: ViewRequest, progress=None) -> ViewResult

that returns everything the view shows: its panels (figure + data + caption), the numbers it states, its computed
takeaway and its notes. The app's widgets build a ViewRequest and render the result; `sevis export` builds the same
request from its arguments and writes the same result; `sevis prepare` stores the result of the default request of
every view beside a shipped model. One result, three readers, so they cannot disagree.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from sevis.analysis.images import NamedImage
from sevis.figures.plots import Panel

Progress = Callable[[float], None]
ADDED_UNSET = ("find_flip",)  # fields left out of ViewRequest.key() at their default (added after prepared files)


@dataclass(frozen=True)
class ViewRequest:
    """What a view is asked to show. Every field has the view's default; a view reads only the fields it needs.

    images: the images (Live, Compare, Knock-out, Inside a block, Channel); classes / blocks: which rows and panels
    (None: the view's computed default; Compare: the class means to add, "all" for every image); channels, n, seed,
    fig7_class, form: Fig. 6 and 7 (n also Inside a block's channels each side); folder: the labelled
    reference set (None: the bundled one); knockout_blocks, mode: the knock-out (find_flip: also search each image
    for a flip); block, channel: one block or one channel (None: the computed default); step: a Tour step (None:
    every step); pair: two ablation variants; run: an architecture run; epoch: one Training snapshot (None: every
    snapshot); slides: figures at slide size.
    """

    images: tuple[NamedImage, ...] = ()
    classes: tuple[str, ...] | None = None
    blocks: tuple[str, ...] | None = None
    channels: str | None = None
    n: int | None = None
    seed: int = 0
    fig7_class: str | None = None
    form: str = "deviation"
    folder: str | None = None
    knockout_blocks: tuple[str, ...] | None = None
    mode: str = "identity"
    block: str | None = None
    channel: int | None = None
    step: int | None = None
    pair: tuple[str, str] | None = None
    run: str | None = None
    panels: tuple[str, ...] | None = None  # only these panels (keys) of the view, e.g. Fig. 6 alone
    epoch: int | None = None
    find_flip: bool = False  # Knock-out: also search each image for the smallest knock-out that flips its prediction

    def __post_init__(self) -> None:
        # lists from widgets and argparse become tuples, so a request is hashable and compares by value
        for name in ("images", "classes", "blocks", "knockout_blocks", "pair", "panels"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if self.folder == "":
            object.__setattr__(self, "folder", None)

    def wants(self, panel_key: str) -> bool:
        """Return whether the panel with this key is asked for (every panel unless `panels` names some)."""
        return self.panels is None or panel_key in self.panels

    def key(self) -> str:
        """Return a short hash of the request (images by name and pixels), for caches and prepared files."""
        parts: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ADDED_UNSET and value == f.default:
                continue  # a field added later counts only when set, so stored (prepared) requests keep their keys
            if f.name == "images":
                value = [[im.name, hashlib.sha256(im.image.tobytes()).hexdigest()[:16], list(im.image.size)]
                         for im in value]
            parts[f.name] = value
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class ViewResult:
    """One view's result: what the app renders and what `sevis export` writes.

    numbers: every number the view states, by name (a share, a channel, a count), so that two readers of the
    result, or two views stating the same quantity, can be checked against each other.
    """

    slug: str
    title: str
    panels: list[Panel] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    takeaway: str | None = None
    notes: list[str] = field(default_factory=list)

    def panel(self, key: str) -> Panel | None:
        """Return the panel with this key, or None."""
        return next((p for p in self.panels if p.key == key), None)

    def panel_titles(self) -> list[str]:
        return [p.title for p in self.panels]


def plain_numbers(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """Return `numbers` with numpy scalars as Python numbers (JSON-ready)."""
    out = {}
    for k, v in numbers.items():
        if hasattr(v, "item"):
            v = v.item()
        elif isinstance(v, (list, tuple)):
            v = [x.item() if hasattr(x, "item") else x for x in v]
        out[str(k)] = v
    return out


def names_of(items: Sequence) -> list[str]:
    """Return the names of blocks (SEBlock or str)."""
    return [getattr(b, "name", b) for b in items]
