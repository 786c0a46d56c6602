"""ExcitationRecorder: for every SE implementation it knows, s is exactly σ(W2·δ(W1·z)).

Each SE class listed in recorder.SE_GATE_ATTRIBUTES has its own independent re-implementation below,
computed in float64 from the block's weights and the block's real input (captured with our own forward
pre-hook), never through the block's own forward. If a class is added to SE_GATE_ATTRIBUTES without a
reference here, test_every_known_se_class_has_a_reference fails.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import pytest
import torch
from torch import nn

from sevis import ExcitationRecorder, find_se_blocks, load_model
from sevis.core.recorder import SE_GATE_ATTRIBUTES, count_hooks
from sevis.models.resnet import ResNetConfig, SEResNet, architecture_config

pytestmark = pytest.mark.timeout(600)


# ----------------------------------------------------------------------------- independent references
def _act(module: nn.Module, v: torch.Tensor) -> torch.Tensor:
    """Apply the activation `module` stands for, re-implemented from its definition (float64)."""
    name = type(module).__name__
    if name == "ReLU":
        return torch.where(v > 0, v, torch.zeros_like(v))
    if name in ("SiLU", "Swish"):
        return v / (1.0 + torch.exp(-v))
    if name == "Sigmoid":
        return 1.0 / (1.0 + torch.exp(-v))
    if name in ("Hardsigmoid", "HardSigmoid"):
        return torch.clamp(v + 3.0, 0.0, 6.0) / 6.0
    if name == "Tanh":
        return (1.0 - torch.exp(-2 * v)) / (1.0 + torch.exp(-2 * v))
    if name == "Identity":
        return v
    raise AssertionError(f"no reference implementation for activation {name}")


def _fc(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """W·z + b for a 1×1 conv or a linear layer, z: N×C_in (float64)."""
    w = layer.weight.detach().double().reshape(layer.weight.shape[0], -1)
    out = z @ w.T
    return out + layer.bias.detach().double() if layer.bias is not None else out


def _pool_nchw(x: torch.Tensor, add_maxpool: bool = False) -> torch.Tensor:
    x = x.double().flatten(2)
    z = x.sum(-1) / x.shape[-1]
    return 0.5 * z + 0.5 * x.max(-1).values if add_maxpool else z


def ref_sevis(m, x):
    flat = x.double().flatten(2)
    z = flat.mean(-1) if m.squeeze == "avg" else flat.max(-1).values
    return _act(m.gate, _fc(m.fc2, _act(m.act, _fc(m.fc1, z))))


def ref_timm_se(m, x):
    assert isinstance(m.bn, nn.Identity), "reference covers SEModule without a norm layer"
    z = _pool_nchw(x, m.add_maxpool)
    return _act(m.gate, _fc(m.fc2, _act(m.act, _fc(m.fc1, z))))


def ref_timm_ese(m, x):
    return _act(m.gate, _fc(m.fc, _pool_nchw(x, m.add_maxpool)))


def ref_timm_se_cl(m, x):  # channels-last: N×H×W×C
    z = x.double().flatten(1, 2).mean(1)
    return _act(m.gate, _fc(m.fc2, _act(m.act, _fc(m.fc1, z))))


def ref_timm_effnet_se(m, x):
    return _act(m.gate, _fc(m.conv_expand, _act(m.act1, _fc(m.conv_reduce, _pool_nchw(x)))))


def ref_legacy_senet(m, x):
    return _act(m.sigmoid, _fc(m.fc2, _act(m.relu, _fc(m.fc1, _pool_nchw(x)))))


def ref_torchvision(m, x):
    return _act(m.scale_activation, _fc(m.fc2, _act(m.activation, _fc(m.fc1, _pool_nchw(x)))))


def _across_channels(conv: nn.Module, z: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """ECA's 1-D cross-correlation over the channel axis of z (N×C), zero- or circularly padded to keep C."""
    w = conv.weight.detach().double().reshape(-1)
    k, c = w.numel(), z.shape[1]
    p = (k - 1) // 2
    if circular:
        padded = torch.cat([z[:, c - p:], z, z[:, :p]], 1) if p else z
    else:
        padded = torch.cat([z.new_zeros(z.shape[0], p), z, z.new_zeros(z.shape[0], p)], 1)
    out = sum(w[j] * padded[:, j:j + c] for j in range(k))
    return out + conv.bias.detach().double() if conv.bias is not None else out


