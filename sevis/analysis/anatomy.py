"""What one SE block computes for one image: U, z = squeeze(U), δ(W1·z), s and U·s, read through the recorder
(capture_internals), for every SE implementation sevis knows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sevis.core.recorder import ExcitationRecorder, SEBlock, find_se_blocks
from sevis.errors import SevisError
from sevis.models.zoo import LoadedModel

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


def find_block(loaded: LoadedModel, name: str) -> SEBlock:
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
    b = find_block(loaded, block)
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


def chain_text(a: BlockAnatomy, gate: str = "σ") -> str:
    """Return the block's computation as one line with shapes, for the view's header (`gate`: the symbol of
    the block's gate, sevis.core.formula.block_formula)."""
    sh = a.shapes()
    parts = [f"U ({sh['U']})", f"z = squeeze(U) ({sh['z']})"]
    if "δ(W1·z)" in sh:
        parts.append(f"δ(W1·z) ({sh['δ(W1·z)']})")
    parts += [f"s = {gate}(W2·…) ({sh['s']})", f"U·s ({sh['U·s']})", f"prediction: {a.topk[0][0]} ({a.topk[0][1]:.1%})"]
    return " → ".join(parts)
