"""Feature maps laid over the input image (CAM-style): where in the image a channel responds, before and after the SE
block scales it; and the model's input back in pixel space (what the network saw, for overlays and galleries)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from PIL import Image
from plotly.subplots import make_subplots

from sevis.analysis.anatomy import BlockAnatomy
from sevis.analysis.images import image_stem
from sevis.figures.plots import Panel, apply_layout
from sevis.models.zoo import LoadedModel

# Transparent where a channel is silent, then yellow to red: the image shows through wherever nothing responds.
OVERLAY_SCALE = [[0.0, "rgba(255,255,0,0)"], [0.15, "rgba(255,230,0,0.15)"], [0.5, "rgba(255,140,0,0.55)"],
                 [1.0, "rgba(200,0,0,0.85)"]]


def input_pixels(loaded: LoadedModel, x: torch.Tensor) -> np.ndarray:
    """Return preprocessed inputs `x` (C×H×W or N×C×H×W) back in pixel space: uint8, H×W×3 (or N×H×W×3)."""
    x = x.detach().float().cpu()
    batched = x.ndim == 4
    x = x if batched else x[None]
    if x.shape[1] == 1:
        mean, std = loaded.normalisation
        mean, std = torch.tensor(float(mean)), torch.tensor(float(std))
    else:  # ImageNet models: the usual channel statistics unless the model says otherwise
        pp = loaded.card.get("preprocessing") or {}
        mean = torch.tensor(pp.get("mean", (0.485, 0.456, 0.406)), dtype=torch.float32)[:, None, None]
        std = torch.tensor(pp.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32)[:, None, None]
    pixels = (x * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return pixels if batched else pixels[0]


def model_input_image(loaded: LoadedModel, image: Image.Image) -> Image.Image:
    """Return the image exactly as the model receives it (after its preprocessing), back in pixel space."""
    x = loaded.preprocess(image).float()
    rgb = input_pixels(loaded, x)
    return Image.fromarray(rgb[..., 0], "L") if x.shape[0] == 1 else Image.fromarray(rgb, "RGB")


def upsample(fmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return the H×W feature map resized (bilinear) to `size` (height, width), as the CAM literature does."""
    t = torch.as_tensor(np.asarray(fmap, np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay_figure(base: np.ndarray, columns: Sequence[str], before: Sequence[np.ndarray],
                   after: Sequence[np.ndarray], title: str, subtitle: str | None = None,
                   rows: tuple[str, str] = ("before scaling: U", "after scaling: U·s")) -> go.Figure:
    """Two rows of the input image (base: H×W×3 uint8) with a feature map laid over it per column: `before` (U)
    on top, `after` (U·s) below. Only positive activations are drawn (ReLU'd, as CAMs are); before and after
    share one colour scale per column, so a channel that s scales down fades in the second row."""
    h, w = base.shape[:2]
    n = len(columns)
    fig = make_subplots(rows=2, cols=n, row_titles=list(rows), horizontal_spacing=0.015, vertical_spacing=0.04,
                        subplot_titles=list(columns) + [""] * n)
    for c in range(n):
        up_b = np.maximum(upsample(before[c], (h, w)), 0)
        up_a = np.maximum(upsample(after[c], (h, w)), 0)
        top = float(max(up_b.max(), up_a.max())) or 1.0
        for r, m in enumerate((up_b, up_a)):
            fig.add_trace(go.Image(z=base, hoverinfo="skip"), row=r + 1, col=c + 1)
            fig.add_trace(go.Heatmap(z=m, zmin=0, zmax=top, colorscale=OVERLAY_SCALE, showscale=False,
                                     hovertemplate=f"{columns[c]}<br>y %{{y}}, x %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                          row=r + 1, col=c + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    per = max(150, min(230, 900 // max(n, 1)))
    return apply_layout(fig, title, height=150 + 2 * per, subtitle=subtitle, margin=dict(l=20, r=40, t=100, b=10))


def overlay_panel(loaded: LoadedModel, a: BlockAnatomy, image, k: int = 2) -> Panel:
    """Return U and U·s laid over the model's view of the image: the mean over channels, the k highest-s and the k
    lowest-s channels (CAM-style), one colour scale per column, as a Panel (`image`: the NamedImage the anatomy
    was computed for)."""
    base = np.asarray(model_input_image(loaded, image.image).convert("RGB"))
    high, low = a.extremes(k)
    cols = ["mean over all channels"] + [f"ch {c} (s = {a.s[c]:.2f})" for c in high + low]
    before = [np.abs(a.u).mean(0)] + [a.u[c] for c in high + low]
    after = [np.abs(a.scaled).mean(0)] + [a.scaled[c] for c in high + low]
    title = f"Where {a.block.name} responds on {image.name}, before and after scaling"
    fig = overlay_figure(base, cols, before, after, title,
                         subtitle=f"left: mean |U| over channels; then the {len(high)} highest-s and {len(low)} "
                                  "lowest-s channels")
    data = pd.DataFrame({"column": cols, "channel": [None] + high + low,
                         "s": [None] + [float(a.s[c]) for c in high + low],
                         "mean_before": [float(np.maximum(m, 0).mean()) for m in before],
                         "mean_after": [float(np.maximum(m, 0).mean()) for m in after]})
    return Panel(f"{image_stem(image.name)}_{a.block.name}_overlay", title,
                 "The block's feature maps, enlarged to the image and laid over it (positive activations; yellow to "
                 "red = stronger): top row before scaling (U), bottom row after (U·s), on one scale per column, so a "
                 "channel that s mutes fades in the bottom row.", fig, data)
