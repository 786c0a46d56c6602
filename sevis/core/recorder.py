"""ExcitationRecorder: capture the excitation vector s of every SE block on each forward pass.

The recorder hooks each block's *gate* (the sigmoid/hardsigmoid that produces s) rather than the block's
output: the gate output is s itself, for every SE implementation, and hooking it is independent of how
the block then applies s (x * s, in-place shortcut additions in timm, channels-last layouts).

Hooks are per recorder and per call: a ContextVar marks which recorders are active in the current thread
(or asyncio task), so one shared model can serve many sessions at once and each recorder only sees the
forward passes run inside its own `with` block.
"""
from __future__ import annotations

import contextvars
import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Union

import torch
from torch import nn

# Qualified class name -> attribute holding the gate module. Matched along the MRO, so subclasses count.
SE_GATE_ATTRIBUTES: dict[str, str] = {
    "sevis.core.se.SqueezeExcite": "gate",
    "timm.layers.squeeze_excite.SEModule": "gate",
    "timm.layers.squeeze_excite.EffectiveSEModule": "gate",
    "timm.layers.squeeze_excite.SqueezeExciteCl": "gate",
    "timm.models._efficientnet_blocks.SqueezeExcite": "gate",
    "timm.models.senet.SEModule": "sigmoid",
    "torchvision.ops.misc.SqueezeExcitation": "scale_activation",
    # Channel gates users compare with SE: ECA (a 1-D convolution across the pooled channels instead of SE's two
    # FC layers) and CBAM's channel attention (SE's MLP on average- and max-pooled features, summed).
    "timm.layers.eca.EcaModule": "gate",
    "timm.layers.eca.CecaModule": "gate",
    "timm.layers.cbam.ChannelAttn": "gate",
}

# Qualified class name -> (module whose input is z, the activation δ after W1 whose output is δ(W1·z), or
# None). The first module's input is exactly what W1 sees (the pooled U, for every implementation, including
# timm's add_maxpool and channels-last variants); EffectiveSEModule has a single C→C layer and no W1.
SE_INTERNAL_ATTRIBUTES: dict[str, tuple[str, str | None]] = {
    "sevis.core.se.SqueezeExcite": ("fc1", "act"),
    "timm.layers.squeeze_excite.SEModule": ("fc1", "act"),
    "timm.layers.squeeze_excite.EffectiveSEModule": ("fc", None),
    "timm.layers.squeeze_excite.SqueezeExciteCl": ("fc1", "act"),
    "timm.models._efficientnet_blocks.SqueezeExcite": ("conv_reduce", "act1"),
    "timm.models.senet.SEModule": ("fc1", "relu"),
    "torchvision.ops.misc.SqueezeExcitation": ("fc1", "activation"),
    "timm.layers.eca.EcaModule": ("conv", None),  # its 1-D convolution sees z as N×1×C; there is no W1
    # CecaModule pads z circularly before its convolution, and CBAM's fc1 runs twice per pass: z is not read there.
}

_RESNET_PATH = re.compile(r"^layer(\d+)\.(\d+)\.")
_FIRST_INT = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")

# Recorders active in the current thread / task. A tuple so nested recorders both see the pass.
_ACTIVE: contextvars.ContextVar[tuple["ExcitationRecorder", ...]] = contextvars.ContextVar("sevis_active", default=())



@dataclass(frozen=True)
class SetChannels:
    """An override that sets only some channels of s (channel index -> value) and leaves the rest as the
    block computed them, image by image: a one-channel knock-out is SetChannels({7: 0.0})."""

    values: Mapping[int, float]


Override = Union[Literal["identity"], torch.Tensor, float, SetChannels]


@dataclass(frozen=True)
class SEBlock:
    """One SE block found in a model."""

    name: str  # the paper's SE_stage_block where the model is ResNet-shaped, else the module path
    index: int  # depth order, 0-based
    stage: int | None  # the paper's stage (2-5) for ResNets; the first index in the module path otherwise
    channels: int  # C, the length of s
    path: str  # module path of the SE module
    gate_path: str  # module path of the gate whose output is s
    kind: str  # the SE implementation's class name
    squeeze_channels: int | None  # hidden width C/r of the bottleneck, when it can be read off
    parameters: int  # parameters of the SE module


def _gate_attribute(module: nn.Module) -> str | None:
    for cls in type(module).__mro__:
        attr = SE_GATE_ATTRIBUTES.get(f"{cls.__module__}.{cls.__qualname__}")
        if attr is not None:
            return attr
    return None


def _internal_attributes(module: nn.Module) -> tuple[str | None, str | None]:
    for cls in type(module).__mro__:
        attrs = SE_INTERNAL_ATTRIBUTES.get(f"{cls.__module__}.{cls.__qualname__}")
        if attrs is not None:
            return attrs
    return None, None