def ref_timm_eca(m, x):
    assert m.conv2 is None, "reference covers ECA without the optional hidden layer"
    return _act(m.gate, _across_channels(m.conv, _pool_nchw(x)))


def ref_timm_ceca(m, x):
    return _act(m.gate, _across_channels(m.conv, _pool_nchw(x), circular=True))


def ref_timm_cbam_channel(m, x):  # CBAM: one MLP on the average- and on the max-pooled features, summed
    flat = x.double().flatten(2)
    mlp = lambda z: _fc(m.fc2, _act(m.act, _fc(m.fc1, z)))  # noqa: E731
    return _act(m.gate, mlp(flat.sum(-1) / flat.shape[-1]) + mlp(flat.max(-1).values))


REFERENCES = {
    "sevis.core.se.SqueezeExcite": ref_sevis,
    "timm.layers.squeeze_excite.SEModule": ref_timm_se,
    "timm.layers.squeeze_excite.EffectiveSEModule": ref_timm_ese,
    "timm.layers.squeeze_excite.SqueezeExciteCl": ref_timm_se_cl,
    "timm.models._efficientnet_blocks.SqueezeExcite": ref_timm_effnet_se,
    "timm.models.senet.SEModule": ref_legacy_senet,
    "torchvision.ops.misc.SqueezeExcitation": ref_torchvision,
    "timm.layers.eca.EcaModule": ref_timm_eca,
    "timm.layers.eca.CecaModule": ref_timm_ceca,
    "timm.layers.cbam.ChannelAttn": ref_timm_cbam_channel,
}


def _se_class(qualname: str) -> type:
    import importlib
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- models
class ChannelsLastNet(nn.Module):
    """timm's SqueezeExciteCl is only used inside channels-last models; construct it directly."""

    def __init__(self) -> None:
        super().__init__()
        from timm.layers.squeeze_excite import SqueezeExciteCl
        self.stem = nn.Linear(3, 32)
        self.se = SqueezeExciteCl(32, rd_ratio=1 / 4)
        self.head = nn.Linear(32, 5)

    def forward(self, x):  # x: N×H×W×3
        return self.head(self.se(torch.relu(self.stem(x))).mean((1, 2)))


def _sevis_variant():
    torch.manual_seed(3)
    cfg = ResNetConfig(block="basic", layers=(1, 1), widths=(8, 16), stem="small", stem_width=8, in_chans=1,
                       num_classes=4, reduction=2, squeeze="max", gate="hardsigmoid", integration="post")
    return SEResNet(cfg).eval()


def _randomise_se_biases(model: nn.Module) -> None:
    """Give zero-initialised SE biases random values, so a wrong bias handling cannot go unnoticed."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for block, _ in find_se_blocks(model):
            for p_name, p in model.get_submodule(block.path).named_parameters():
                if p_name.endswith("bias") and torch.all(p == 0):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def _timm_resnet18_with(attn_layer: str) -> nn.Module:
    """timm's ResNet-18 with another channel gate in every block (no pretrained weights exist for these)."""
    import timm
    return timm.create_model("resnet18", pretrained=False, zero_init_last=False,
                             block_args=dict(attn_layer=attn_layer)).eval()


