"""Where SE sits (the paper's Fig. 2 and 3), drawn from the model's own shapes: one forward pass with hooks on the
unit that holds an SE block (a residual unit, an Inception module, or any other block) records its layers in the
order they ran, with their input and output shapes; the figure draws that unit with the SE block in it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import plotly.graph_objects as go
import torch
from PIL import Image
from torch import nn

from sevis.core.recorder import SEBlock, find_se_blocks
from sevis.figures.plots import apply_layout
from sevis.models.zoo import LoadedModel

SHORTCUT_NAMES = ("downsample", "shortcut", "skip")


@dataclass
class Layer:
    """One layer of the unit as it ran: where (path inside the unit), what, and its shapes."""

    path: str
    text: str  # e.g. "3×3 conv 16→16, stride 2"
    out_shape: tuple[int, ...]


@dataclass
class UnitShapes:
    """The unit around one SE block, read from a forward pass."""

    kind: str  # "residual", "inception" or "chain"
    block: SEBlock
    unit_path: str
    unit_class: str
    input_shape: tuple[int, ...]  # C×H×W
    output_shape: tuple[int, ...]
    branches: list[list[Layer]]  # the layers before SE: one list (residual, chain) or one per Inception branch
    shortcut: list[Layer] = field(default_factory=list)  # residual units: the projection (empty: identity)
    after: list[Layer] = field(default_factory=list)  # layers after SE inside the unit (e.g. the final ReLU)
    integration: str = "standard"  # sevis ResNets: where SE sits (standard, pre, post, identity, 3x3)
    se_input: tuple[int, ...] = ()  # U, C×H×W: what the SE block squeezes


def _shape(t) -> tuple[int, ...]:
    return tuple(int(v) for v in t.shape[1:]) if isinstance(t, torch.Tensor) else ()


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(v) for v in shape)


def _describe(m: nn.Module) -> str | None:
    """Return a short text for the layers worth drawing (convolutions, linear layers, pools), None for the rest."""
    if isinstance(m, nn.Conv2d):
        k = "×".join(str(v) for v in m.kernel_size)
        text = f"{k} conv {m.in_channels}→{m.out_channels}"
        if m.groups > 1:
            text += ", depthwise" if m.groups == m.in_channels else f", {m.groups} groups"
        if max(m.stride) > 1:
            text += f", stride {max(m.stride)}"
        return text
    if isinstance(m, nn.Linear):
        return f"linear {m.in_features}→{m.out_features}"
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        s = m.stride if isinstance(m.stride, int) else m.stride[0]
        return f"{k}×{k} {'avg' if isinstance(m, nn.AvgPool2d) else 'max'} pool" + (f", stride {s}" if s > 1 else "")
    return None


def _unit_path(model: nn.Module, se_path: str) -> str:
    """Return the path of the module that holds the SE block (containers such as Sequential are skipped)."""
    parts = se_path.split(".")[:-1]
    while parts and isinstance(model.get_submodule(".".join(parts)), (nn.Sequential, nn.ModuleList)):
        parts = parts[:-1]
    return ".".join(parts)


@torch.inference_mode()
def unit_shapes(loaded: LoadedModel, block: str | None = None, prefer: str | None = None) -> UnitShapes | None:
    """Return the unit around SE block `block` (default: the first; with prefer="inception", the first that is an
    Inception module with parallel branches), read from one forward pass of a blank image; None without SE."""
    found = find_se_blocks(loaded.model)
    if not found:
        return None
    candidates = [b for b, _ in found if block is None or b.name == block]
    if prefer == "inception":
        candidates = [b for b in candidates
                      if _is_inception(loaded.model.get_submodule(_unit_path(loaded.model, b.path)))]
    if not candidates:
        return None
    b = candidates[0]
    path = _unit_path(loaded.model, b.path)
    unit = loaded.model.get_submodule(path) if path else loaded.model
    ran: list[tuple[str, nn.Module, tuple, tuple]] = []
    hooks = []
    for name, m in unit.named_modules():
        if name and not list(m.children()):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: ran.append((name, mod, _shape(inp[0]) if inp else (), _shape(out)))))
    io: dict[str, tuple] = {}
    hooks.append(unit.register_forward_hook(lambda mod, inp, out: io.update(i=_shape(inp[0]), o=_shape(out))))
    se_module = loaded.model.get_submodule(b.path)
    hooks.append(se_module.register_forward_hook(
        lambda mod, inp, out: None if "u" in io else io.update(u=_shape(inp[0]))))  # None: keep the output
    try:
        size = loaded.input_size if isinstance(loaded.input_size, int) else 224
        loaded.model(torch.stack([loaded.preprocess(Image.new("RGB", (size, size), (128, 128, 128)))]))
    finally:
        for h in hooks:
            h.remove()
    se_rel = b.path[len(path) + 1:] if path else b.path
    layers, shortcut, after, seen_se = [], [], [], False
    branches: dict[str, list[Layer]] = {}
    inception = _is_inception(unit)
    residual = not inception and any(hasattr(unit, n) for n in SHORTCUT_NAMES)  # SE's place: unit.integration
    for name, mod, _, out in ran:
        if name == se_rel or name.startswith(se_rel + "."):
            seen_se = True
            continue
        text = _describe(mod)
        if text is None and not (seen_se and isinstance(mod, (nn.ReLU, nn.SiLU))):
            continue
        layer = Layer(name, text or type(mod).__name__, out)
        if name.split(".")[0] in SHORTCUT_NAMES:
            shortcut.append(layer)
        elif seen_se and (text is None or not residual):
            if not (residual and "." in name):  # a residual unit's own final activation, not one in its branch
                after.append(layer)
        elif inception:
            branches.setdefault(".".join(name.split(".")[:2]), []).append(layer)
        else:
            layers.append(layer)
    kind = "inception" if inception else "residual" if residual else "chain"
    return UnitShapes(kind, b, path, type(unit).__name__, io.get("i", ()), io.get("o", ()),
                      list(branches.values()) if inception else [layers], shortcut, after,
                      str(getattr(unit, "integration", "standard")), io.get("u", ()))


def _is_inception(unit: nn.Module) -> bool:
    branches = getattr(unit, "branches", None)
    return isinstance(branches, nn.ModuleList) and len(branches) > 1


# ---------------------------------------------------------------------------------------- drawing
BOX, SE_BOX, IO_BOX = "#e8eef7", "#ffe0b3", "#f2f2f2"  # fills: layers, the SE block, input/output
ROW = 1.0  # vertical distance between boxes (data units)


def _box(fig: go.Figure, x: float, y: float, text: str, fill: str = BOX, width: int = 300) -> None:
    fig.add_annotation(x=x, y=y, text=text, showarrow=False, bgcolor=fill, bordercolor="#555", borderwidth=1,
                       borderpad=6, width=width, font=dict(size=14, color="#111"))


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float) -> None:
    """An arrow from (x0, y0) to (x1, y1), ending at the box edges rather than at their centres."""
    d = 0.0 if y0 == y1 else (0.28 if y0 > y1 else -0.28)
    fig.add_annotation(x=x1, y=y1 + d, ax=x0, ay=y0 - d, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=1.6, arrowcolor="#444")


def se_steps(u: UnitShapes) -> list[str]:
    """Return the SE block's own steps as box texts, with this block's widths."""
    c = u.block.channels
    h = u.block.squeeze_channels
    hidden = f"W1: FC {c}→{h}, then δ = ReLU" if h else "W1: FC (width not readable), then δ"
    return [f"squeeze: global average pool → z ({c})", hidden,
            f"W2: FC {h or '…'}→{c}, then σ → s ({c})", f"scale: U·s ({c} channels)"]


def unit_figure(u: UnitShapes) -> go.Figure:
    """Draw the unit around the SE block, top (input) to bottom (output), with this model's shapes: a residual
    unit with its shortcut beside the branch (the paper's Fig. 3), an Inception module's branches side by side
    into one concatenation (Fig. 2), or the chain of layers of any other block."""
    fig = go.Figure()
    y = 0.0
    _box(fig, 0.4, y, f"<b>input</b> {_shape_text(u.input_shape)}", IO_BOX)
    top = y
    if u.kind == "inception":
        n = len(u.branches)
        depth = max((len(b) for b in u.branches), default=0)
        width = max(110, int(0.8 / max(n, 1) * 780) - 14)
        for i, branch in enumerate(u.branches):
            x = (i + 0.5) / n * 0.8
            for j, layer in enumerate(branch):
                _box(fig, x, y - ROW * (j + 1), layer.text, BOX, width)
                _arrow(fig, x if j else 0.4, y - ROW * j, x, y - ROW * (j + 1))
            if len(branch) < depth:  # a short branch runs straight down to the last row, then into the concat
                fig.add_shape(type="line", x0=x, x1=x, y0=y - ROW * len(branch) - 0.3, y1=y - ROW * depth,
                              line=dict(color="#444", width=1.6))
            _arrow(fig, x, y - ROW * depth, 0.4, y - ROW * (depth + 1))
        y -= ROW * (depth + 1)
        _box(fig, 0.4, y, f"concatenate {n} branches → {u.block.channels} channels", BOX, 380)
        y = _draw_se(fig, u, y)
    else:
        y = _draw_residual_or_chain(fig, u, y, top)
    for layer in u.after:
        _arrow(fig, 0.4, y, 0.4, y - ROW)
        y -= ROW
        _box(fig, 0.4, y, layer.text, BOX, 200)
    _arrow(fig, 0.4, y, 0.4, y - ROW)
    y -= ROW
    _box(fig, 0.4, y, f"<b>output</b> {_shape_text(u.output_shape)}", IO_BOX)
    fig.update_xaxes(visible=False, range=[0, 1.02])
    fig.update_yaxes(visible=False, range=[y - 0.6, top + 0.6])
    what = {"residual": "residual unit", "inception": "Inception module", "chain": "block"}[u.kind]
    where = "" if u.integration == "standard" else f" (this model places SE '{u.integration}')"
    title = f"Where SE sits: {u.block.name} in its {what}{where}"
    return apply_layout(fig, title, height=int(120 + 62 * (top - y + 1)), showlegend=False,
                        margin=dict(l=10, r=10, t=60, b=10))


def _draw_se(fig: go.Figure, u: UnitShapes, y: float) -> float:
    """Draw the SE block's steps below y, framed and named; return the new y."""
    start = y
    for text in se_steps(u):
        _arrow(fig, 0.4, y, 0.4, y - ROW)
        y -= ROW
        _box(fig, 0.4, y, text, SE_BOX)
    fig.add_shape(type="rect", x0=0.12, x1=0.68, y0=start - ROW * 0.5, y1=y - ROW * 0.5,
                  line=dict(color="#e67e00", width=2, dash="dot"))
    fig.add_annotation(x=0.11, y=(start + y) / 2 - ROW / 2, text=f"<b>SE block</b><br>{u.block.name}", showarrow=False,
                       xanchor="right", font=dict(size=14, color="#b35900"))
    return y


def _draw_residual_or_chain(fig: go.Figure, u: UnitShapes, y: float, top: float) -> float:
    """Draw a residual unit (the branch, SE where this model places it, the shortcut and the addition) or a chain
    of layers with SE in it, below y; return the new y."""
    def layers(y: float) -> float:
        for layer in u.branches[0]:
            _arrow(fig, 0.4, y, 0.4, y - ROW)
            y -= ROW
            _box(fig, 0.4, y, f"{layer.text} → {_shape_text(layer.out_shape)}")
        return y

    def add(y: float) -> float:
        _arrow(fig, 0.4, y, 0.4, y - ROW)
        y -= ROW
        _box(fig, 0.4, y, "⊕ add the shortcut", BOX, 200)
        return y

    if u.kind != "residual":
        return _draw_se(fig, u, layers(y))
    order = {"pre": (_draw_se, layers, add), "post": (layers, add, _draw_se)}.get(
        u.integration, (layers, _draw_se, add))
    for step in order:
        y = step(fig, u, y) if step is _draw_se else step(y)
    short = ", ".join(l.text for l in u.shortcut) or "identity"
    if u.integration == "identity":
        short += ", then SE on this path"
    mid = (top + y) / 2
    _box(fig, 0.86, mid, f"shortcut: {short}", IO_BOX, 230)
    line = dict(color="#444", width=1.6)
    fig.add_shape(type="line", x0=0.58, x1=0.86, y0=top, y1=top, line=line)
    fig.add_shape(type="line", x0=0.86, x1=0.86, y0=top, y1=mid + 0.3, line=line)
    fig.add_shape(type="line", x0=0.86, x1=0.86, y0=mid - 0.3, y1=y, line=line)
    _arrow(fig, 0.86, y, 0.53, y)
    return y


def unit_sentences(u: UnitShapes) -> list[str]:
    """Return two sentences on where SE sits in this unit, computed from its shapes."""
    c, h = u.block.channels, u.block.squeeze_channels
    ratio = f" (C/r: an effective r of {c / h:.3g})" if h else ""
    if u.kind == "inception":
        first = (f"In this model SE takes an Inception module's output: its {len(u.branches)} branches are "
                 f"concatenated into {c} channels, and SE rescales that concatenation before the next module.")
    elif u.kind == "residual":
        short = "an identity shortcut" if not u.shortcut else "a projection shortcut (" + ", ".join(
            l.text for l in u.shortcut) + ")"
        first = (f"In {u.block.name} SE sits on the residual branch, after its {len(u.branches[0])} layers and "
                 f"before the addition of {short}: it rescales the branch's {c} channels, never the shortcut."
                 if u.integration == "standard" else
                 f"In {u.block.name} SE sits '{u.integration}' (an ablation of the paper's placement), on {c} "
                 "channels.")
    else:
        n = len(u.branches[0])
        first = (f"In {u.block.name} SE follows {n} layer{'s' if n != 1 else ''} of its block and rescales "
                 f"{'their' if n != 1 else 'its'} {c} channels.")
    second = (f"It squeezes U ({_shape_text(u.se_input) or f'{c} channels'}) down to {c} numbers, passes them through "
              f"a bottleneck of {h or 'unknown'} units{ratio} and returns one factor per channel.")
    return [first, second]
