"""Model names the CLI and the app offer, as plain constants: importing this module imports no torch.

sevis.models.zoo imports these; tests/test_startup.py checks SEVIS_ARCHITECTURES and SEVIS_PLAIN_ARCHITECTURES
against sevis.models.resnet's registry.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

# The shipped models, their cards and reference files travel inside the package (package data), so an installed
# sevis finds them without the checkout.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"

# The default model and its plain twin see Fashion-MNIST in context (sevis.data.context); the first embedded model,
# trained on the centred originals, stays beside them: it shows how the data shape early excitations.
EMBEDDED = {"embedded": "fmnist_se_resnet50", "embedded-plain": "fmnist_resnet50",
            "embedded-centred": "fmnist_se_resnet", "embedded-centred-plain": "fmnist_resnet"}
DEFAULT_SPEC = "embedded"

# Fig. 6's default classes, in the app's Class × depth view and in `sevis export fig6` without --classes: four
# Fashion-MNIST classes that look nothing alike (legs, a low shoe, a bag, a long top). Models with other classes
# get their first four.
FIG6_DEFAULT_CLASSES = ("Trouser", "Sneaker", "Bag", "Coat")


def fig6_default_classes(classes: Sequence[str]) -> list[str]:
    """Return the classes Fig. 6 shows by default for a model with `classes` (FIG6_DEFAULT_CLASSES it has, else
    its first four)."""
    picked = [c for c in FIG6_DEFAULT_CLASSES if c in classes]
    return picked or list(classes[:len(FIG6_DEFAULT_CLASSES)])


# SE-bearing ImageNet models offered in the picker (any other timm/torchvision name works too).
TIMM_SE_MODELS = (
    "legacy_seresnet50", "seresnet50", "legacy_seresnet18", "seresnext26d_32x4d", "legacy_senet154",
    "efficientnet_b0", "mobilenetv3_large_100", "ghostnet_100", "regnety_008", "ese_vovnet19b_dw",
)
TORCHVISION_SE_MODELS = ("efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_y_400mf")

# sevis.models.resnet.list_architectures(), kept literal so that listing them needs no torch (a test checks they match),
# and those of them built without SE (ResNetConfig.se False): the plain twins, for comparison.
SEVIS_ARCHITECTURES = ("fmnist_resnet", "fmnist_resnet50", "fmnist_se_resnet", "fmnist_se_resnet50", "resnet101",
                       "resnet18", "resnet50", "se_resnet101", "se_resnet18", "se_resnet50")
SEVIS_PLAIN_ARCHITECTURES = ("fmnist_resnet", "fmnist_resnet50", "resnet101", "resnet18", "resnet50")
NO_SE_GROUP = "sevis (no SE, for comparison)"
ABLATION_GROUP = "ablations (trained)"

# The paper's ablations (Tables 10-16) as variants of the default model (sevis.train.ablations trains them): each
# changes the default's ResNetConfig by `overrides` (or its seed: the baseline's extra seeds give the noise floor).
# Loaded as "ablation:<name>" once pretrained/ablations/<name>.safetensors exists.
ABLATION_AXES = ("baseline", "reduction", "squeeze", "excitation", "stages", "integration", "no SE")


def _variant(axis: str, change: str, seed: int = 0, **overrides) -> dict:
    return {"axis": axis, "change": change, "seed": seed, "overrides": overrides}


ABLATIONS: dict[str, dict] = {
    "baseline": _variant("baseline", "the default: r = 16, average squeeze, sigmoid gate, SE in every block"),
    "baseline-seed1": _variant("baseline", "the baseline with seed 1 (noise floor)", seed=1),
    "baseline-seed2": _variant("baseline", "the baseline with seed 2 (noise floor)", seed=2),
    "baseline-seed3": _variant("baseline", "the baseline with seed 3 (noise floor)", seed=3),
    "baseline-seed4": _variant("baseline", "the baseline with seed 4 (noise floor)", seed=4),
    "r4": _variant("reduction", "reduction ratio r = 4", reduction=4),
    "r8": _variant("reduction", "reduction ratio r = 8", reduction=8),
    "r32": _variant("reduction", "reduction ratio r = 32", reduction=32),
    "squeeze-max": _variant("squeeze", "global max pooling as the squeeze", squeeze="max"),
    "gate-relu": _variant("excitation", "ReLU instead of sigmoid as the gate", gate="relu"),
    "gate-tanh": _variant("excitation", "tanh instead of sigmoid as the gate", gate="tanh"),
    "stage-2": _variant("stages", "SE in stage 2 only", se_stages=[2]),
    "stage-3": _variant("stages", "SE in stage 3 only", se_stages=[3]),
    "stage-4": _variant("stages", "SE in stage 4 only", se_stages=[4]),
    "no-stage-5": _variant("stages", "SE in stages 2-4, none in stage 5", se_stages=[2, 3, 4]),
    "integration-pre": _variant("integration", "SE before the residual unit (PRE)", integration="pre"),
    "integration-post": _variant("integration", "SE after the addition (POST)", integration="post"),
    "integration-identity": _variant("integration", "SE on the identity path, beside the branch",
                                     integration="identity"),
    "se-3x3": _variant("integration", "SE after the 3×3 convolution, inside the branch", integration="3x3"),
    "plain": _variant("no SE", "no SE at all (the plain twin)", se=False),
}


# The pair the Ablations view and `sevis export ablations` compare by default: the gate whose values leave (0, 1).
DEFAULT_ABLATION_PAIR = ("baseline", "gate-tanh")


# The paper's other SE architectures (Tables 2-3), small (sevis.models.families): model name -> registered architecture.
# Each SE model sits beside its plain twin; `sevis family` trains every one with FAMILY_SEEDS (the spread between
# seeds is the noise floor). Loaded as "family:<run>" once pretrained/families/<run>.safetensors exists.
FAMILY_MODELS = {"se-inception": "fmnist_se_inception", "inception": "fmnist_inception",
                 "se-resnext": "fmnist_se_resnext", "resnext": "fmnist_resnext",
                 "se-mobilenet": "fmnist_se_mobilenet", "mobilenet": "fmnist_mobilenet",
                 "se-vgg": "fmnist_se_vgg", "vgg": "fmnist_vgg"}
FAMILY_SEEDS = (0, 1, 2, 3, 4)  # issue 25: five seeds per run, so SE − plain gets a paired interval
FAMILY_GROUP = "architectures (trained)"


def _family_runs() -> dict[str, dict]:
    # Every model's first seed comes before any second seed: a grid cut short still has each pair once.
    return {(model if seed == 0 else f"{model}-seed{seed}"): {"model": model, "arch": arch, "seed": seed,
                                                                "se": model.startswith("se-"),
                                                                "family": model.removeprefix("se-")}
            for seed in FAMILY_SEEDS for model, arch in FAMILY_MODELS.items()}


FAMILY_RUNS: dict[str, dict] = _family_runs()


def family_dir() -> Path:
    """Return the folder of the trained family models: $SEVIS_FAMILY_DIR, else pretrained/families."""
    import os
    return Path(os.environ.get("SEVIS_FAMILY_DIR") or PRETRAINED_DIR / "families")


def trained_families() -> list[str]:
    """Return the family runs whose weights and card are there, in FAMILY_RUNS order."""
    folder = family_dir()
    return [n for n in FAMILY_RUNS if (folder / f"{n}.safetensors").is_file() and (folder / f"{n}.json").is_file()]


# Weights kept during training (`sevis train --snapshots`): loaded as "<embedded name>@<epoch>", e.g. embedded@0
# (the initialisation) or embedded@20, from pretrained/<arch>.snapshots/epoch_XXX.safetensors (fp16).
SNAPSHOT_GROUP = "training snapshots"


def snapshot_dir(spec: str = DEFAULT_SPEC) -> Path:
    """Return the folder of embedded model `spec`'s training snapshots (under $SEVIS_SNAPSHOT_DIR if set)."""
    import os
    root = os.environ.get("SEVIS_SNAPSHOT_DIR") or PRETRAINED_DIR
    return Path(root) / f"{EMBEDDED[spec]}.snapshots"