def se_internals(module: nn.Module) -> tuple[nn.Module | None, nn.Module | None]:
    """Return (the layer whose input is z, the activation whose output is δ(W1·z)) of an SE module; None
    for what this implementation does not have or sevis cannot read."""
    z_attr, hidden_attr = _internal_attributes(module)
    z_mod = getattr(module, z_attr, None) if z_attr else None
    hidden_mod = getattr(module, hidden_attr, None) if hidden_attr else None
    return (z_mod if isinstance(z_mod, nn.Module) else None,
            hidden_mod if isinstance(hidden_mod, nn.Module) else None)


def _linear_widths(module: nn.Module) -> tuple[int | None, int | None]:
    """Return (C, C/r) read off the first conv/linear layer of an SE module."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels, m.out_channels
        if isinstance(m, nn.Linear):
            return m.in_features, m.out_features
    return None, None


def _channels_before(model: nn.Module, path: str) -> int | None:
    """Return C for a gate module that does not store it (ECA): the width of the last layer its parent registers
    before it (timm's blocks register conv/bn, then the attention module on their output)."""
    parent_path, _, name = path.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
    except AttributeError:
        return None
    width = None
    for child_name, child in parent.named_children():
        if child_name == name:
            return width
        width = getattr(child, "num_features", None) or getattr(child, "out_channels", None) or width
    return None


def _find_se_blocks_uncached(model: nn.Module) -> list[tuple[SEBlock, nn.Module]]:
    found = []
    for path, module in model.named_modules():
        attr = _gate_attribute(module)
        if attr is None:
            continue
        gate = getattr(module, attr, None)
        if not isinstance(gate, nn.Module):
            continue
        found.append((path, attr, module, gate))
    resnet_shaped = bool(found) and all(_RESNET_PATH.match(p + ".") for p, *_ in found)
    blocks = []
    for index, (path, attr, module, gate) in enumerate(found):
        channels, hidden = _linear_widths(module)
        if channels is None:
            channels = _channels_before(model, path)
        if resnet_shaped:
            layer, blk = (int(g) for g in _RESNET_PATH.match(path + ".").groups())
            # ResNet layer1..layer4 are the paper's stages 2..5; blocks count from 1.
            name, stage = f"SE_{layer + 1}_{blk + 1}", layer + 1
        else:
            m = _FIRST_INT.search(path)
            name, stage = path, (int(m.group(1)) if m else None)
        blocks.append((SEBlock(
            name=name, index=index, stage=stage, channels=channels or 0, path=path,
            gate_path=f"{path}.{attr}", kind=type(module).__name__, squeeze_channels=hidden,
            parameters=sum(p.numel() for p in module.parameters()),
        ), gate))
    return blocks


# ------------------------------------------------------------------ discovery cache
# Walking every module of a model costs ~0.5-2 ms (313 modules in SE-ResNet-50), as much as a whole forward
# pass of the small embedded model, and the app builds a recorder for every upload. So the blocks found are
# cached per model and reused while the model's structure is unchanged, which is checked cheaply:
# - any submodule registration anywhere (attribute assignment, add_module, Sequential/ModuleList append)
#   bumps a global generation counter through torch's global module-registration hook;
# - every edge on the path from the model to each cached gate must still hold (catches del / direct
#   _modules edits, which bypass the hook);
# - SE_GATE_ATTRIBUTES must be unchanged (registering a new SE class invalidates the cache).
_GENERATION = [0]


def _bump_generation(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
    _GENERATION[0] += 1
    return None  # never replaces the submodule being registered


torch.nn.modules.module.register_module_module_registration_hook(_bump_generation)

_FOUND_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _gate_edges(model: nn.Module, found: list[tuple[SEBlock, nn.Module]]) -> tuple | None:
    """Return the edges from `model` to every gate as three parallel tuples (parent._modules, key, child),
    or None if a gate is not a registered submodule. Parents' _modules dicts are kept, not the parents, so
    the cache holds no reference to the model (its weak key)."""
    edges: dict[tuple[int, str], tuple] = {}
    for block, gate in found:
        parent = model
        for key in block.gate_path.split("."):
            child = parent._modules.get(key)
            if child is None:
                return None
            edges.setdefault((id(parent), key), (parent._modules, key, child))
            parent = child
        if parent is not gate:
            return None
    dicts, keys, children = zip(*edges.values()) if edges else ((), (), ())
    return tuple(dicts), tuple(keys), list(children)


def find_se_blocks(model: nn.Module) -> list[tuple[SEBlock, nn.Module]]:
    """Return every SE block of `model` in depth order, each with its gate module."""
    key = (_GENERATION[0], tuple(SE_GATE_ATTRIBUTES.items()))
    try:
        cached = _FOUND_CACHE.get(model)
    except TypeError:  # an unhashable / non-weakrefable module: no caching
        cached = None
    # list == list compares identity first, and modules have no __eq__: this checks every edge, in C.
    if cached is not None and cached[0] == key and list(map(dict.get, *cached[2][:2])) == cached[2][2]:
        return list(cached[1])
    found = _find_se_blocks_uncached(model)
    edges = _gate_edges(model, found)
    if edges is not None:
        try:
            _FOUND_CACHE[model] = (key, tuple(found), edges)
        except TypeError:
            pass
    return found


class ExcitationRecorder:
    """Context manager that records s (N×C per SE block) on every forward pass of `model`.

    Args:
        model: any nn.Module; its SE blocks are found by their gates.
        blocks: restrict recording (and overrides) to these block names; default all.
        overrides: knock blocks out: name -> "identity" (s := 1), a C-vector or a scalar (s := that value).
        record: set False to only apply overrides.
        capture_internals: also keep, per block, its input U (`inputs`), the squeezed z (`squeezes`), the
            hidden δ(W1·z) (`hiddens`, where the implementation has a readable W1) and its output U·s
            (`outputs`). Off by default: U is large.

    Example:
        with ExcitationRecorder(model) as rec:
            logits = model(x)
        rec.excitations["SE_5_2"]  # N×C tensor
    """

    def __init__(self, model: nn.Module, blocks: Iterable[str] | None = None,
                 overrides: Mapping[str, Override] | None = None, record: bool = True,
                 capture_internals: bool = False) -> None:
        self.model = model
        found = find_se_blocks(model)
        wanted = set(blocks) if blocks is not None else None
        if wanted is not None:
            unknown = wanted - {b.name for b, _ in found}
            if unknown:
                raise KeyError(f"no SE block named {', '.join(sorted(unknown))} in this model")
            found = [(b, g) for b, g in found if b.name in wanted]
        self._found = found
        self.blocks: list[SEBlock] = [b for b, _ in found]
        names = {b.name for b in self.blocks}
        self.overrides = dict(overrides or {})
        bad = set(self.overrides) - names
        if bad:
            raise KeyError(f"cannot override unknown SE block(s): {', '.join(sorted(bad))}")
        self.record = record
        self._store: dict[str, list[torch.Tensor]] = {b.name: [] for b in self.blocks}
        self.capture_internals = capture_internals
        # what -> block -> chunks; filled only with capture_internals
        self._internals: dict[str, dict[str, list[torch.Tensor]]] = {
            w: {b.name: [] for b in self.blocks} for w in ("inputs", "squeezes", "hiddens", "outputs")}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._token: contextvars.Token | None = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "ExcitationRecorder":
        try:
            for block, gate in self._found:
                self._handles.append(gate.register_forward_hook(self._make_hook(block)))
                if self.capture_internals:
                    self._hook_internals(block)
        except BaseException:
            self._remove()
            raise
        self._token = _ACTIVE.set(_ACTIVE.get() + (self,))
        return self

    def __exit__(self, *exc) -> None:
        self._remove()
        if self._token is not None:
            try:
                _ACTIVE.reset(self._token)
            except ValueError:  # exited in another context than entered; drop ourselves instead
                _ACTIVE.set(tuple(r for r in _ACTIVE.get() if r is not self))
            self._token = None

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # ------------------------------------------------------------------ hooks
    def _make_hook(self, block: SEBlock):
        override = self.overrides.get(block.name)
        store = self._store[block.name]

        def hook(module: nn.Module, inputs, output: torch.Tensor):
            if self not in _ACTIVE.get():  # another thread's / session's forward pass
                return None
            if override is not None:
                output = _apply_override(output, override, block)
            if self.record:
                # Clone: timm adds the shortcut in place after the SE block, and callers keep these.
                s = output.detach().reshape(output.shape[0], -1)
                store.append(s.clone() if s.dtype is torch.float32 and s.device.type == "cpu"
                             else s.to("cpu", torch.float32))
            return output if override is not None else None

        return hook

    def _hook_internals(self, block: SEBlock) -> None:
        """Hook the SE module (U in, U·s out) and its W1 input (z) and δ output; same per-call rule as s."""
        module = self.model.get_submodule(block.path)
        z_mod, hidden_mod = se_internals(module)
        store = {w: chunks[block.name] for w, chunks in self._internals.items()}

        def keep(what: str, t: torch.Tensor, flat: bool) -> None:
            t = t.detach()
            t = t.reshape(t.shape[0], -1) if flat else t
            store[what].append(t.to("cpu", torch.float32, copy=True))

        def pre(module: nn.Module, args):
            if self in _ACTIVE.get() and args and isinstance(args[0], torch.Tensor):
                keep("inputs", args[0], flat=False)
            return None

        def post(module: nn.Module, args, output):
            if self in _ACTIVE.get() and isinstance(output, torch.Tensor):
                keep("outputs", output, flat=False)
            return None

        self._handles.append(module.register_forward_pre_hook(pre))
        self._handles.append(module.register_forward_hook(post))
        if z_mod is not None:
            def z_pre(m: nn.Module, args):
                if self in _ACTIVE.get() and args and isinstance(args[0], torch.Tensor):
                    keep("squeezes", args[0], flat=True)
                return None
            self._handles.append(z_mod.register_forward_pre_hook(z_pre))
        if hidden_mod is not None:
            def h_post(m: nn.Module, args, output):
                if self in _ACTIVE.get() and isinstance(output, torch.Tensor):
                    keep("hiddens", output, flat=True)  # a copy: δ is often an in-place ReLU
                return None
            self._handles.append(hidden_mod.register_forward_hook(h_post))

    # ------------------------------------------------------------------ results
    @property
    def excitations(self) -> "OrderedDict[str, torch.Tensor]":
        """Block name -> N×C tensor of s, all forward passes so far concatenated along N, in depth order."""
        # One forward pass (the usual case): its chunk is already this recorder's own copy; no cat needed.
        return OrderedDict((name, (chunks[0] if len(chunks) == 1 else torch.cat(chunks)) if chunks
                            else torch.empty(0, self._channels(name)))
                           for name, chunks in self._store.items())

    def _gathered(self, what: str) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict((name, chunks[0] if len(chunks) == 1 else torch.cat(chunks))
                           for name, chunks in self._internals[what].items() if chunks)

    @property
    def inputs(self) -> "OrderedDict[str, torch.Tensor]":
        """Block name -> the SE module's input U (N×C×H×W; N×H×W×C for channels-last SE), with
        capture_internals; blocks not run yet are absent."""
        return self._gathered("inputs")

    @property
    def squeezes(self) -> "OrderedDict[str, torch.Tensor]":
        """Block name -> z (N×C), the input of W1, with capture_internals; absent where unreadable."""
        return self._gathered("squeezes")

    @property
    def hiddens(self) -> "OrderedDict[str, torch.Tensor]":
        """Block name -> δ(W1·z) (N×C/r), with capture_internals; absent where the block has no readable W1."""
        return self._gathered("hiddens")

    @property
    def outputs(self) -> "OrderedDict[str, torch.Tensor]":
        """Block name -> the SE module's output U·s, with capture_internals."""
        return self._gathered("outputs")

    def pop(self) -> "OrderedDict[str, torch.Tensor]":
        """Return the excitations recorded so far and forget them (for streaming over a dataset)."""
        out = self.excitations
        self.clear()
        return out

    def clear(self) -> None:
        """Forget everything recorded so far."""
        for chunks in self._store.values():
            chunks.clear()
        for per_block in self._internals.values():
            for chunks in per_block.values():
                chunks.clear()

    def _channels(self, name: str) -> int:
        return next(b.channels for b in self.blocks if b.name == name)

    @property
    def active(self) -> bool:
        return bool(self._handles)


def _apply_override(s: torch.Tensor, value: Override, block: SEBlock) -> torch.Tensor:
    if isinstance(value, SetChannels):
        bad = [c for c in value.values if not 0 <= int(c) < block.channels]
        if bad:
            raise ValueError(f"{block.name} has channels 0..{block.channels - 1}; no channel {bad[0]}")
        # s is N×C×1×1 or N×1×1×C: the C values are contiguous along the flattened non-batch axes.
        flat = s.reshape(s.shape[0], -1).clone()
        for c, v in value.values.items():
            flat[:, int(c)] = float(v)
        return flat.reshape(s.shape)
    if isinstance(value, str):
        if value != "identity":
            raise ValueError(f"unknown override {value!r} for {block.name}; use 'identity', a scalar or a vector")
        return torch.ones_like(s)
    if isinstance(value, (int, float)):
        return torch.full_like(s, float(value))
    vec = torch.as_tensor(value, dtype=s.dtype, device=s.device)
    if vec.numel() != block.channels:
        raise ValueError(f"override for {block.name} has {vec.numel()} values, the block has {block.channels} channels")
    # s is N×C×1×1 (NCHW) or N×1×1×C (channels-last SE); shape[1:] holds the C values either way.
    return vec.reshape(s.shape[1:]).expand_as(s).clone()


def count_hooks(model: nn.Module) -> int:
    """Return the number of forward hooks on `model`'s modules (0 when no recorder is active)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
