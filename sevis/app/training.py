"""Training view: how the excitations emerged over training, from the snapshots embedded@<epoch>."""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from sevis.app.common import (
    Context,
    block_picker,
    download_menu,
    get_model,
    intro,
    show_panel,
    show_table,
    shown_result,
    takeaway,
    unless_default,
)
from sevis.app.screen import for_screen
from sevis.names import fig6_default_classes, snapshot_epochs
from sevis.views.base import ViewRequest, ViewResult
from sevis.views.training import (  # noqa: F401 (TITLE: the page's tab)
    SLUG,
    TITLE,
    emergence_words,
    snapshot_base,
    snapshot_choices,
)

OVERVIEW = ("training_accuracy", "training_emergence", "training_emergence_table")


def render(ctx: Context) -> ViewResult | None:
    """Show the training view; return its result (every snapshot's panels; the slider picks the one shown)."""
    intro("How the excitations emerged while the default model trained, from the weights kept after chosen epochs "
          "(epoch 0 is the initialisation): accuracy, when each SE block becomes class-specific beyond an untrained "
          "copy of the network, and for one snapshot the paper's Fig. 6 and the depth profile.")
    base = snapshot_base(ctx.key[0])
    epochs = snapshot_epochs(base)
    if not epochs:
        st.info(f"{base} has no training snapshots. Train it with `sevis train --snapshots 0 1 2 5 10 20` to keep "
                "them.")
        return None
    if base != ctx.key[0].partition("@")[0]:
        st.caption(f"The model picked in the sidebar has no snapshots; these are {base}'s.")
    classes, names, default_blocks = snapshot_choices(get_model(base))  # every snapshot has the base's blocks
    default_classes = fig6_default_classes(classes)
    c1, c2 = st.columns([3, 2])
    epoch = c1.select_slider("Snapshot (epochs trained)", options=epochs, value=epochs[-1], key="tr_epoch")
    picked = c2.multiselect("Classes", classes, default=default_classes, key="tr_classes")
    sel = block_picker("Blocks for Fig. 6", names, default_blocks, "tr_blocks")
    if not sel:
        st.info("Choose at least one block.")
        return None
    request = ViewRequest(classes=unless_default(picked, default_classes) if picked else None,
                          blocks=unless_default(sel, default_blocks))
    if request != ViewRequest():  # the default request holds every snapshot (prepared); others compute the one shown
        request = replace(request, epoch=epoch)
    result = shown_result(ctx, SLUG, request)
    if result is None:
        return None
    shown = [p for p in result.panels if p.key in OVERVIEW]
    _show(shown)
    if not picked:  # the overview stands; a Fig. 6 needs a class
        st.info("Choose at least one class.")
        return result
    _show([p for p in result.panels if p.key.endswith(f"_epoch_{epoch:03d}")], start=len(shown))
    takeaway(result.takeaway)
    return result


def _show(panels: list, start: int = 0) -> None:
    """Show panels in order (the emergence table as a table), their download keys numbered from `start`."""
    for i, p in enumerate(panels, start):
        if p.key == "training_emergence_table":
            st.markdown(f"**{p.title}**")
            # human names, 2 significant digits; in lecture mode a static table at full height (no inner scroll)
            show_table(emergence_words(p.data), hide_index=True, width="stretch")
            st.caption(p.caption)
            download_menu(p, f"tr_{i}")
        else:
            show_panel(p, f"tr_{i}", figure=for_screen(p.figure))