MODEL_FACTORIES = {
    "sevis:centred": lambda: load_model("embedded-centred", pretrained=False).model,
    "sevis:variant": _sevis_variant,
    "timm:seresnet50": lambda: load_model("timm:seresnet50", pretrained=False).model,
    "timm:ese_vovnet19b_dw": lambda: load_model("timm:ese_vovnet19b_dw", pretrained=False).model,
    "timm:efficientnet_b0": lambda: load_model("timm:efficientnet_b0", pretrained=False).model,
    "timm:mobilenetv3_large_100": lambda: load_model("timm:mobilenetv3_large_100", pretrained=False).model,
    "timm:ghostnet_100": lambda: load_model("timm:ghostnet_100", pretrained=False).model,
    "timm:legacy_senet154": lambda: load_model("timm:legacy_senet154", pretrained=False).model,
    "channels-last": lambda: ChannelsLastNet().eval(),
    "torchvision:efficientnet_b0": lambda: load_model("torchvision:efficientnet_b0", pretrained=False).model,
    "torchvision:mobilenet_v3_small": lambda: load_model("torchvision:mobilenet_v3_small", pretrained=False).model,
    "torchvision:regnet_y_400mf": lambda: load_model("torchvision:regnet_y_400mf", pretrained=False).model,
    "timm:ecaresnet26t": lambda: load_model("timm:ecaresnet26t", pretrained=False).model,
    "timm:resnet18-ceca": lambda: _timm_resnet18_with("ceca"),
    "timm:resnet18-cbam": lambda: _timm_resnet18_with("cbam"),
}

INPUTS = {"sevis:centred": (2, 1, 28, 28), "sevis:variant": (2, 1, 20, 20), "channels-last": (2, 6, 5, 3)}
DEFAULT_INPUT = (2, 3, 64, 64)

# (SE class, model) pairs: every known class appears at least once.
CASES = [
    ("sevis.core.se.SqueezeExcite", "sevis:centred"),
    ("sevis.core.se.SqueezeExcite", "sevis:variant"),
    ("timm.layers.squeeze_excite.SEModule", "timm:seresnet50"),
    ("timm.layers.squeeze_excite.EffectiveSEModule", "timm:ese_vovnet19b_dw"),
    ("timm.layers.squeeze_excite.SqueezeExciteCl", "channels-last"),
    ("timm.models._efficientnet_blocks.SqueezeExcite", "timm:efficientnet_b0"),
    ("timm.models._efficientnet_blocks.SqueezeExcite", "timm:mobilenetv3_large_100"),
    ("timm.models._efficientnet_blocks.SqueezeExcite", "timm:ghostnet_100"),
    ("timm.models.senet.SEModule", "timm:legacy_senet154"),
    ("torchvision.ops.misc.SqueezeExcitation", "torchvision:efficientnet_b0"),
    ("torchvision.ops.misc.SqueezeExcitation", "torchvision:mobilenet_v3_small"),
    ("torchvision.ops.misc.SqueezeExcitation", "torchvision:regnet_y_400mf"),
    ("timm.layers.eca.EcaModule", "timm:ecaresnet26t"),
    ("timm.layers.eca.CecaModule", "timm:resnet18-ceca"),
    ("timm.layers.cbam.ChannelAttn", "timm:resnet18-cbam"),
]


@pytest.fixture(scope="module")
def models():
    """Lazily built models, shared by the tests of this module (each built once)."""
    cache: dict[str, nn.Module] = {}

    def get(key: str) -> nn.Module:
        if key not in cache:
            torch.manual_seed(0)
            factory = MODEL_FACTORIES.get(key) or (lambda: load_model(key, pretrained=False).model)
            cache[key] = factory()
        return cache[key]

    return get


