"""The Tour's own figures (sevis.views.tour): one SE block step by step, a knock-out that flips a prediction, a
channel's class means and its most exciting images, SE's parameters per stage. Drawing only; the numbers and
sentences come from the view."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sevis.figures.plots import ORDERED, PALETTE, apply_layout, short_labels


def block_steps_figure(rows: Sequence[tuple[str, np.ndarray, str]], order: np.ndarray, energy_u: np.ndarray,
                       title: str) -> go.Figure:
    """One bar row per step of the SE computation (title, values, x-axis title); the energy row ("6. …") draws U's
    energy in grey behind U·s's. Channel rows arrive ordered by s (`order`: their channel numbers, for the hover),
    `energy_u` in the same order."""
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=[r[0] for r in rows], vertical_spacing=0.12)
    order_axis = "channels ordered by s"
    for i, (name, values, axis) in enumerate(rows):
        x = np.arange(len(values))
        if name.startswith("6."):
            fig.add_trace(go.Bar(x=x, y=energy_u, marker_color="#c8c8c8", showlegend=False, meta=ORDERED,
                                 hovertemplate="U: %{y:.3f}<extra></extra>"), row=i + 1, col=1)
        by_channel = axis == order_axis
        fig.add_trace(go.Bar(x=x, y=values, marker_color=PALETTE[i % len(PALETTE)], showlegend=False, meta=ORDERED,
                             customdata=order if by_channel else None,
                             hovertemplate=("channel %{customdata}: %{y:.3f}<extra></extra>" if by_channel
                                            else "unit %{x}: %{y:.3f}<extra></extra>")), row=i + 1, col=1)
        fig.update_xaxes(title_text=axis, row=i + 1, col=1)
    return apply_layout(fig, title, height=140 + 170 * len(rows), barmode="overlay", bargap=0.05)


def flip_figure(pixels: np.ndarray, labels: Sequence[str], before: np.ndarray, after: np.ndarray, knocked: str,
                title: str) -> go.Figure:
    """The searched image as the model sees it beside its class probabilities intact and knocked out."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], horizontal_spacing=0.12,
                        subplot_titles=["the image as the model sees it", "class probabilities"])
    fig.add_trace(go.Image(z=pixels, hoverinfo="skip"), row=1, col=1)
    for name, probs, color in (("intact", before, PALETTE[0]), (f"{knocked} knocked out", after, PALETTE[3])):
        fig.add_trace(go.Bar(y=list(labels), x=probs, orientation="h", name=name, marker_color=color,
                             hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=2)
    fig.update_xaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    return apply_layout(fig, title, height=380, barmode="group")


def class_means_figure(names: Sequence[str], means: np.ndarray, top: str, title: str) -> go.Figure:
    """Bars of one channel's mean s per class (highest first), the class it prefers in red."""
    bars = go.Figure(go.Bar(x=short_labels(list(names)), y=means,
                            marker_color=[PALETTE[3] if n == top else PALETTE[0] for n in names],
                            hovertemplate="%{x}: mean s %{y:.3f}<extra></extra>"))
    bars.update_yaxes(title_text="mean s over the class's images")
    return apply_layout(bars, title, height=380, showlegend=False)


def gallery_figure(pixels: Sequence[np.ndarray], labels: Sequence[str], s_values: Sequence[float],
                   title: str) -> go.Figure:
    """A row of images, each titled with its class and s."""
    n = len(pixels)
    gallery = make_subplots(rows=1, cols=max(n, 1), horizontal_spacing=0.01,
                            subplot_titles=[f"{short_labels([l], 12)[0]}<br>s = {v:.2f}"
                                            for l, v in zip(labels, s_values)])
    for i, z in enumerate(pixels):
        gallery.add_trace(go.Image(z=z, hoverinfo="skip"), row=1, col=i + 1)
    gallery.update_xaxes(showticklabels=False)
    gallery.update_yaxes(showticklabels=False)
    return apply_layout(gallery, title, height=300, margin=dict(l=10, r=10, t=110, b=10))


def stage_cost_figure(stages: Sequence[str], parameters: Sequence[int], shares: Sequence[float]) -> go.Figure:
    """Bars of SE's parameters per stage, each with its share of all SE parameters written on it."""
    fig = go.Figure(go.Bar(x=list(stages), y=list(parameters), marker_color=PALETTE[1],
                           text=[f"{v:.0%}" for v in shares], textposition="outside",
                           hovertemplate="%{x}: %{y:,} parameters<extra></extra>"))
    fig.update_yaxes(title_text="SE parameters")
    return apply_layout(fig, "SE's extra parameters per stage (share of all SE parameters on the bars)", height=380,
                        showlegend=False)


def emergence_figure(matrix: pd.DataFrame, row_labels: Sequence[str], title: str) -> go.Figure:
    """A heat map of class specificity: one row per training snapshot (`row_labels`, top: the earliest), one column
    per SE block in depth order, the value written in each cell; one fixed 0-1 scale, so snapshots compare."""
    z = matrix.to_numpy(np.float64)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(matrix.columns), y=list(row_labels), zmin=0.0, zmax=1.0, colorscale="Viridis",
        texttemplate="%{z:.2f}", textfont=dict(size=14),  # read from the back of a hall (lecture: ≥ 14 px)
        colorbar=dict(title=dict(text="class specificity", side="right"), thickness=12),
        hovertemplate="%{y} · %{x}<br>class specificity %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", title_text="training snapshot")
    fig.update_xaxes(type="category", tickangle=-45, title_text="SE block, shallow to deep")
    return apply_layout(fig, title, height=170 + 34 * len(row_labels), showlegend=False)
