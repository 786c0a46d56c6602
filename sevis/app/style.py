"""The page's style sheets (CSS): the page itself, lecture mode (a projector at 1280×800 or 1920×1080) and phones
(390 px wide). Captions are a dark grey at every size: Streamlit's own caption grey on white is below the 4.5:1
contrast that text needs to be read from the back of a lecture hall (WCAG AA)."""
from __future__ import annotations

# Text colours, with their contrast on white (tests/test_presenter.py computes it): the body's and the captions'.
TEXT = "#262730"  # Streamlit's body text, 15.1:1
CAPTION = "#464a55"  # 8.9:1; Streamlit's caption (rgba(49, 51, 63, 0.6) on white, about #83858c) is 3.7:1
BACKGROUND = "#ffffff"

PAGE_CSS = f"""<style>
[data-testid="stMainBlockContainer"] {{padding: 1.5rem 2rem 2rem 2rem; max-width: 100%;}}
[data-testid="stMainBlockContainer"] h2 {{padding-top: 0;}}
[data-testid="stSidebarHeader"] {{display: none;}}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p,
[data-testid="stImageCaption"], [data-testid="stWidgetLabel"] p {{color: {CAPTION} !important;}}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {{font-size: 0.95rem;}}
/* the grouped navigation: each group's label beside its pills, the groups wrap as a whole */
.st-key-nav [data-testid="stWidgetLabel"] p {{font-weight: 600; color: {TEXT} !important;}}
.st-key-nav [data-testid="stButtonGroup"] button {{min-height: 2rem; padding: 0.1rem 0.7rem;}}
/* phones: columns stack, the navigation's pills wrap, a chart wider than the screen scrolls sideways */
@media (max-width: 640px) {{
  [data-testid="stMainBlockContainer"] {{padding: 1rem 0.5rem 2rem 0.5rem;}}
  [data-testid="stElementContainer"]:has([data-testid="stPlotlyChart"]) {{max-width: 100%; overflow-x: auto;
    overflow-y: hidden;}}
  .st-key-nav [role="radiogroup"] {{flex-wrap: wrap; row-gap: 0.3rem;}}
  [data-testid="stHorizontalBlock"] {{flex-wrap: wrap;}}
  [data-testid="stColumn"] {{min-width: 100% !important;}}
  [data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {{font-size: 1rem;}}
}}
</style>"""

# Lecture mode: the navigation's pills without their group names (the gaps between groups keep them apart), just
# below the bar that holds the sidebar's arrow; larger body text and captions; tables that wrap instead of
# scrolling; the takeaway under the stage's figure in large type.
LECTURE_CSS = f"""<style>
[data-testid="stMainBlockContainer"] {{padding-top: 3.25rem;}}
.st-key-nav [data-testid="stWidgetLabel"] {{display: none;}}
.st-key-nav {{row-gap: 0.4rem; column-gap: 1.75rem;}}
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li {{font-size: 1.15rem;}}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {{color: {CAPTION} !important;
  font-size: 1.1rem;}}
[data-testid="stTable"] table {{table-layout: auto; width: 100%;}}
[data-testid="stTable"] td, [data-testid="stTable"] th {{white-space: normal !important; word-break: break-word;
  font-size: 1.05rem; vertical-align: top;}}
.st-key-lecture_stage [data-testid="stAlert"] p {{font-size: 1.3rem;}}
</style>"""


def relative_luminance(color: str) -> float:
    """Return the WCAG relative luminance (0 black … 1 white) of a #rrggbb colour."""
    channels = [int(color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str = BACKGROUND) -> float:
    """Return the WCAG contrast ratio (1 … 21) of two #rrggbb colours."""
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
