"""Model zoo: specs, offline behaviour, checkpoints (safetensors + card, .pt), wrong architectures."""
from __future__ import annotations

import json
import os

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sevis import ModelError, list_se_models, load_model
from sevis.core.recorder import find_se_blocks
from sevis.data.fashion_mnist import FASHION_MNIST_CLASSES
from sevis.models.checkpoint import read_card, save_checkpoint
from sevis.models.resnet import ResNetConfig, SEResNet
from sevis.models.zoo import EMBEDDED, PRETRAINED_DIR, TIMM_SE_MODELS, TORCHVISION_SE_MODELS
from sevis.names import NO_SE_GROUP


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------ specs
def test_list_se_models_groups_and_specs():
    specs = list_se_models()
    from sevis.names import ABLATION_GROUP, FAMILY_GROUP, SNAPSHOT_GROUP, trained_ablations, trained_families
    assert list(specs) == ["embedded", "sevis", "timm", "torchvision", NO_SE_GROUP, ABLATION_GROUP, SNAPSHOT_GROUP,
                           FAMILY_GROUP]
    assert specs[FAMILY_GROUP] == [f"family:{n}" for n in trained_families()]
    assert specs[ABLATION_GROUP] == [f"ablation:{n}" for n in trained_ablations()]
    assert specs["embedded"] == [k for k in EMBEDDED if not k.endswith("-plain")]
    assert "sevis:se_resnet50" in specs["sevis"] and "sevis:resnet50" not in specs["sevis"]
    assert {"embedded-plain", "sevis:resnet50"} <= set(specs[NO_SE_GROUP])
    assert specs["timm"] == [f"timm:{n}" for n in TIMM_SE_MODELS]
    assert specs["torchvision"] == [f"torchvision:{n}" for n in TORCHVISION_SE_MODELS]
    for spec in specs["timm"] + specs["torchvision"]:
        prefix, _, name = spec.partition(":")
        assert name and prefix in ("timm", "torchvision")


def test_listed_timm_and_torchvision_models_exist_and_carry_se():
    import timm
    import torchvision
    known = set(timm.list_models())
    assert all(n in known for n in TIMM_SE_MODELS)
    assert all(n in torchvision.models.list_models() for n in TORCHVISION_SE_MODELS)
    small = load_model("timm:mobilenetv3_large_100", pretrained=False)
    assert find_se_blocks(small.model) and len(small.classes) == 1000
    tv = load_model("torchvision:mobilenet_v3_small", pretrained=False)
    assert find_se_blocks(tv.model) and tv.classes[0] == "tench" and tv.source == "torchvision"


def test_embedded_random_weights(embedded_random):
    lm = embedded_random
    assert isinstance(lm.model, SEResNet) and not lm.model.training
    assert lm.classes == list(FASHION_MNIST_CLASSES) and lm.dataset == "fashion-mnist"
    x = lm.preprocess(Image.new("RGB", (50, 40), (255, 255, 255)))
    assert x.shape == (1, 36, 36) and lm.data_variant == "context"  # random weights, the same preprocessing
    plain = load_model("embedded-plain", pretrained=False)
    assert not find_se_blocks(plain.model) and plain.name == "fmnist_resnet50"
    centred = load_model("embedded-centred", pretrained=False)
    assert centred.preprocess(Image.new("RGB", (50, 40))).shape == (1, 28, 28) and centred.data_variant == "centred"


@pytest.mark.parametrize("spec,match", [
    ("nope", "unknown model 'nope'"),
    ("timm:no_such_model_xyz", "unknown timm model"),
    ("torchvision:no_such_model_xyz", "unknown torchvision model"),
    ("sevis:no_such_arch", "unknown sevis architecture"),
    ("missing_file.safetensors", "checkpoint not found"),
])
def test_unknown_specs(spec, match):
    with pytest.raises(ModelError, match=match):
        load_model(spec, pretrained=False)


def test_timm_model_random_weights_are_informative():
    # zero_init_last=False: with timm's default zero-initialised last BN every image would get the same s
    lm = load_model("timm:seresnet18", pretrained=False)
    bn = lm.model.layer1[0].bn2
    assert not torch.all(bn.weight == 0)
    assert lm.source == "timm" and "preprocessing" in lm.card
    x = lm.preprocess(Image.new("RGB", (300, 200)))
    assert x.shape == (3, 224, 224)


# ------------------------------------------------------------------------------ offline
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and empty caches for huggingface_hub (timm) and torch.hub (torchvision)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    try:  # huggingface_hub reads its environment once, at import
        import huggingface_hub.constants as hf
        monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    except ImportError:
        pass
    return tmp_path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spec", ["timm:seresnet50", "torchvision:mobilenet_v3_small"])
def test_pretrained_weights_offline_give_one_clear_error(offline, spec):
    with pytest.raises(ModelError) as info:
        load_model(spec, pretrained=True)
    msg = str(info.value)
    assert spec in msg and "cannot be had" in msg and "cache" in msg
    assert "offline" in msg and "Error" not in msg  # the cause in words, not an exception's name
    assert "--" not in msg  # the app shows it too: no command-line flags there
    hint = info.value.cli_hint  # the CLI adds what to type instead
    assert "--arch" in hint and ".safetensors" in hint
    assert "\n" not in msg + hint


