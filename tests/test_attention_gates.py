"""The recorder reads the channel gates users compare with SE, ECA and CBAM's channel attention, in timm models
(random weights: no download): found and named by depth, C read off the block even where the gate does not store
it, s := 1 acts on the network, and ECA's squeeze is captured. (That s is exactly what each gate computes is checked
against independent re-implementations in test_recorder.py.)"""
from __future__ import annotations

import pytest
import timm
import torch

from sevis.analysis.check import check_failed, check_model
from sevis.core.recorder import ExcitationRecorder, find_se_blocks


def _eca():
    torch.manual_seed(0)
    return timm.create_model("ecaresnet26t", pretrained=False, zero_init_last=False).eval()


def _cbam():
    torch.manual_seed(0)
    return timm.create_model("resnet18", pretrained=False, zero_init_last=False,
                             block_args=dict(attn_layer="cbam")).eval()


@pytest.mark.parametrize("build,kind", [(_eca, "EcaModule"), (_cbam, "ChannelAttn")])
def test_eca_and_cbam_gates_are_found_named_and_act(build, kind):
    model = build()
    blocks = [b for b, _ in find_se_blocks(model)]
    assert len(blocks) == 8 and all(b.kind == kind for b in blocks)
    assert [b.name for b in blocks] == [f"SE_{s}_{i}" for s in (2, 3, 4, 5) for i in (1, 2)]
    x = torch.randn(2, 3, 64, 64)
    widths = {}
    handles = [model.get_submodule(b.path).register_forward_pre_hook(
        lambda m, a, n=b.name: widths.__setitem__(n, a[0].shape[1])) for b in blocks]
    with torch.no_grad(), ExcitationRecorder(model) as rec:
        logits = model(x)
    for h in handles:
        h.remove()
    assert all(rec.excitations[b.name].shape == (2, b.channels) and widths[b.name] == b.channels for b in blocks)
    with torch.no_grad(), ExcitationRecorder(model, overrides={"SE_3_1": "identity"}):
        assert not torch.allclose(model(x), logits)  # s := 1 acts on the gate's real output
    with torch.no_grad():
        torch.testing.assert_close(model(x), logits)  # and the hooks are gone afterwards
    table = check_model(model, x)
    # random gates: near-constant is fine
    assert table["runs"].all() and table["matters"].all() and not check_failed(table)


def test_eca_squeeze_is_captured_and_it_has_no_hidden_layer():
    model = _eca()
    with torch.no_grad(), ExcitationRecorder(model, capture_internals=True) as rec:
        model(torch.randn(1, 3, 64, 64))
    torch.testing.assert_close(rec.squeezes["SE_2_1"], rec.inputs["SE_2_1"].mean((2, 3)))
    assert "SE_2_1" not in rec.hiddens
