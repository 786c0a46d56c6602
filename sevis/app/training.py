"""Training view: how the excitations emerged over training, from the snapshots embedded@<epoch>."""
from __future__ import annotations

import streamlit as st

from sevis import SevisError
from sevis.names import DEFAULT_SPEC, EMBEDDED, fig6_default_classes, snapshot_epochs
from sevis.figures.plots import Panel
from sevis.analysis.reference import paper_blocks
from sevis.views.training import training_history, training_panels, training_takeaway

from sevis.app.common import Context, block_picker, download_menu, intro, show_panel, takeaway

from sevis.views.training import SLUG, TITLE


@st.cache_data(show_spinner=False, max_entries=4)
def get_history(base: str, epochs: tuple[int, ...]):
    """Return the snapshots of `base` measured over the reference set (keyed on the epochs there)."""
    bar = st.progress(0.0, text="Measuring every training snapshot over the reference set…")
    history = training_history(base, list(epochs), progress=lambda f: bar.progress(f, text=f"Snapshots: {f:.0%}"))
    bar.empty()
    return history


def _base(spec: str) -> str:
    """Return the embedded model whose snapshots to show: the picked one (or the one a snapshot belongs to)."""
    name = spec.partition("@")[0]
    return name if name in EMBEDDED and snapshot_epochs(name) else DEFAULT_SPEC


def render(ctx: Context) -> list[Panel]:
    """Show the training view; return its panels."""
    intro("How the excitations emerged while the default model trained, from the weights kept after chosen epochs "
          "(epoch 0 is the initialisation): accuracy, when each SE block becomes class-specific beyond an untrained "
          "copy of the network, and for one snapshot the paper's Fig. 6 and the depth profile.")
    base = _base(ctx.key[0])
    epochs = tuple(snapshot_epochs(base))
    if not epochs:
        st.info(f"{base} has no training snapshots. Train it with `sevis train --snapshots 0 1 2 5 10 20` to keep "
                "them.")
        return []
    if base != ctx.key[0].partition("@")[0]:
        st.caption(f"The model picked in the sidebar has no snapshots; these are {base}'s.")
    try:
        history = get_history(base, epochs)
    except SevisError as e:
        st.error(str(e))
        return []
    first = history.snapshots[-1]
    classes = list(first.stats.classes)
    names = list(first.stats.blocks)
    c1, c2 = st.columns([3, 2])
    epoch = c1.select_slider("Snapshot (epochs trained)", options=list(epochs), value=epochs[-1], key="tr_epoch")
    picked = c2.multiselect("Classes", classes, default=fig6_default_classes(classes), key="tr_classes")
    sel = block_picker("Blocks for Fig. 6", names, paper_blocks(history.blocks), "tr_blocks")
    if not sel:
        st.info("Choose at least one block.")
        return []
    panels = training_panels(history, epoch, picked, sel)
    for i, p in enumerate(panels):
        if p.key == "training_emergence_table":
            st.markdown(f"**{p.title}**")
            st.dataframe(p.data, hide_index=True, width="stretch")
            st.caption(p.caption)
            download_menu(p, f"tr_{i}")
        else:
            show_panel(p, f"tr_{i}")
    takeaway(training_takeaway(history))
    return panels
