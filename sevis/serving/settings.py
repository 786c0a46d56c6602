"""What an operator allows when the app is served to a class, read from the environment on every call (so a
test or a restarted server sees the current value):

- SEVIS_DATA_DIRS: the server folders the app may read labelled images from (os.pathsep-separated); unset, the
  app reads no server folder at all (the bundled reference set and uploads still work).
- SEVIS_MODELS: "listed" turns the free model-name fields off (only the listed SE models can be picked).
- SEVIS_MAX_MODEL_PARAMS: the largest model (in parameters) a free name may build (default 150 million).
- SEVIS_MODEL_CACHE_MB: how many MiB of model weights the server keeps loaded for all sessions (default 2048).
- SEVIS_RESULT_CACHE_MB: how many MiB of per-image results each session keeps (default 256).
- SEVIS_MAX_UPLOADS: how many images one session analyses at once, uploads, sample images and files that fail
  to decode together (default 64).
- SEVIS_UPLOAD_MB: how many MiB of uploaded images one session may use at once (default 200).
- SEVIS_BATCH_MEGAPIXELS: how many megapixels the images analysed at once may hold together, read from their
  headers before decoding (default 256).

No torch here: the sidebar reads these before any model is built.
"""
from __future__ import annotations

import os
from functools import lru_cache

from sevis.errors import ModelError

DATA_DIRS_ENV = "SEVIS_DATA_DIRS"
MODELS_ENV = "SEVIS_MODELS"
MAX_PARAMS_ENV = "SEVIS_MAX_MODEL_PARAMS"
MODEL_CACHE_ENV = "SEVIS_MODEL_CACHE_MB"
RESULT_CACHE_ENV = "SEVIS_RESULT_CACHE_MB"
MAX_UPLOADS_ENV = "SEVIS_MAX_UPLOADS"
UPLOAD_MB_ENV = "SEVIS_UPLOAD_MB"
BATCH_MEGAPIXELS_ENV = "SEVIS_BATCH_MEGAPIXELS"
DEFAULT_MAX_PARAMS = 150_000_000
DEFAULT_MODEL_CACHE_MB = 2048
DEFAULT_RESULT_CACHE_MB = 256
DEFAULT_MAX_UPLOADS = 64
DEFAULT_UPLOAD_MB = 200
DEFAULT_BATCH_MEGAPIXELS = 256


def data_roots() -> list[str]:
    """Return the folders listed in SEVIS_DATA_DIRS that exist (as given; empty when unset)."""
    raw = os.environ.get(DATA_DIRS_ENV, "")
    return [p for p in (s.strip() for s in raw.split(os.pathsep)) if p and os.path.isdir(p)]


def free_model_names() -> bool:
    """Return whether the app's free model-name fields are on (SEVIS_MODELS is not "listed")."""
    return os.environ.get(MODELS_ENV, "").strip().lower() != "listed"


def _positive(env: str, default: int) -> int:
    try:
        value = int(float(os.environ.get(env, "") or default))
    except ValueError:
        return default
    return value if value > 0 else default


def max_model_params() -> int:
    """Return the largest parameter count a free model name may have (SEVIS_MAX_MODEL_PARAMS)."""
    return _positive(MAX_PARAMS_ENV, DEFAULT_MAX_PARAMS)


def model_cache_bytes() -> int:
    """Return the bytes of model weights kept loaded across sessions (SEVIS_MODEL_CACHE_MB)."""
    return _positive(MODEL_CACHE_ENV, DEFAULT_MODEL_CACHE_MB) * 2**20


def result_cache_bytes() -> int:
    """Return the bytes of per-image results one session keeps (SEVIS_RESULT_CACHE_MB)."""
    return _positive(RESULT_CACHE_ENV, DEFAULT_RESULT_CACHE_MB) * 2**20


def max_uploads() -> int:
    """Return how many images one session analyses at once (SEVIS_MAX_UPLOADS); unreadable files count too."""
    return _positive(MAX_UPLOADS_ENV, DEFAULT_MAX_UPLOADS)


def upload_bytes() -> int:
    """Return the bytes of uploaded images one session may use at once (SEVIS_UPLOAD_MB)."""
    return _positive(UPLOAD_MB_ENV, DEFAULT_UPLOAD_MB) * 2**20


def batch_pixels() -> int:
    """Return the pixels the images analysed at once may hold together (SEVIS_BATCH_MEGAPIXELS), as counted from
    their headers before anything is decoded."""
    return _positive(BATCH_MEGAPIXELS_ENV, DEFAULT_BATCH_MEGAPIXELS) * 1_000_000


def check_free_model(spec: str, listed: set[str]) -> None:
    """Raise ModelError when the app may not build `spec` as typed: a name outside `listed` while free names are
    off, or one that bears no SE block or is larger than SEVIS_MAX_MODEL_PARAMS (counted on the meta device,
    nothing allocated)."""
    if spec in listed:
        return
    if not free_model_names():
        raise ModelError("this server offers only the listed models; pick one of them")
    params, se_blocks = model_size(spec)
    limit = max_model_params()
    if params > limit:
        raise ModelError(f"{spec} has {params / 1e6:,.0f} million parameters, more than this server allows "
                         f"({limit / 1e6:,.0f} million); pick a smaller model")
    if se_blocks == 0:
        raise ModelError(f"{spec} has no Squeeze-and-Excitation blocks, so there is nothing to show here; pick a "
                         "model with SE blocks (the listed ones all have them)")


@lru_cache(maxsize=256)  # the sidebar asks on every rerun while a typed name stays
def model_size(spec: str) -> tuple[int, int]:
    """Return (parameters, SE blocks) of timm/torchvision model `spec`, built on the meta device: nothing is
    allocated and no weights are fetched, so a billion-parameter name costs a fraction of a second."""
    import torch

    from sevis.core.recorder import find_se_blocks
    prefix, _, name = spec.partition(":")
    try:
        with torch.device("meta"):
            if prefix == "timm":
                import timm
                if name not in timm.list_models():
                    raise ModelError(f"unknown timm model {name!r}")
                model = timm.create_model(name, pretrained=False)
            elif prefix == "torchvision":
                import torchvision
                if name not in torchvision.models.list_models():
                    raise ModelError(f"unknown torchvision model {name!r}")
                model = torchvision.models.get_model(name, weights=None)
            else:
                raise ModelError(f"unknown model {spec!r}")
    except ModelError:
        raise
    except Exception:  # noqa: BLE001 a model that cannot be sized without allocating is not built here
        raise ModelError(f"{spec} cannot be measured before it is built, so this server does not build it; "
                         "pick a listed model") from None
    return sum(p.numel() for p in model.parameters()), len(find_se_blocks(model))