def _input(key: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(INPUTS.get(key, DEFAULT_INPUT), generator=g)
    x[1::2] = x[1::2] * 4 + 1  # make the images of a batch clearly different
    return x


# ----------------------------------------------------------------------------- s = σ(W2·δ(W1·z))
def test_every_known_se_class_has_a_reference_and_a_case():
    assert set(REFERENCES) == set(SE_GATE_ATTRIBUTES)
    assert {cls for cls, _ in CASES} == set(SE_GATE_ATTRIBUTES)


@pytest.mark.parametrize("qualname,key", CASES, ids=[f"{c.rsplit('.', 1)[-1]}-{k}" for c, k in CASES])
def test_recorded_s_equals_independent_recomputation(models, qualname, key):
    model = models(key)
    _randomise_se_biases(model)
    cls = _se_class(qualname)
    # find the SE modules ourselves (isinstance), independently of find_se_blocks
    se_modules = OrderedDict((p, m) for p, m in model.named_modules() if type(m) is cls)
    assert se_modules, f"{key} has no {qualname}"
    inputs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda mod, args, path=p: inputs.__setitem__(path, args[0].detach().clone()))
               for p, m in se_modules.items()]
    # Run in float64 so that the comparison at 1e-6 measures the recorder, not float32 rounding
    # (the recorder stores s as float32; converting the weights back afterwards is lossless).
    try:
        x = _input(key).double()
        model.double()
        with torch.no_grad(), ExcitationRecorder(model) as rec:
            model(x)
    finally:
        model.float()
        for h in handles:
            h.remove()
    recorded = {b.path: (b, rec.excitations[b.name]) for b in rec.blocks if b.kind == cls.__name__}
    assert set(recorded) == set(se_modules), "the recorder must find exactly the SE modules of this class"
    varied = 0.0
    for path, module in se_modules.items():
        block, s = recorded[path]
        expected = REFERENCES[qualname](module, inputs[path]).reshape(x.shape[0], -1)
        assert s.shape == expected.shape == (x.shape[0], block.channels)
        assert s.dtype == torch.float32 and not s.requires_grad
        torch.testing.assert_close(s.double(), expected, atol=1e-6, rtol=0, msg=lambda m: f"{key} {path}: {m}")
        varied = max(varied, float((s[0] - s[1]).abs().max()))
    assert varied > 1e-3, "s must depend on the input (else the check above would be vacuous)"


# ----------------------------------------------------------------------------- discovery and names
@pytest.mark.parametrize("key,count", [
    ("timm:seresnet50", 16), ("timm:efficientnet_b0", 16), ("timm:mobilenetv3_large_100", 8),
    ("timm:legacy_senet154", 50), ("torchvision:efficientnet_b0", 16), ("torchvision:mobilenet_v3_large", 8),
    ("torchvision:regnet_y_400mf", 16), ("sevis:centred", 8),
])
def test_block_counts(models, key, count):
    blocks = [b for b, _ in find_se_blocks(models(key))]
    assert len(blocks) == count
    assert [b.index for b in blocks] == list(range(count))


def _paper_names(layers):
    return [f"SE_{stage + 2}_{b + 1}" for stage, n in enumerate(layers) for b in range(n)]


def test_resnet_blocks_carry_the_papers_names(models):
    blocks = [b for b, _ in find_se_blocks(models("timm:seresnet50"))]
    assert [b.name for b in blocks] == _paper_names((3, 4, 6, 3))
    assert [b.stage for b in blocks] == [2] * 3 + [3] * 4 + [4] * 6 + [5] * 3
    assert [b.channels for b in blocks] == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    assert blocks[0].path == "layer1.0.se" and blocks[0].gate_path == "layer1.0.se.gate"
    assert blocks[-1].path == "layer4.2.se" and blocks[-1].name == "SE_5_3"
    assert blocks[0].squeeze_channels == 16 and blocks[0].kind == "SEModule"

    senet = [b for b, _ in find_se_blocks(models("timm:legacy_senet154"))]
    assert [b.name for b in senet] == _paper_names((3, 8, 36, 3))
    assert senet[0].path == "layer1.0.se_module" and senet[0].gate_path == "layer1.0.se_module.sigmoid"

    ours = [b for b, _ in find_se_blocks(models("sevis:centred"))]
    assert [b.name for b in ours] == _paper_names((2, 2, 2, 2))
    assert [b.channels for b in ours] == [16, 16, 32, 32, 64, 64, 128, 128]
    assert ours[0].path == "layer1.0.se"


def test_other_models_use_module_paths_in_depth_order(models):
    model = models("timm:efficientnet_b0")
    blocks = [b for b, _ in find_se_blocks(model)]
    paths = [p for p, m in model.named_modules() if type(m).__name__ == "SqueezeExcite"]
    assert [b.name for b in blocks] == [b.path for b in blocks] == paths
    assert blocks[0].name == "blocks.0.0.se" and blocks[0].stage == 0
    assert all(b.gate_path == b.path + ".gate" for b in blocks)
    tv = [b for b, _ in find_se_blocks(models("torchvision:mobilenet_v3_small"))]
    assert all(b.name == b.path and b.gate_path.endswith("scale_activation") for b in tv)


