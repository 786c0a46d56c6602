"""The SE layer: its math, gates, squeeze ops, hidden width, and the four integration strategies."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sevis.core.se import GATES, SqueezeExcite, make_divisible, make_gate
from sevis.models.resnet import INTEGRATIONS, BasicBlock, Bottleneck, ResNetConfig, SEResNet

# Independent definitions of each gate (not the torch modules sevis uses).
REFERENCE_GATES = {
    "sigmoid": lambda v: 1.0 / (1.0 + torch.exp(-v)),
    "hardsigmoid": lambda v: torch.clamp(v / 6.0 + 0.5, 0.0, 1.0),
    "tanh": lambda v: (torch.exp(v) - torch.exp(-v)) / (torch.exp(v) + torch.exp(-v)),
    "relu": lambda v: torch.where(v > 0, v, torch.zeros_like(v)),
}


def reference_excitation(se: SqueezeExcite, x: torch.Tensor, gate: str, squeeze: str = "avg") -> torch.Tensor:
    """s = gate(W2·ReLU(W1·z + b1) + b2) from the layer's weights, in float64, N×C."""
    x = x.double()
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    z = flat.mean(-1) if squeeze == "avg" else flat.max(-1).values
    w1 = se.fc1.weight.double().reshape(se.squeeze_channels, c)
    w2 = se.fc2.weight.double().reshape(c, se.squeeze_channels)
    h = z @ w1.T + se.fc1.bias.double()
    h = torch.where(h > 0, h, torch.zeros_like(h))
    return REFERENCE_GATES[gate](h @ w2.T + se.fc2.bias.double())


def randomise_biases(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)


def test_reference_gates_cover_every_gate():
    assert set(REFERENCE_GATES) == set(GATES)


@pytest.mark.parametrize("gate", sorted(GATES))
@pytest.mark.parametrize("squeeze", ["avg", "max"])
def test_excitation_and_output_match_the_papers_formula(gate, squeeze):
    torch.manual_seed(0)
    se = SqueezeExcite(32, reduction=4, squeeze=squeeze, gate=gate)
    randomise_biases(se)
    x = torch.randn(3, 32, 5, 7)
    s = reference_excitation(se, x, gate, squeeze)  # N×C
    got = se.excitation(x)
    assert got.shape == (3, 32, 1, 1)
    torch.testing.assert_close(got.reshape(3, 32).double(), s, atol=1e-6, rtol=0)
    out = se(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out.double(), x.double() * s[:, :, None, None], atol=1e-5, rtol=1e-6)


def test_gate_ranges():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 4, 4) * 5
    for gate, (lo, hi) in {"sigmoid": (0, 1), "hardsigmoid": (0, 1), "tanh": (-1, 1),
                           "relu": (0, float("inf"))}.items():
        with torch.no_grad():
            s = SqueezeExcite(16, reduction=2, gate=gate).excitation(x)
        assert lo <= float(s.min()) and float(s.max()) <= hi, gate


def test_squeeze_ops_differ():
    torch.manual_seed(0)
    avg = SqueezeExcite(16, reduction=4, squeeze="avg")
    mx = SqueezeExcite(16, reduction=4, squeeze="max")
    mx.load_state_dict(avg.state_dict())
    x = torch.randn(2, 16, 6, 6)
    assert not torch.allclose(avg.excitation(x), mx.excitation(x))
    # avg-pool sees only the mean: two inputs with equal channel means give the same s under avg, not under max
    noise = torch.randn_like(x)
    y = x + (noise - noise.mean((2, 3), keepdim=True))  # same channel means as x, other maxima
    torch.testing.assert_close(avg.excitation(y), avg.excitation(x), atol=1e-6, rtol=0)
    assert not torch.allclose(mx.excitation(y), mx.excitation(x))


def test_invalid_options():
    with pytest.raises(ValueError, match="squeeze"):
        SqueezeExcite(16, squeeze="median")
    with pytest.raises(ValueError, match="gate"):
        SqueezeExcite(16, gate="softmax")
    with pytest.raises(ValueError, match="sigmoid"):
        make_gate("swish")


