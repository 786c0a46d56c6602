"""The paper's other SE architectures, small, for 36 px Fashion-MNIST in context: SE-Inception, SE-ResNeXt,
SE-MobileNet and SE-VGG, each with a plain twin (the same code with se=False).

`create_family(arch)` builds a registered one ("fmnist_se_inception", "fmnist_inception", ...);
`build_family(cfg)` any FamilyConfig (a model card's "architecture").
"""
from __future__ import annotations

from dataclasses import replace

from sevis.models.families.base import FAMILY_TITLES, FamilyConfig, FamilyNet
from sevis.models.families.inception import SEInception
from sevis.models.families.mobilenet import SEMobileNet
from sevis.models.families.resnext import SEResNeXt
from sevis.models.families.vgg import SEVGG

FAMILY_CLASSES: dict[str, type[FamilyNet]] = {"inception": SEInception, "resnext": SEResNeXt,
                                              "mobilenet": SEMobileNet, "vgg": SEVGG}
FAMILY_ARCHITECTURES: dict[str, FamilyConfig] = {}
for _family in FAMILY_CLASSES:
    FAMILY_ARCHITECTURES[f"fmnist_se_{_family}"] = FamilyConfig(_family, se=True)
    FAMILY_ARCHITECTURES[f"fmnist_{_family}"] = FamilyConfig(_family, se=False)


def is_family_config(arch: dict) -> bool:
    """Return whether a model card's architecture describes a family network (it names its family)."""
    return isinstance(arch, dict) and "family" in arch


def build_family(cfg: FamilyConfig) -> FamilyNet:
    """Return a freshly initialised family network for `cfg`; ValueError for an unknown family."""
    try:
        cls = FAMILY_CLASSES[cfg.family]
    except KeyError:
        raise ValueError(f"unknown family {cfg.family!r}; choose one of {', '.join(FAMILY_CLASSES)}") from None
    return cls(cfg)


def create_family(name: str, **overrides) -> FamilyNet:
    """Return the registered family architecture `name` (e.g. fmnist_se_inception), `overrides` applied."""
    try:
        cfg = FAMILY_ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown family architecture {name!r}; known: {', '.join(FAMILY_ARCHITECTURES)}") from None
    return build_family(replace(cfg, **overrides))


__all__ = ["FAMILY_ARCHITECTURES", "FAMILY_CLASSES", "FAMILY_TITLES", "FamilyConfig", "FamilyNet", "build_family",
           "create_family", "is_family_config"]
