"""The SE-ResNet family: layouts, parameter counts against the paper, the plain twin, the registry."""
from __future__ import annotations

import pytest
import torch

from sevis import load_model
from sevis.core.se import SqueezeExcite
from sevis.errors import ModelError
from sevis.models.params import build_on_meta, count_parameters
from sevis.models.resnet import ResNetConfig, SEResNet, architecture_config, create_resnet, list_architectures


def test_paper_parameter_counts():
    # Paper, Table 2 / ablations: ResNet-50 25.6M, SE-ResNet-50 (r = 16) 28.1M.
    se50 = count_parameters(build_on_meta("se_resnet50"))
    plain50 = count_parameters(build_on_meta("resnet50"))
    assert round(se50 / 1e6, 1) == 28.1
    assert round(plain50 / 1e6, 1) == 25.6


def test_plain_resnet50_has_torchvisions_exact_layout():
    import torchvision
    with torch.device("meta"):
        tv = torchvision.models.resnet50()
    ours = build_on_meta("resnet50")
    assert count_parameters(ours) == count_parameters(tv) == 25_557_032
    tv_shapes = {k: tuple(v.shape) for k, v in tv.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    # the same tensors (ours groups the residual branch in a Sequential, so only the names differ)
    assert sorted(our_shapes.values()) == sorted(tv_shapes.values())


@pytest.mark.parametrize("name", ["se_resnet50", "se_resnet18", "fmnist_se_resnet"])
def test_se_false_gives_the_same_layout_without_se(name):
    se_model = build_on_meta(name)
    plain = build_on_meta(architecture_config(name, se=False))
    se_state = {k: tuple(v.shape) for k, v in se_model.state_dict().items()}
    plain_state = {k: tuple(v.shape) for k, v in plain.state_dict().items()}
    se_keys = {k for k in se_state if ".se." in k}
    assert se_keys and set(plain_state) == set(se_state) - se_keys
    assert all(plain_state[k] == se_state[k] for k in plain_state)
    assert not any(isinstance(m, SqueezeExcite) for m in plain.modules())
    assert sum(isinstance(m, SqueezeExcite) for m in se_model.modules()) == sum(se_model.cfg.layers)


def test_registered_twins():
    for se_name, plain_name in [("se_resnet50", "resnet50"), ("se_resnet18", "resnet18"),
                                ("se_resnet101", "resnet101"), ("fmnist_se_resnet", "fmnist_resnet")]:
        se_cfg, plain_cfg = architecture_config(se_name), architecture_config(plain_name)
        assert se_cfg.se and not plain_cfg.se
        assert se_cfg.to_dict() | {"se": False} == plain_cfg.to_dict()


def test_se_resnet50_is_the_papers():
    cfg = architecture_config("se_resnet50")
    assert (cfg.block, cfg.layers, cfg.stem, cfg.reduction, cfg.integration) == \
        ("bottleneck", (3, 4, 6, 3), "imagenet", 16, "standard")
    m = build_on_meta(cfg)
    assert len(m.blocks()) == 16 and m.num_features == 2048
    assert [blk.se.channels for blk in m.blocks()] == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    assert [blk.se.squeeze_channels for blk in m.layer4] == [128] * 3  # C/r


def test_forward_shapes_small_and_imagenet_stems():
    torch.manual_seed(0)
    small = create_resnet("fmnist_se_resnet").eval()
    with torch.no_grad():
        assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        assert small(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    big = create_resnet("se_resnet18", num_classes=7).eval()
    with torch.no_grad():
        assert big(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_forward_from_and_stem_compose_to_forward():
    torch.manual_seed(0)
    m = create_resnet("fmnist_se_resnet").eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        full = m(x)
        h = m.forward_stem(x)
        torch.testing.assert_close(m.forward_from(h, 0), full)
        for blk in m.blocks()[:3]:
            h = blk(h)
        torch.testing.assert_close(m.forward_from(h, 3), full)


def test_kaiming_init_and_reproducible_seed():
    torch.manual_seed(123)
    a = create_resnet("fmnist_se_resnet")
    torch.manual_seed(123)
    b = create_resnet("fmnist_se_resnet")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    conv = a.layer3[0].residual[0]
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert abs(conv.weight.std().item() - (2.0 / fan_out) ** 0.5) < 0.2 * (2.0 / fan_out) ** 0.5
    assert torch.all(a.bn1.weight == 1) and torch.all(a.bn1.bias == 0)


def test_config_round_trip():
    cfg = architecture_config("fmnist_se_resnet")
    again = ResNetConfig.from_dict({**cfg.to_dict(), "layers": list(cfg.layers), "unknown_key": 1})
    assert again == cfg


def test_registry_errors():
    with pytest.raises(KeyError, match="unknown sevis architecture 'nope'"):
        architecture_config("nope")
    with pytest.raises(KeyError, match="se_resnet50"):  # the message lists the known names
        create_resnet("nope")
    with pytest.raises(ModelError, match="unknown sevis architecture"):
        load_model("sevis:nope", pretrained=False)
    assert {"se_resnet50", "resnet50", "fmnist_se_resnet", "fmnist_resnet"} <= set(list_architectures())


def test_registry_overrides_do_not_mutate_the_registry():
    cfg = architecture_config("se_resnet50", reduction=4)
    assert cfg.reduction == 4 and architecture_config("se_resnet50").reduction == 16


def test_load_model_sevis_architectures_without_weights():
    lm = load_model("sevis:se_resnet18", pretrained=False)
    assert isinstance(lm.model, SEResNet) and not lm.model.training
    assert len(lm.classes) == 1000 and lm.source == "sevis"
    with pytest.raises(ModelError, match="no pretrained weights"):
        load_model("sevis:se_resnet50")  # ImageNet-sized sevis models ship no weights