def test_model_without_se_blocks():
    plain = load_model("embedded-centred-plain", pretrained=False).model
    with ExcitationRecorder(plain) as rec:
        plain(torch.randn(1, 1, 28, 28))
    assert rec.blocks == [] and list(rec.excitations) == []


# ----------------------------------------------------------------------------- outputs and hooks
@pytest.mark.parametrize("key", ["sevis:centred", "timm:seresnet50", "torchvision:mobilenet_v3_small",
                                 "channels-last"])
def test_recorder_never_changes_outputs(models, key):
    model = models(key)
    x = _input(key, seed=5)
    with torch.no_grad():
        before = model(x)
        with ExcitationRecorder(model) as rec:
            during = model(x)
        after = model(x)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert all(len(s) == len(x) for s in rec.excitations.values())


def test_hooks_are_removed_after_exit_and_after_an_exception(models):
    model = models("sevis:centred")
    x = _input("sevis:centred")
    assert count_hooks(model) == 0
    with ExcitationRecorder(model) as rec:
        assert count_hooks(model) == len(rec.blocks) == 8 and rec.active
        model(x)
    assert count_hooks(model) == 0 and not rec.active

    with pytest.raises(RuntimeError, match="boom"):
        with ExcitationRecorder(model) as rec2:
            model(x)
            raise RuntimeError("boom")
    assert count_hooks(model) == 0
    n = len(rec2.excitations["SE_2_1"])
    model(x)  # a pass after the recorder has ended is not recorded
    assert len(rec2.excitations["SE_2_1"]) == n == 2

    with pytest.raises(RuntimeError):  # an error inside the model's forward
        with ExcitationRecorder(model):
            model(torch.randn(2, 3, 28, 28))  # wrong number of input channels
    assert count_hooks(model) == 0


def test_passes_accumulate_and_pop_streams(models):
    model = models("sevis:centred")
    with torch.no_grad(), ExcitationRecorder(model) as rec:
        model(_input("sevis:centred", 1))
        model(_input("sevis:centred", 2)[:1])
        assert rec.excitations["SE_5_2"].shape == (3, 128)
        popped = rec.pop()
        assert popped["SE_5_2"].shape == (3, 128) and rec.excitations["SE_5_2"].shape == (0, 128)
        model(_input("sevis:centred", 1))
    torch.testing.assert_close(rec.excitations["SE_5_2"], popped["SE_5_2"][:2])


def test_nested_recorders_both_record(models):
    model = models("sevis:centred")
    with torch.no_grad(), ExcitationRecorder(model) as outer:
        model(_input("sevis:centred", 1))
        with ExcitationRecorder(model, blocks=["SE_3_1"]) as inner:
            model(_input("sevis:centred", 2))
    assert len(outer.excitations["SE_3_1"]) == 4 and list(inner.excitations) == ["SE_3_1"]
    torch.testing.assert_close(inner.excitations["SE_3_1"], outer.excitations["SE_3_1"][2:])
    assert count_hooks(model) == 0


def test_unknown_block_names_are_refused(models):
    model = models("sevis:centred")
    with pytest.raises(KeyError, match="SE_9_9"):
        ExcitationRecorder(model, blocks=["SE_9_9"])
    with pytest.raises(KeyError, match="SE_0_1"):
        ExcitationRecorder(model, overrides={"SE_0_1": "identity"})
    assert count_hooks(model) == 0


