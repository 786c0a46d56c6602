"""The reader's screen: phones get figures whose subplot grids are stacked in one column (plots.stacked), so a
grid of heat maps or line plots (Fig. 6, Fig. 7, the depth profile) stays readable at 390 px."""
from __future__ import annotations

import re

import plotly.graph_objects as go
import streamlit as st

from sevis.figures.plots import stacked

# Phone browsers say so in their User-Agent ("Mobile" on iOS and Android phones; Android tablets leave it out).
PHONE_AGENT = re.compile(r"Mobi|iPhone|iPod|Windows Phone", re.IGNORECASE)


def phone() -> bool:
    """Return True when this session's browser is a phone (its User-Agent header); False when unknown (tests)."""
    try:
        agent = st.context.headers.get("User-Agent") or ""
    except Exception:  # no request context (AppTest, a bare script run)
        return False
    return bool(PHONE_AGENT.search(agent))


def for_screen(fig: go.Figure) -> go.Figure:
    """Return `fig` for this reader's screen: its panels stacked in one column on a phone, else `fig` itself."""
    return stacked(fig) if phone() else fig
