"""sevis: see what Squeeze-and-Excitation blocks do inside a trained network.

The public names load their modules on first use (PEP 562), so `import sevis` (and the CLI's `--help`)
imports no torch.
"""
from importlib import import_module

from sevis.errors import DatasetError, ExportError, ImageError, ModelError, SevisError

_LAZY = {
    "ExcitationRecorder": "core.recorder", "SEBlock": "core.recorder", "find_se_blocks": "core.recorder",
    "LoadedModel": "models.zoo", "load_model": "models.zoo", "list_se_models": "names",
}

__all__ = [
    "ExcitationRecorder", "SEBlock", "find_se_blocks", "LoadedModel", "load_model", "list_se_models",
    "SevisError", "ImageError", "ModelError", "DatasetError", "ExportError",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Return a public name, importing its module on first use."""
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