# ----------------------------------------------------------------------------- threads
def test_threads_sharing_one_model_each_get_only_their_own_excitations(models):
    model = models("sevis:centred")
    n_threads, rounds = 10, 4
    xs = [torch.randn(1 + i % 3, 1, 28, 28, generator=torch.Generator().manual_seed(100 + i)) for i in range(n_threads)]
    alone = []
    with torch.no_grad():
        for x in xs:
            with ExcitationRecorder(model) as rec:
                model(x)
            alone.append(rec.excitations)
    barrier = threading.Barrier(n_threads)
    results: list[list] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            for _ in range(rounds):
                with torch.no_grad(), ExcitationRecorder(model) as rec:
                    model(xs[i])
                results[i].append(rec.excitations)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert count_hooks(model) == 0
    for i in range(n_threads):
        assert len(results[i]) == rounds
        for exc in results[i]:
            assert list(exc) == list(alone[i])
            for name, s in exc.items():
                assert s.shape == alone[i][name].shape  # no rows from other threads
                torch.testing.assert_close(s, alone[i][name], atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- knock-out overrides
def _replace(model: nn.Module, path: str, new: nn.Module) -> nn.Module:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
    return model


class _Scale(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return x * self.value


@pytest.mark.parametrize("key,block", [("sevis:centred", "SE_3_1"), ("timm:seresnet50", "SE_4_2"),
                                       ("torchvision:mobilenet_v3_small", None), ("channels-last", "se")])
def test_identity_override_equals_removing_the_se_block(models, key, block):
    model = models(key)
    blocks = {b.name: b for b, _ in find_se_blocks(model)}
    block = block or list(blocks)[2]
    x = _input(key, seed=7)
    with torch.no_grad():
        with ExcitationRecorder(model, overrides={block: "identity"}) as rec:
            knocked = model(x)
        without = _replace(copy.deepcopy(model), blocks[block].path, nn.Identity())(x)
        clean = model(x)
    scale = float(clean.abs().max())  # random torchvision heads give logits of ~1e-9: compare relatively
    torch.testing.assert_close(knocked, without, atol=1e-6 * scale, rtol=1e-5)
    assert float((knocked - clean).abs().max()) > 1e-3 * scale, "knocking out a block must change the output"
    assert torch.all(rec.excitations[block] == 1)
    assert count_hooks(model) == 0


def test_all_blocks_identity_equals_the_plain_twin(models):
    model = models("sevis:centred")
    plain = SEResNet(architecture_config("fmnist_resnet")).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".se." not in k})
    x = _input("sevis:centred", 3)
    names = [b.name for b, _ in find_se_blocks(model)]
    with torch.no_grad(), ExcitationRecorder(model, overrides={n: "identity" for n in names}, record=False) as rec:
        out = model(x)
    torch.testing.assert_close(out, plain(x).detach(), atol=1e-6, rtol=1e-6)
    assert all(len(s) == 0 for s in rec.excitations.values())  # record=False


def test_scalar_and_vector_overrides(models):
    model = models("sevis:centred")
    blocks = {b.name: b for b, _ in find_se_blocks(model)}
    x = _input("sevis:centred", 4)
    with torch.no_grad():
        with ExcitationRecorder(model, overrides={"SE_4_2": 0.25}) as rec:
            scalar = model(x)
        expected = _replace(copy.deepcopy(model), blocks["SE_4_2"].path, _Scale(0.25))(x)
        torch.testing.assert_close(scalar, expected, atol=1e-6, rtol=1e-6)
        assert torch.all(rec.excitations["SE_4_2"] == 0.25)

        vec = torch.linspace(0, 1, 64)
        with ExcitationRecorder(model, overrides={"SE_4_2": vec}) as rec:
            model(x)
        torch.testing.assert_close(rec.excitations["SE_4_2"], vec.expand(len(x), 64))

        with pytest.raises(ValueError, match="64 channels"):
            with ExcitationRecorder(model, overrides={"SE_4_2": torch.ones(3)}):
                model(x)
    assert count_hooks(model) == 0


def test_vector_override_channels_last(models):
    model = models("channels-last")
    vec = torch.rand(32, generator=torch.Generator().manual_seed(0))
    x = _input("channels-last")
    with torch.no_grad(), ExcitationRecorder(model, overrides={"se": vec}) as rec:
        out = model(x)
        expected = model.head((torch.relu(model.stem(x)) * vec).mean((1, 2)))
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(rec.excitations["se"], vec.expand(len(x), 32))


