"""The "Inside a block" view: one SE block's computation for one image, as a chain with its shapes.

U (C×H×W) → z = squeeze(U) (C) → δ(W1·z) (C/r) → s = σ(W2·δ(W1·z)) (C) → U·s (C×H×W) → prediction.

Everything is read through the recorder (capture_internals), so it works for every SE implementation
sevis knows; where an implementation has no readable W1 the hidden layer is left out and a note says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import figures as F
from .errors import SevisError
from .recorder import ExcitationRecorder, SEBlock, find_se_blocks
from .zoo import LoadedModel

DEFAULT_K = 4


@dataclass
class BlockAnatomy:
    """What one SE block computed for one image (channels first; numpy)."""

    image: str
    block: SEBlock
    u: np.ndarray  # C×H×W, the block's input U
    z: np.ndarray  # C, the squeeze (input of W1)
    hidden: np.ndarray | None  # C/r, δ(W1·z); None where the implementation has no readable W1
    s: np.ndarray  # C, the excitation
    scaled: np.ndarray  # C×H×W, U·s
    output: np.ndarray  # C×H×W, what the SE module really returned (equals U·s)
    topk: list[tuple[str, float]]
    notes: list[str] = field(default_factory=list)

    def extremes(self, k: int = DEFAULT_K) -> tuple[list[int], list[int]]:
        """Return the k channels with the highest s (highest first) and the k with the lowest (lowest first)."""
        order = np.argsort(-self.s, kind="stable")
        k = max(1, min(k, len(self.s) // 2 or 1))
        return [int(c) for c in order[:k]], [int(c) for c in order[::-1][:k]]

    def shapes(self) -> dict[str, str]:
        """Return the shape of every quantity in words, e.g. {"U": "64×9×9", "z": "64", ...}."""
        c, h, w = self.u.shape
        out = {"U": f"{c}×{h}×{w}", "z": str(c)}
        if self.hidden is not None:
            out["δ(W1·z)"] = str(len(self.hidden))
        out.update({"s": str(c), "U·s": f"{c}×{h}×{w}"})
        return out


def _block(loaded: LoadedModel, name: str) -> SEBlock:
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    if not blocks:
        raise SevisError(f"{loaded.name} has no SE blocks, so there is no block to look inside")
    for b in blocks:
        if b.name == name:
            return b
    raise SevisError(f"no SE block named {name!r} in {loaded.name}; blocks: {', '.join(b.name for b in blocks)}")


def _channels_first(t: torch.Tensor, channels: int) -> torch.Tensor:
    """Return U as N×C×H×W (channels-last SE modules see N×H×W×C)."""
    if t.ndim == 4 and t.shape[1] != channels and t.shape[-1] == channels:
        return t.permute(0, 3, 1, 2)
    return t


@torch.inference_mode()
def block_anatomy(loaded: LoadedModel, image, block: str) -> BlockAnatomy:
    """Return what SE block `block` computed for `image` (a NamedImage): U, z, δ(W1·z), s, U·s and the
    prediction. Raises SevisError for an unknown block."""
    b = _block(loaded, block)
    x = torch.stack([loaded.preprocess(image.image)])
    with ExcitationRecorder(loaded.model, blocks=[b.name], capture_internals=True) as rec:
        logits = loaded.model(x)
    if b.name not in rec.inputs:
        raise SevisError(f"{b.name} did not run on this input, so there is nothing to show")
    probs = logits.float().softmax(1)[0]
    p, i = probs.topk(min(5, probs.numel()))
    topk = [(loaded.classes[j], float(v)) for v, j in zip(p.tolist(), i.tolist())]
    # A block that runs more than once per pass (shared modules): show its first call.
    u = _channels_first(rec.inputs[b.name][:1], b.channels)[0].double()
    out = _channels_first(rec.outputs[b.name][:1], b.channels)[0].double()
    s = rec.excitations[b.name][0].double()
    notes = []
    if b.name in rec.squeezes:
        z = rec.squeezes[b.name][0].double()
    else:
        z = u.mean((1, 2))
        notes.append(f"{b.kind}: the squeeze could not be read, so z is shown as the mean of U over H×W.")
    hidden = rec.hiddens[b.name][0].double().numpy() if b.name in rec.hiddens else None
    if hidden is None:
        notes.append(f"{b.kind} has no readable W1 (e.g. timm's EffectiveSEModule uses a single C→C layer), "
                     "so the hidden layer δ(W1·z) is not shown.")
    if u.ndim != 3:
        raise SevisError(f"{b.name} ({b.kind}) takes a {u.ndim + 1}-d input; only N×C×H×W feature maps can be shown")
    return BlockAnatomy(image.name, b, u.numpy(), z.numpy(), hidden, s.numpy(), (u * s[:, None, None]).numpy(),
                        out.numpy(), topk, notes)


def chain_text(a: BlockAnatomy) -> str:
    """Return the block's computation as one line with shapes, for the view's header."""
    sh = a.shapes()
    parts = [f"U ({sh['U']})", f"z = squeeze(U) ({sh['z']})"]
    if "δ(W1·z)" in sh:
        parts.append(f"δ(W1·z) ({sh['δ(W1·z)']})")
    parts += [f"s = σ(W2·…) ({sh['s']})", f"U·s ({sh['U·s']})", f"prediction: {a.topk[0][0]} ({a.topk[0][1]:.1%})"]
    return " → ".join(parts)


def anatomy_panels(a: BlockAnatomy, k: int = DEFAULT_K) -> list[F.Panel]:
    """Return the view's panels: the chain z → δ(W1·z) → s as bars, U and U·s for the k highest- and
    k lowest-s channels on one colour scale, and the prediction."""
    from .views import _stem
    name, stem = a.block.name, _stem(a.image)
    high, low = a.extremes(k)
    sh = a.shapes()
    rows = [pd.DataFrame({"quantity": "z", "label": f"z = squeeze(U): {sh['z']} values, one per channel",
                          "index": np.arange(len(a.z)), "value": a.z})]
    if a.hidden is not None:
        rows.append(pd.DataFrame({"quantity": "hidden", "label": f"δ(W1·z): {sh['δ(W1·z)']} hidden units (C/r)",
                                  "index": np.arange(len(a.hidden)), "value": a.hidden}))
    rows.append(pd.DataFrame({"quantity": "s", "label": f"s = σ(W2·δ(W1·z)): {sh['s']} values, the excitation",
                              "index": np.arange(len(a.s)), "value": a.s}))
    chain = pd.concat(rows, ignore_index=True)
    chain.insert(0, "block", name)
    chain.insert(0, "image", a.image)

    columns = [f"ch {c} · s={a.s[c]:.2f}" for c in high + low]
    maps = []
    for col, c in zip(columns, high + low):
        for row, arr in ((f"U ({sh['U']})", a.u[c]), (f"U·s ({sh['U·s']})", a.scaled[c])):
            yy, xx = np.indices(arr.shape)
            maps.append(pd.DataFrame({"row": row, "column": col, "channel": c, "s": float(a.s[c]),
                                      "group": "highest s" if c in high else "lowest s",
                                      "y": yy.ravel(), "x": xx.ravel(), "value": arr.ravel()}))
    maps = pd.concat(maps, ignore_index=True)
    zmax = float(np.abs(a.u[high + low]).max()) or 1.0
    top = F.topk_frame(a.topk, a.image)
    return [
        F.Panel(f"{stem}_{name}_chain", f"Inside {name} for {a.image}: z, δ(W1·z) and s",
                f"Top: the squeeze z, one average per channel of U. "
                + ("Middle: the C/r hidden units δ(W1·z) of the bottleneck. " if a.hidden is not None else "")
                + f"Bottom: the excitation s each channel is multiplied by. Green: the {len(high)} channels with "
                "the highest s, red: the lowest (shown as feature maps below). Click a bar to open that channel.",
                F.anatomy_chain(chain, name, high, low,
                                f"Inside {name} for {a.image}: squeeze z → hidden δ(W1·z) → excitation s"
                                if a.hidden is not None else f"Inside {name} for {a.image}: squeeze z → excitation s"),
                chain),
        F.Panel(f"{stem}_{name}_feature_maps", f"Feature maps U and U·s at {name} for {a.image}",
                f"Top row: the block's input U for the {len(high)} channels with the highest s (left) and the "
                f"{len(low)} with the lowest (right); bottom row: the same channels after scaling, U·s, on the same "
                "colour scale, so a channel that s suppresses fades to white.",
                F.feature_map_grid(maps, f"Feature maps before (U) and after (U·s) scaling at {name}: "
                                         f"{len(high)} highest-s and {len(low)} lowest-s channels",
                                   columns, list(dict.fromkeys(maps["row"])), zmax), maps),
        F.Panel(f"{stem}_{name}_prediction", f"Prediction for {a.image}",
                "The five most probable classes for this image, from the intact network.",
                F.topk_bar(top, f"Top-5 predictions for {a.image}"), top),
    ]


def anatomy_takeaway(a: BlockAnatomy, k: int = DEFAULT_K) -> str:
    """Return one sentence computed from the block's numbers: which channels pass, which are muted, how
    much of U's energy U·s keeps."""
    high, low = a.extremes(k)
    below = int((a.s < 0.5).sum())
    energy = float((a.scaled ** 2).sum() / max((a.u ** 2).sum(), 1e-12))
    return (f"At {a.block.name}, channel {high[0]} is passed on most (s = {a.s[high[0]]:.2f}) and channel "
            f"{low[0]} is scaled down most (s = {a.s[low[0]]:.2f}); {below} of {len(a.s)} channels get s < 0.5, "
            f"and U·s keeps {energy:.0%} of U's energy (sum of squares).")
