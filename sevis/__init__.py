"""sevis: see what Squeeze-and-Excitation blocks do inside a trained network."""
from .errors import DatasetError, ExportError, ImageError, ModelError, SevisError
from .recorder import ExcitationRecorder, SEBlock, find_se_blocks
from .zoo import LoadedModel, list_se_models, load_model

__all__ = [
    "ExcitationRecorder", "SEBlock", "find_se_blocks", "LoadedModel", "load_model", "list_se_models",
    "SevisError", "ImageError", "ModelError", "DatasetError", "ExportError",
]
__version__ = "0.1.0"