def snapshot_epochs(spec: str = DEFAULT_SPEC) -> list[int]:
    """Return the epochs (0: initialisation) whose snapshot of embedded model `spec` is there, in order."""
    folder = snapshot_dir(spec)
    found = []
    for path in folder.glob("epoch_*.safetensors") if folder.is_dir() else ():
        digits = path.stem.removeprefix("epoch_")
        if digits.isdigit():
            found.append(int(digits))
    return sorted(found)


def snapshot_specs() -> list[str]:
    """Return "<embedded name>@<epoch>" for every snapshot there."""
    return [f"{spec}@{e}" for spec in EMBEDDED for e in snapshot_epochs(spec)]


def ablation_dir() -> Path:
    """Return the folder of the trained ablation variants: $SEVIS_ABLATION_DIR, else pretrained/ablations."""
    import os
    return Path(os.environ.get("SEVIS_ABLATION_DIR") or PRETRAINED_DIR / "ablations")


def trained_ablations() -> list[str]:
    """Return the ablation variants whose weights are there, in ABLATIONS order."""
    folder = ablation_dir()
    return [n for n in ABLATIONS if (folder / f"{n}.safetensors").is_file() and (folder / f"{n}.json").is_file()]


def list_se_models() -> dict[str, list[str]]:
    """Return the model specs offered in pickers, grouped by source; every group holds SE-bearing models only,
    except NO_SE_GROUP (sevis's plain twins: the same network without SE, for comparison), ABLATION_GROUP (the
    trained ablation variants, `plain` among them) and FAMILY_GROUP (the trained architectures, plain twins among
    them)."""
    embedded_se = [k for k, arch in EMBEDDED.items() if arch not in SEVIS_PLAIN_ARCHITECTURES]
    embedded_plain = [k for k, arch in EMBEDDED.items() if arch in SEVIS_PLAIN_ARCHITECTURES]
    return {
        "embedded": embedded_se,
        "sevis": [f"sevis:{a}" for a in SEVIS_ARCHITECTURES if a not in SEVIS_PLAIN_ARCHITECTURES],
        "timm": [f"timm:{n}" for n in TIMM_SE_MODELS],
        "torchvision": [f"torchvision:{n}" for n in TORCHVISION_SE_MODELS],
        NO_SE_GROUP: embedded_plain + [f"sevis:{a}" for a in SEVIS_PLAIN_ARCHITECTURES],
        ABLATION_GROUP: [f"ablation:{n}" for n in trained_ablations()],
        SNAPSHOT_GROUP: snapshot_specs(),
        FAMILY_GROUP: [f"family:{n}" for n in trained_families()],
    }


def plain_twin_spec(spec: str) -> str | None:
    """Return the spec of the plain twin of a shipped SE model (the same network trained without SE, an identity
    where each SE block sits), or None when it has none: embedded -> embedded-plain, family:se-vgg-seed1 ->
    family:vgg-seed1, ablation:<variant> -> ablation:plain."""
    if spec in EMBEDDED and not spec.endswith("-plain") and f"{spec}-plain" in EMBEDDED:
        return f"{spec}-plain"
    prefix, _, name = spec.partition(":")
    if prefix == "family" and name.startswith("se-"):
        return f"family:{name[3:]}"
    if prefix == "ablation" and name != "plain":
        return "ablation:plain"
    return None
