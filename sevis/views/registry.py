"""The registry of views: slug -> view module (each with TITLE, SLUG and compute(loaded, request, progress)), and
`compute_view`, the one call the app, `sevis export` and `sevis prepare` make. Sits above the views: no view
imports it.
"""
from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from sevis.errors import SevisError
from sevis.models.zoo import LoadedModel
from sevis.views import (
    ablations,
    architecture,
    channel,
    class_depth,
    compare,
    families,
    inside,
    knockout,
    live,
    tour,
    training,
)
from sevis.views.base import Progress, ViewRequest, ViewResult
from sevis.views.prepared import load_prepared

# In the app's order (the navigation groups them: Start, Explore, Experiments).
VIEW_MODULES: tuple[ModuleType, ...] = (tour, live, compare, class_depth, inside, channel, knockout, ablations,
                                        families, training, architecture)
VIEWS: dict[str, ModuleType] = {m.SLUG: m for m in VIEW_MODULES}
# Older `sevis export` names, and parts of a view: fig6 / fig7 / depth are panels of Class × depth.
ALIASES = {"block": "inside", "families": "architectures", "fig6": "class-depth", "fig7": "class-depth",
           "depth": "class-depth"}
PANEL_SUBSETS = {"fig6": ("fig6_class_means",), "fig7": ("fig7_within_class",), "depth": ("depth_profile",)}
EXPORT_VIEWS = tuple(VIEWS) + tuple(ALIASES)


def view_module(view: str) -> ModuleType:
    """Return the module of a view slug (or an alias); SevisError names the views when it is unknown."""
    slug = ALIASES.get(view, view)
    if slug not in VIEWS:
        raise SevisError(f"unknown view {view!r}; choose one of {', '.join(EXPORT_VIEWS)}")
    return VIEWS[slug]


def compute_view(loaded: LoadedModel, view: str, request: ViewRequest | None = None,
                 progress: Progress | None = None, prepared: bool = True) -> ViewResult:
    """Return the result of one view for `request` (default: the view's defaults): the prepared result of a shipped
    model when one was stored for exactly this request (`sevis prepare`), else computed now."""
    module = view_module(view)
    request = request or ViewRequest()
    if view in PANEL_SUBSETS:  # a part of a view: only its panels are computed
        request = replace(request, panels=PANEL_SUBSETS[view])
    result, note = load_prepared(loaded, module.SLUG, request) if prepared else (None, None)
    if result is None:
        result = module.compute(loaded, request, progress)
        if note:
            result.notes.insert(0, note)
    keep = PANEL_SUBSETS.get(view)
    if keep:
        result = replace(result, panels=[p for p in result.panels if p.key in keep])
    return result


def default_requests(loaded: LoadedModel) -> dict[str, list[ViewRequest]]:
    """Return, per view, the requests `sevis prepare` stores: each view's own list (its default, and for the Tour
    every step), so the first open of any view or step reads a file."""
    return {slug: list(getattr(m, "prepared_requests", lambda _: [ViewRequest()])(loaded)) for slug, m in VIEWS.items()}