# ------------------------------------------------------------------------------ checkpoints
def test_safetensors_checkpoint_round_trip(tiny_checkpoint, embedded_random):
    card = read_card(tiny_checkpoint)
    assert ResNetConfig.from_dict(card["architecture"]) == embedded_random.model.cfg
    lm = load_model(str(tiny_checkpoint))
    assert lm.source == "checkpoint" and lm.name == "tiny" and lm.classes == list(FASHION_MNIST_CLASSES)
    assert _same_weights(lm.model, embedded_random.model) and not lm.model.training
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x), embedded_random.model(x))


def test_card_classes_and_preprocessing_are_used(tmp_path, embedded_random):
    out = tmp_path / "custom.safetensors"
    classes = [f"class {i}" for i in range(10)]
    save_checkpoint(embedded_random.model, out, {"architecture": embedded_random.model.cfg.to_dict(),
                                                 "classes": classes, "name": "custom",
                                                 "preprocessing": {"resize": 32, "mean": [0.5], "std": [0.5]}})
    lm = load_model(out)
    assert lm.classes == classes and lm.name == "custom"
    assert lm.preprocess(Image.new("RGB", (64, 64))).shape == (1, 32, 32)


def test_pt_state_dict_through_weights_only(tmp_path, embedded_random):
    path = tmp_path / "weights.pt"
    torch.save(embedded_random.model.state_dict(), path)
    with pytest.raises(ModelError, match="--arch"):  # no card beside it
        load_model(path)
    lm = load_model(str(path), arch="sevis:fmnist_se_resnet50")
    assert _same_weights(lm.model, embedded_random.model)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": embedded_random.model.state_dict()}, wrapped)
    assert _same_weights(load_model(wrapped, arch="sevis:fmnist_se_resnet50").model, embedded_random.model)


def test_pt_with_python_objects_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": Evil()}, path)
    with pytest.raises(ModelError, match="refused"):
        load_model(path, arch="sevis:fmnist_se_resnet50")
    assert not marker.exists()


def test_wrong_architecture_is_one_clear_error(tiny_checkpoint, tmp_path):
    with pytest.raises(ModelError, match="does not fit this architecture"):
        load_model(tiny_checkpoint, arch="sevis:fmnist_resnet")  # SE weights into the plain twin
    with pytest.raises(ModelError, match="does not fit"):
        load_model(tiny_checkpoint, arch="sevis:se_resnet18")
    with pytest.raises(ModelError, match="does not fit"):
        load_model(tiny_checkpoint, arch="timm:seresnet18")
    # a card that names another architecture than the weights hold
    card = read_card(tiny_checkpoint)
    other = tmp_path / "other.safetensors"
    other.write_bytes(tiny_checkpoint.read_bytes())
    (tmp_path / "other.json").write_text(json.dumps({**card, "architecture": {**card["architecture"], "se": False}}))
    with pytest.raises(ModelError, match="does not fit"):
        load_model(other)
    with pytest.raises(ModelError, match="unknown architecture"):
        load_model(tiny_checkpoint, arch="keras:resnet")


def test_broken_checkpoint_files(tmp_path, tiny_checkpoint):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load_model(empty, arch="sevis:fmnist_se_resnet50")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:1000])
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_model(truncated, arch="sevis:fmnist_se_resnet50")
    bad_card = tmp_path / "badcard.safetensors"
    bad_card.write_bytes(tiny_checkpoint.read_bytes())
    (tmp_path / "badcard.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(bad_card)


def test_timm_architecture_with_a_local_weights_file(tmp_path):
    torch.manual_seed(0)
    source = load_model("timm:mobilenetv3_small_050", pretrained=False).model
    with torch.no_grad():  # make the file's weights distinguishable from a fresh random init
        for p in source.parameters():
            p.add_(0.01)
    path = tmp_path / "mnv3.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    lm = load_model(str(path), arch="timm:mobilenetv3_small_050")
    assert lm.source == "timm" and lm.spec == str(path)
    assert _same_weights(lm.model, source)
    assert len(find_se_blocks(lm.model)) == 9 and len(lm.classes) == 1000
    with pytest.raises(ModelError, match="does not fit"):
        load_model(str(path), arch="timm:seresnet18")


# ------------------------------------------------------------------------------ the shipped models
def test_shipped_model_loads(embedded):
    assert embedded.spec == "embedded" and embedded.source == "embedded" and not embedded.model.training
    assert embedded.classes == list(FASHION_MNIST_CLASSES)
    card = embedded.card
    for key in ("architecture", "classes", "preprocessing", "seed", "command", "training"):
        assert key in card, key
    assert card["architecture"]["se"] is True
    assert embedded.preprocess(Image.new("RGB", (100, 80), (255, 255, 255))).shape == (1, 36, 36)
    assert card["dataset"]["variant"] == "context" and card["preprocessing"]["canvas"] == 36
    assert (PRETRAINED_DIR / "FASHION-MNIST-LICENSE").exists()


def test_shipped_plain_twin_loads(embedded):
    plain = load_model("embedded-plain")
    assert not find_se_blocks(plain.model)
    assert ResNetConfig.from_dict(plain.card["architecture"]) == \
        ResNetConfig.from_dict({**embedded.card["architecture"], "se": False})
    assert plain.card["seed"] == embedded.card["seed"]
    assert EMBEDDED["embedded-plain"] == plain.name


def test_shown_name_is_the_spec_for_shipped_models_and_the_name_otherwise(tmp_path):
    # One name per model in the app's header, the Tour, the handout and the lecture deck.
    for spec in ("embedded", "embedded-plain"):
        assert load_model(spec).shown_name == spec
    family = load_model("family:se-vgg")
    assert family.spec not in EMBEDDED and family.shown_name == family.name and family.name != "embedded"