def test_hidden_width():
    assert SqueezeExcite(256, reduction=16).squeeze_channels == 16
    assert SqueezeExcite(64, reduction=4, divisor=8).squeeze_channels == 16
    assert SqueezeExcite(16, reduction=4, divisor=8).squeeze_channels == 8  # rounded up to one divisor
    assert SqueezeExcite(64, squeeze_channels=10, divisor=8).squeeze_channels == 16  # 10 → 8 would lose > 10%
    assert SqueezeExcite(64, squeeze_channels=12, divisor=4).squeeze_channels == 12
    se = SqueezeExcite(48, reduction=16)
    assert se.fc1.weight.shape == (3, 48, 1, 1) and se.fc2.weight.shape == (48, 3, 1, 1)
    assert sum(p.numel() for p in se.parameters()) == 2 * 48 * 3 + 3 + 48


def test_make_divisible_examples():
    assert make_divisible(4, 8) == 8
    assert make_divisible(100, 8) == 104
    assert make_divisible(10, 8) == 16  # 8 would be more than 10% below 10
    assert make_divisible(32, 8) == 32
    assert make_divisible(3, 1) == 3
    assert make_divisible(5, 8, min_value=16) == 16


@settings(max_examples=300, deadline=None)
@given(value=st.floats(0.5, 5000), divisor=st.integers(1, 64))
def test_make_divisible_properties(value, divisor):
    out = make_divisible(value, divisor)
    assert out % divisor == 0
    assert out >= divisor
    assert out >= 0.9 * value
    assert out <= value + divisor  # never more than one divisor above


# ------------------------------------------------------------------------------ integration strategies
def _cfg(integration: str, block: str = "basic") -> ResNetConfig:
    return ResNetConfig(block=block, layers=(1, 1), widths=(8, 16), stem="small", stem_width=8, in_chans=1,
                        num_classes=5, reduction=2, integration=integration)


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_block_places_se_where_the_strategy_says(block_cls, integration):
    torch.manual_seed(0)
    block_name = "basic" if block_cls is BasicBlock else "bottleneck"
    blk = block_cls(8, 8, 2, _cfg(integration, block_name)).eval()
    randomise_biases(blk.se)
    x = torch.randn(2, 8, 6, 6)
    res, sc, se = blk.residual, blk.downsample, blk.se
    expected = {
        "standard": lambda: torch.relu(se(res(x)) + sc(x)),
        "pre": lambda: torch.relu(res(se(x)) + sc(x)),
        "post": lambda: torch.relu(se(res(x) + sc(x))),
        "identity": lambda: torch.relu(res(x) + se(sc(x))),
        "3x3": lambda: torch.relu(res[blk.after_3x3:](se(res[:blk.after_3x3](x))) + sc(x)),
    }[integration]()
    out = blk(x)
    assert out.shape == (2, 8 * block_cls.expansion, 3, 3)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    # PRE sees the block's input channels, 3x3 the branch's inner width (8 here), the others its output channels
    assert se.channels == (8 if integration in ("pre", "3x3") else 8 * block_cls.expansion)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_the_four_strategies_give_different_outputs(block):
    torch.manual_seed(0)
    models = {i: SEResNet(_cfg(i, block)).eval() for i in INTEGRATIONS}
    shared = models["standard"].state_dict()
    for name, m in models.items():  # same non-SE weights everywhere, so only SE placement differs
        own = m.state_dict()
        m.load_state_dict({k: (shared[k] if k in shared and shared[k].shape == v.shape else v) for k, v in own.items()})
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        outs = {i: m(x) for i, m in models.items()}
    for i, out in outs.items():
        assert out.shape == (3, 5), i
        assert torch.isfinite(out).all()
    for a, b in itertools.combinations(INTEGRATIONS, 2):
        assert not torch.allclose(outs[a], outs[b], atol=1e-5), (a, b)


def test_unknown_integration():
    with pytest.raises(ValueError, match="integration"):
        SEResNet(_cfg("sideways"))
