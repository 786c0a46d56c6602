"""Safe checkpoints: safetensors weights beside a JSON model card. Never unpickles code."""
from __future__ import annotations

import json
import os
import pickle
import re
import struct
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
        check_safetensors_header(path)  # before safetensors parses a header it would hold whole in memory
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"{path.name} is not a valid safetensors file (truncated or corrupt): {e}") from None
    if suffix in (".pt", ".pth", ".bin", ".ckpt"):
        check_torch_zip(path)  # before torch inflates or allocates what the zip declares
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


# A checkpoint the app or CLI may be handed is untrusted: these bounds are checked from the file's own headers before
# torch or safetensors reads it, so a small file can never make them allocate more than a few times its size.
MAX_TENSORS = 20_000  # a checkpoint holding more tensors is refused (timm's largest SE models hold under 2,000)
MAX_SAFETENSORS_HEADER = 8 * 2**20  # bytes of JSON header (20,000 tensors with long names take about 2 MB)
ZIP_SIZE_FACTOR = 2  # a .pt zip may declare at most this many times its own size (torch stores, never compresses)
ZIP_SIZE_SLACK = 1 << 16  # plus this much, for the few bytes of a tiny checkpoint's version and byteorder records


def _size(n: int) -> str:
    """Return `n` bytes in words ("1.0 MB", "1.0 GB")."""
    if n < 2**10:
        return f"{n} bytes"
    if n < 2**20:
        return f"{n / 2**10:,.1f} KB"
    return f"{n / 2**20:,.1f} MB" if n < 2**30 else f"{n / 2**30:,.1f} GB"


def check_safetensors_header(path: str | os.PathLike) -> None:
    """Raise ModelError when the safetensors file at `path` declares a header larger than MAX_SAFETENSORS_HEADER or
    holds more than MAX_TENSORS tensors; return None when it may be loaded. Reads the 8-byte header length first,
    and parses the JSON header only once it is known to be small."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{path.name} is not a valid safetensors file (truncated or corrupt): "
                                 "shorter than its 8-byte header length")
            (size,) = struct.unpack("<Q", head)
            file_size = os.fstat(fh.fileno()).st_size
            if size > file_size - 8:
                raise ModelError(f"{path.name} is not a valid safetensors file (truncated or corrupt): its header "
                                 f"declares {_size(size)} but the file holds {_size(file_size)}")
            if size > MAX_SAFETENSORS_HEADER:
                raise ModelError(f"{path.name}: its safetensors header declares {_size(size)}, more than sevis reads "
                                 f"({_size(MAX_SAFETENSORS_HEADER)}; a model's header takes a few hundred KB), so it "
                                 "was refused before it was read")
            header = fh.read(size)
    except OSError as e:
        raise ModelError(f"{path.name} cannot be read: {e.strerror or e}") from None
    # Each tensor's entry names its data_offsets: counting them costs nothing and refuses a flood before parsing.
    count = header.count(b'"data_offsets"')
    if count <= MAX_TENSORS:
        try:
            parsed = json.loads(header)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return  # safetensors itself says what is wrong with the header, in its own words
        count = len(parsed) - ("__metadata__" in parsed) if isinstance(parsed, dict) else 0
    if count > MAX_TENSORS:
        raise ModelError(f"{path.name} holds {count:,} tensors, more than sevis loads ({MAX_TENSORS:,}; a model "
                         "has a few hundred to a few thousand), so it was refused before they were read")


def check_torch_zip(path: str | os.PathLike) -> None:
    """Raise ModelError when the PyTorch zip checkpoint at `path` holds a compressed entry, more than MAX_TENSORS
    entries, or entries whose declared sizes add up to more than ZIP_SIZE_FACTOR times the file; return None when
    torch may read it (or when it is not a zip: torch's legacy format, which torch.load reads on its own).

    torch.save stores every entry uncompressed, so a compressed one can only be a bomb: a 1 MB entry that inflates
    to 1 GB. The count is read from the end-of-central-directory record before the directory itself is parsed."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":  # torch's own test for its zip format
                return
            file_size = os.fstat(fh.fileno()).st_size
            end = zipfile._EndRecData(fh) if hasattr(zipfile, "_EndRecData") else None
            if end is not None and end[zipfile._ECD_ENTRIES_TOTAL] > MAX_TENSORS + 16:
                raise ModelError(f"{path.name} holds {end[zipfile._ECD_ENTRIES_TOTAL]:,} entries, more than a "
                                 f"checkpoint sevis loads ({MAX_TENSORS:,} tensors), so it was refused before they "
                                 "were read")
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                entries = zf.infolist()
    except ModelError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, struct.error, EOFError) as e:
        raise ModelError(f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt): {e}") from None
    squeezed = [e for e in entries if e.compress_type != zipfile.ZIP_STORED]
    if squeezed:
        e = squeezed[0]
        raise ModelError(f"{path.name} holds compressed entries ({e.filename}: {_size(e.compress_size)} that would "
                         f"inflate to {_size(e.file_size)}); torch.save never compresses, so sevis does not inflate "
                         "them. Save the weights again with torch.save, or as a .safetensors file")
    declared = sum(e.file_size for e in entries)
    if declared > ZIP_SIZE_FACTOR * file_size + ZIP_SIZE_SLACK:
        raise ModelError(f"{path.name} declares {_size(declared)} of tensors inside a {_size(file_size)} file, which "
                         "no real checkpoint does, so it was refused before anything was read")


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