# ---------------------------------------------------------------------------------------- internals (issue 9)
def _se_implementations():
    from sevis.core.se import SqueezeExcite
    mods = {"sevis": lambda: SqueezeExcite(16, 4)}
    try:
        from timm.layers.squeeze_excite import EffectiveSEModule, SEModule
        from timm.models._efficientnet_blocks import SqueezeExcite as EfficientNetSE
        from timm.models.senet import SEModule as LegacySEModule
        mods.update({"timm SEModule": lambda: SEModule(16), "timm EffectiveSEModule": lambda: EffectiveSEModule(16),
                     "timm SqueezeExcite": lambda: EfficientNetSE(16, rd_ratio=0.25),
                     "legacy SENet SEModule": lambda: LegacySEModule(16, 4)})
    except ImportError:
        pass
    try:
        from torchvision.ops.misc import SqueezeExcitation
        mods["torchvision SqueezeExcitation"] = lambda: SqueezeExcitation(16, 4)
    except ImportError:
        pass
    return mods


@pytest.mark.parametrize("kind", list(_se_implementations()))
def test_capture_internals_for_every_implementation(kind):
    """U, z, δ(W1·z) and U·s are captured; U·s is exactly the module's output; hooks are all removed."""
    from sevis.core.recorder import count_hooks
    torch.manual_seed(0)
    se = _se_implementations()[kind]()
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), se, torch.nn.Conv2d(16, 2, 1)).eval()
    x = torch.randn(2, 3, 9, 9)
    out_seen = {}
    h = se.register_forward_hook(lambda m, a, o: out_seen.setdefault("out", o.detach().clone()))
    with torch.no_grad(), ExcitationRecorder(model, capture_internals=True) as rec:
        model(x)
    h.remove()
    name = rec.blocks[0].name
    u, s = rec.inputs[name], rec.excitations[name]
    assert u.shape == (2, 16, 7, 7)
    torch.testing.assert_close(u * s[:, :, None, None], out_seen["out"], atol=1e-6, rtol=0)
    torch.testing.assert_close(rec.outputs[name], out_seen["out"])
    torch.testing.assert_close(rec.squeezes[name], u.mean((2, 3)), atol=1e-6, rtol=1e-5)
    if kind == "timm EffectiveSEModule":  # one C→C layer: no W1, no hidden layer to show
        assert name not in rec.hiddens
    else:
        assert rec.hiddens[name].shape[0] == 2 and rec.hiddens[name].shape[1] < 16
        assert (rec.hiddens[name] >= 0).all()  # after δ = ReLU
    assert count_hooks(model) == 0
    rec.clear()
    assert not rec.inputs and not rec.hiddens


def test_capture_internals_off_by_default_and_per_call(embedded_random, fmnist_batch):
    from sevis.core.recorder import count_hooks
    model = embedded_random.model
    base = count_hooks(model)
    with ExcitationRecorder(model) as plain:
        assert count_hooks(model) == base + len(plain.blocks)  # only the gates, as before
        model(fmnist_batch)
    assert not plain.inputs
    with ExcitationRecorder(model, capture_internals=True) as a:
        with ExcitationRecorder(model, capture_internals=True) as b:
            pass
        model(fmnist_batch[:1])
    assert a.inputs[a.blocks[0].name].shape[0] == 1 and not b.inputs  # b saw no pass of its own
    assert count_hooks(model) == base


def test_set_channels_override_changes_only_that_channel(embedded_random, fmnist_batch):
    from sevis.core.recorder import SetChannels
    model = embedded_random.model
    with torch.no_grad(), ExcitationRecorder(model) as clean:
        model(fmnist_batch)
    name = clean.blocks[-1].name
    with torch.no_grad(), ExcitationRecorder(model, blocks=[name], overrides={name: SetChannels({5: 0.0})}) as rec:
        model(fmnist_batch)
    s, s0 = rec.excitations[name], clean.excitations[name]
    assert (s[:, 5] == 0).all()
    torch.testing.assert_close(torch.cat([s[:, :5], s[:, 6:]], 1), torch.cat([s0[:, :5], s0[:, 6:]], 1))
    with pytest.raises(ValueError, match="no channel"):
        with torch.no_grad(), ExcitationRecorder(model, overrides={name: SetChannels({10_000: 1.0})}):
            model(fmnist_batch)
