"""Model names the CLI and the app offer, as plain constants: importing this module imports no torch.

sevis.zoo imports these; tests/test_startup.py checks SEVIS_ARCHITECTURES against sevis.resnet's registry.
"""
from __future__ import annotations

# The default model and its plain twin see Fashion-MNIST in context (sevis.context); the first embedded model,
# trained on the centred originals, stays beside them: it shows how the data shape early excitations.
EMBEDDED = {"embedded": "fmnist_se_resnet50", "embedded-plain": "fmnist_resnet50",
            "embedded-centred": "fmnist_se_resnet", "embedded-centred-plain": "fmnist_resnet"}
DEFAULT_SPEC = "embedded"

# SE-bearing ImageNet models offered in the picker (any other timm/torchvision name works too).
TIMM_SE_MODELS = (
    "legacy_seresnet50", "seresnet50", "legacy_seresnet18", "seresnext26d_32x4d", "legacy_senet154",
    "efficientnet_b0", "mobilenetv3_large_100", "ghostnet_100", "regnety_008", "ese_vovnet19b_dw",
)
TORCHVISION_SE_MODELS = ("efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_y_400mf")

# sevis.resnet.list_architectures(), kept literal so that listing them needs no torch (a test checks they match).
SEVIS_ARCHITECTURES = ("fmnist_resnet", "fmnist_resnet50", "fmnist_se_resnet", "fmnist_se_resnet50", "resnet101",
                       "resnet18", "resnet50", "se_resnet101", "se_resnet18", "se_resnet50")


def list_se_models() -> dict[str, list[str]]:
    """Return the model specs offered in pickers, grouped by source."""
    return {
        "embedded": list(EMBEDDED),
        "sevis": [f"sevis:{a}" for a in SEVIS_ARCHITECTURES],
        "timm": [f"timm:{n}" for n in TIMM_SE_MODELS],
        "torchvision": [f"torchvision:{n}" for n in TORCHVISION_SE_MODELS],
    }
