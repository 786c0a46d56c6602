"""Safe checkpoints: safetensors weights beside a JSON model card. Never unpickles code."""
from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from sevis.errors import ModelError


def card_path(weights: str | os.PathLike) -> Path:
    """Return the model card path that belongs to a weights file (same stem, .json)."""
    return Path(weights).with_suffix(".json")


def save_checkpoint(model: nn.Module, weights: str | os.PathLike, card: dict) -> Path:
    """Write `model`'s state dict as safetensors and `card` as JSON beside it; return the weights path."""
    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format": "pt", "architecture": json.dumps(card.get("architecture", {}))})
    write_card(weights, card)
    return weights


def write_card(weights: str | os.PathLike, card: dict) -> Path:
    path = card_path(weights)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return path


def read_card(weights: str | os.PathLike) -> dict:
    """Return the model card beside `weights`, or {} when there is none."""
    path = card_path(weights)
    if not path.exists():
        return {}
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"model card {path} is not valid JSON: {e}") from None
    if not isinstance(card, dict):
        raise ModelError(f"model card {path} is not a JSON object")
    return card


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Return the tensors in a .safetensors file, or a .pt/.pth file loaded with weights_only=True."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ModelError(f"checkpoint {path.name} is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"{path.name} is not a valid safetensors file (truncated or corrupt): {e}") from None
    if suffix in (".pt", ".pth", ".bin", ".ckpt"):
        try:
            # weights_only=True refuses every pickle opcode that could construct arbitrary objects or run code.
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise ModelError(
                f"refused to load {path.name}: it contains Python objects other than tensors{_pickle_culprit(e)}, "
                "and unpickling them could run code. sevis reads only tensors from .pt/.pth files; save a "
                "state_dict (torch.save(model.state_dict(), ...)) or, better, a .safetensors file."
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
            raise ModelError(f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt): {e}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ModelError(f"{path.name} does not hold a state dict (a mapping of names to tensors)")
        return obj
    raise ModelError(f"unsupported checkpoint type {suffix or '(none)'}: use .safetensors, .pt or .pth")


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _pickle_culprit(err: BaseException) -> str:
    """Return ' (it references builtins.open)': what torch's weights-only unpickler refused, without its
    advice to re-run with weights_only=False (exactly what must not be done with an untrusted file)."""
    m = _UNSAFE_GLOBAL.search(str(err))
    return f" (it references {m.group(1)})" if m else ""


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load `state` strictly into `model`; mismatches become one clear ModelError."""
    check_state_fits(model, state, source)
    model.load_state_dict(state)
    return model


def check_state_fits(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise one clear ModelError unless `state` has exactly `model`'s tensor names and shapes.

    Only shapes are compared, so `model` may live on the meta device (built without allocating memory)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with other shapes (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise ModelError(f"{source} does not fit this architecture: tensors " + "; ".join(parts))
