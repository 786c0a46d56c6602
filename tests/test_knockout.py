"""SE knock-out: overrides, the prefix-reusing sweep against a full re-run, and identity against removing SE."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sevis import ExcitationRecorder, load_model
from sevis.analysis.inference import collect_statistics, split_batches
from sevis.analysis.knockout import knockout_overrides, knockout_sweep, residual_pipeline
from sevis.core.recorder import count_hooks, find_se_blocks
from sevis.data.fashion_mnist import Split, load_reference_set


@pytest.fixture(scope="module")
def reference_batches(embedded):
    """300 reference images (30 per class), preprocessed once, in batches of 100."""
    ref = load_reference_set()
    idx = np.concatenate([np.flatnonzero(ref.labels == k)[:30] for k in range(len(ref.classes))])
    return list(split_batches(embedded, Split(ref.images[idx], ref.labels[idx], ref.classes), 100))


@pytest.fixture(scope="module")
def reference_stats(embedded, reference_batches):
    """(ExcitationStats, accuracy figures) of the shipped model over `reference_batches`."""
    return collect_statistics(embedded, reference_batches)


@pytest.fixture(scope="module")
def reference_means(reference_stats):
    """Block -> the C-vector mean of s over `reference_batches` (what mode="mean" knocks in)."""
    stats, _ = reference_stats
    return {b: stats.overall_mean(b) for b in stats.blocks}


@pytest.fixture(scope="module")
def timm_models():
    """Random-weight timm ResNet-shaped SE models (zero_init_last off, see zoo) in eval mode."""
    torch.manual_seed(0)
    return {spec: load_model(spec, pretrained=False) for spec in ("timm:seresnet18", "timm:legacy_seresnet18")}


def _without_se(model: nn.Module) -> nn.Module:
    """Return a copy of `model` whose SE modules are nn.Identity: what s := 1 must equal."""
    clone = copy.deepcopy(model)
    for block, _ in find_se_blocks(clone):
        *parent_path, attr = block.path.split(".")
        parent = clone.get_submodule(".".join(parent_path))
        setattr(parent, attr, nn.Identity())
    assert not find_se_blocks(clone)
    return clone


@pytest.mark.parametrize("spec", ["embedded", "timm:seresnet18", "timm:legacy_seresnet18"])
def test_identity_knockout_of_every_block_equals_the_network_without_se(spec, embedded, timm_models):
    loaded = embedded if spec == "embedded" else timm_models[spec]
    model = loaded.model
    g = torch.Generator().manual_seed(1)
    x = torch.randn((4, 1, 28, 28) if spec == "embedded" else (4, 3, 64, 64), generator=g)
    names = [b.name for b, _ in find_se_blocks(model)]
    with torch.inference_mode():
        clean = model(x)
        with ExcitationRecorder(model, overrides=knockout_overrides(names)) as rec:
            knocked = model(x)
        reference = _without_se(model)(x)
    assert torch.allclose(knocked, reference, atol=1e-5), (knocked - reference).abs().max()
    assert not torch.allclose(knocked, clean, atol=1e-3)  # the gates did something to knock out
    assert all(torch.equal(s, torch.ones_like(s)) for s in rec.excitations.values())
    assert count_hooks(model) == 0


def test_mean_knockout_sets_s_to_the_reference_mean(embedded, reference_batches, reference_means):
    means = reference_means
    x = reference_batches[0][0][:8]
    with torch.inference_mode(), ExcitationRecorder(embedded.model,
                                                    overrides=knockout_overrides(["SE_4_1"], "mean", means)) as rec:
        embedded.model(x)
    s = rec.excitations
    assert torch.allclose(s["SE_4_1"], torch.as_tensor(means["SE_4_1"], dtype=torch.float32).expand(8, -1))
    assert s["SE_4_2"].std(0).mean() > 0.01  # later blocks still respond to each image


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["identity", "mean"])
def test_sweep_reusing_the_prefix_equals_a_full_rerun(embedded, reference_batches, reference_stats, reference_means,
                                                      mode):
    means = reference_means if mode == "mean" else None
    fast = knockout_sweep(embedded, reference_batches, mode, means, reuse_prefix=True)
    slow = knockout_sweep(embedded, reference_batches, mode, means, reuse_prefix=False)
    assert list(fast["block"]) == ["none"] + [b.name for b, _ in find_se_blocks(embedded.model)]
    assert np.array_equal(fast["accuracy"].to_numpy(), slow["accuracy"].to_numpy())
    # the baseline is the model's plain accuracy on the same images
    _, figures = reference_stats
    assert fast.loc[0, "accuracy"] == pytest.approx(figures["accuracy"])
    assert np.allclose(fast["change"], fast["accuracy"] - fast.loc[0, "accuracy"])
    # knocking a gate out costs accuracy somewhere: the shipped gates do work
    assert fast["change"].min() < 0
    assert count_hooks(embedded.model) == 0


@pytest.mark.parametrize("spec", ["timm:seresnet18", "timm:legacy_seresnet18"])
def test_residual_pipeline_reproduces_timm_forward_and_sweep(spec, timm_models):
    loaded = timm_models[spec]
    model = loaded.model
    pipe = residual_pipeline(model)
    assert pipe is not None and len(pipe.blocks) == 8
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 3, 64, 64, generator=g)
    with torch.inference_mode():
        assert torch.allclose(pipe.run_from(pipe.stem(x), 0), model(x), atol=1e-5)
        labels = model(x).argmax(1).numpy()  # the clean pass is right by construction
    batches = [(x, labels)]
    fast = knockout_sweep(loaded, batches, reuse_prefix=True)
    slow = knockout_sweep(loaded, batches, reuse_prefix=False)
    assert fast.loc[0, "accuracy"] == 1.0
    assert np.array_equal(fast["accuracy"].to_numpy(), slow["accuracy"].to_numpy())


def test_non_resnet_models_fall_back_to_full_reruns():
    loaded = load_model("torchvision:mobilenet_v3_small", pretrained=False)
    assert residual_pipeline(loaded.model) is None
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        labels = loaded.model(x).argmax(1).numpy()
    sweep = knockout_sweep(loaded, [(x, labels)])
    assert len(sweep) == 1 + len(find_se_blocks(loaded.model)) and sweep.loc[0, "accuracy"] == 1.0


def test_knockout_overrides_reject_bad_requests(embedded):
    with pytest.raises(ValueError, match="mean excitation"):
        knockout_overrides(["SE_2_1"], "mean")
    with pytest.raises(ValueError, match="unknown knock-out mode"):
        knockout_overrides(["SE_2_1"], "zero")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="SE_9_9"):
        ExcitationRecorder(embedded.model, overrides=knockout_overrides(["SE_9_9"]))
