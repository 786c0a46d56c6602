"""Checkpoints and export names are untrusted input.

* A .pt/.pth/.bin/.ckpt pickle that would run code when unpickled is refused with one clear ModelError,
  and the code never runs: each malicious file here would create a marker file, and the marker must not
  appear (the last test unpickles one unsafely to prove the marker mechanism really works).
* Truncated or corrupt safetensors files, weights of another architecture, missing/unexpected/reshaped
  tensors and malformed model cards each give one clear ModelError; a card asking for an absurd
  architecture is refused before any memory is allocated.
* Export file names derived from user input are sanitised, never trusted as paths.
"""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from sevis import load_model
from sevis.errors import ModelError
from sevis.models.checkpoint import read_state_dict, save_checkpoint
from sevis.models.zoo import load_checkpoint

pytestmark = pytest.mark.timeout(300)



# ---------------------------------------------------------------------------------------------- payloads
class OpenFile:
    """Unpickling calls open(marker, 'w'): creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class SystemCall:
    """Unpickling calls os.system('touch marker')."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class Eval:
    """Unpickling calls eval(...) on a string that creates the marker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


PAYLOADS = {"open": OpenFile, "os.system": SystemCall, "eval": Eval}


def write_malicious(path: Path, marker: Path, payload: str = "open", container: str = "torch-zip") -> Path:
    evil = PAYLOADS[payload](marker)
    obj = {"conv.weight": torch.zeros(2, 2), "evil": evil}
    if container == "torch-zip":
        torch.save(obj, path)
    elif container == "torch-legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    elif container == "state_dict-wrapper":
        torch.save({"state_dict": {"w": torch.zeros(1)}, "optimizer": evil}, path)
    elif container == "plain-pickle":
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    else:
        raise ValueError(container)
    return path


@pytest.fixture(scope="module")
def small():
    """The embedded architecture with random weights: enough to make real checkpoints quickly."""
    torch.manual_seed(0)
    return load_model("embedded", pretrained=False)


def sevis_checkpoint(small, folder: Path, name: str = "model.safetensors") -> Path:
    card = {"name": "t", "architecture": small.model.cfg.to_dict(), "classes": small.classes,
            "preprocessing": {"resize": 28, "mean": [0.2860], "std": [0.3530]}}
    return save_checkpoint(small.model, folder / name, card)


# ---------------------------------------------------------------------------------------------- pickles
@pytest.mark.parametrize("container", ["torch-zip", "torch-legacy", "state_dict-wrapper", "plain-pickle"])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, container):
    marker = tmp_path / "PWNED"
    path = write_malicious(tmp_path / "weights.pt", marker, payload, container)
    with pytest.raises(ModelError) as info:
        read_state_dict(path)
    msg = str(info.value)
    assert "refused to load weights.pt" in msg and "could run code" in msg
    assert "weights_only=False" not in msg and "\x1b[" not in msg, "never advise the unsafe load"
    assert "\n" not in msg
    assert not marker.exists(), "the pickle's code ran"


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt"])
def test_every_pickle_suffix_and_entry_point_refuses(tmp_path, suffix):
    marker = tmp_path / "PWNED"
    path = write_malicious(tmp_path / f"weights{suffix}", marker)
    attempts = [
        lambda: read_state_dict(path),
        lambda: load_model(str(path)),
        lambda: load_checkpoint(path),
        lambda: load_checkpoint(path, arch="sevis:fmnist_se_resnet50"),
        lambda: load_checkpoint(path, arch="torchvision:mobilenet_v3_small"),
    ]
    for attempt in attempts:
        with pytest.raises(ModelError):
            attempt()
        assert not marker.exists()


def test_malicious_pickle_named_safetensors(tmp_path):
    marker = tmp_path / "PWNED"
    write_malicious(tmp_path / "weights.pt", marker).rename(tmp_path / "weights.safetensors")
    for attempt in (lambda: read_state_dict(tmp_path / "weights.safetensors"),
                    lambda: load_checkpoint(tmp_path / "weights.safetensors", arch="sevis:fmnist_se_resnet50")):
        with pytest.raises(ModelError, match="not a valid safetensors file"):
            attempt()
    assert not marker.exists()


def test_refusal_holds_even_when_torch_is_told_to_skip_weights_only(tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 must not turn the safe load into an unsafe one."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    path = write_malicious(tmp_path / "weights.pt", marker, "os.system")
    with pytest.raises(ModelError, match="refused"):
        read_state_dict(path)
    assert not marker.exists()


def test_cli_refuses_with_one_line_and_nonzero_exit(tmp_path, capsys):
    from PIL import Image

    from sevis.cli.main import main
    marker = tmp_path / "PWNED"
    path = write_malicious(tmp_path / "weights.pt", marker)
    image = tmp_path / "x.png"
    Image.new("RGB", (28, 28)).save(image)
    for arch in ([], ["--arch", "sevis:fmnist_se_resnet50"]):
        code = main(["predict", "--model", str(path), *arch, str(image)])
        err = capsys.readouterr().err
        assert code != 0
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not marker.exists()
    assert "refused to load weights.pt" in err


def test_a_plain_tensor_state_dict_pt_still_loads(tmp_path, small):
    """The refusal is about code, not about .pt files: a clean state dict loads (also under 'state_dict')."""
    state = small.model.state_dict()
    torch.save(state, tmp_path / "clean.pt")
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    for name in ("clean.pt", "wrapped.pth"):
        loaded = load_checkpoint(tmp_path / name, arch="sevis:fmnist_se_resnet50")
        x = torch.randn(2, 1, 28, 28)
        with torch.no_grad():
            assert torch.equal(loaded.model(x), small.model(x))


def test_the_payloads_really_run_when_unpickled_unsafely(tmp_path):
    """Control: the same files do create the marker under an unsafe load, so the tests above mean something."""
    for payload in sorted(PAYLOADS):
        marker = tmp_path / f"PWNED-{payload}"
        path = write_malicious(tmp_path / f"{payload}.pt", marker, payload)
        torch.load(path, weights_only=False)
        assert marker.exists(), payload


# ---------------------------------------------------------------------------------------------- safetensors
def test_truncated_safetensors(tmp_path, small):
    good = sevis_checkpoint(small, tmp_path)
    data = good.read_bytes()
    header = int.from_bytes(data[:8], "little")
    for cut in (1, 7, 8, 9, 8 + header // 2, 8 + header, 8 + header + 10, len(data) // 2, len(data) - 1):
        bad = tmp_path / "cut.safetensors"
        bad.write_bytes(data[:cut])
        (tmp_path / "cut.json").write_text(good.with_suffix(".json").read_text())
        with pytest.raises(ModelError, match=r"cut\.safetensors is not a valid safetensors file") as info:
            load_model(str(bad))
        assert "\n" not in str(info.value)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_corrupted_safetensors_never_escape_as_other_errors(tmp_path_factory, small, data):
    folder = tmp_path_factory.mktemp("st")
    good = sevis_checkpoint(small, folder)
    raw = bytearray(good.read_bytes())
    header = int.from_bytes(raw[:8], "little")
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, 8 + header - 1))  # the header: offsets, dtypes, shapes, JSON syntax
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    good.write_bytes(bytes(raw))
    try:
        loaded = load_model(str(good))
    except ModelError as e:
        assert str(e).strip() and "\n" not in str(e)
    else:  # a flip that kept the file valid (e.g. inside a tensor name we never read back): still usable
        assert isinstance(loaded.model, torch.nn.Module)


def test_header_claiming_more_data_than_the_file_holds(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]}})
    pad = (8 - len(header) % 8) % 8
    data = len(header + " " * pad).to_bytes(8, "little") + (header + " " * pad).encode() + b"\0" * 64
    path = tmp_path / "huge.safetensors"
    path.write_bytes(data)
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        read_state_dict(path)


def test_empty_missing_and_unsupported_files(tmp_path):
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load_model(str(tmp_path / "empty.safetensors"))
    with pytest.raises(ModelError, match="not found"):
        load_model(str(tmp_path / "nope.safetensors"))
    (tmp_path / "weights.onnx").write_bytes(b"x")
    with pytest.raises(ModelError, match="unsupported checkpoint type"):
        load_checkpoint(tmp_path / "weights.onnx", arch="sevis:fmnist_se_resnet50")


# ---------------------------------------------------------------------------------------------- architecture
def test_weights_of_another_architecture(tmp_path, small):
    plain = load_model("embedded-plain", pretrained=False)
    save_file({k: v.contiguous() for k, v in plain.model.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    # the SE model's card beside the plain model's weights
    (tmp_path / "plain.json").write_text(json.dumps({"architecture": small.model.cfg.to_dict()}))
    with pytest.raises(ModelError,
                       match=r"plain\.safetensors does not fit this architecture: .*missing \(e\.g\. .*\.se\."):
        load_model(str(tmp_path / "plain.safetensors"))
    # a sevis file loaded as a torchvision architecture
    good = sevis_checkpoint(small, tmp_path)
    with pytest.raises(ModelError, match="does not fit this architecture"):
        load_checkpoint(good, arch="torchvision:mobilenet_v3_small")
    with pytest.raises(ModelError, match="unknown architecture"):
        load_checkpoint(good, arch="keras:resnet")
    with pytest.raises(ModelError):
        load_checkpoint(good, arch="sevis:no_such_arch")


@pytest.mark.parametrize("edit,expected", [
    ("missing", r"tensors 2 missing \(e\.g\. "),
    ("unexpected", r"1 unexpected \(e\.g\. extra\.weight\)"),
    ("reshaped", r"1 with other shapes \(e\.g\. fc\.weight: \(3, "),
])
def test_missing_unexpected_and_reshaped_tensors(tmp_path, small, edit, expected):
    good = sevis_checkpoint(small, tmp_path)
    state = read_state_dict(good)
    if edit == "missing":
        for key in list(state)[-2:]:
            del state[key]
    elif edit == "unexpected":
        state["extra.weight"] = torch.zeros(3)
    else:
        state["fc.weight"] = torch.zeros(3, state["fc.weight"].shape[1])
    save_file(state, str(good))
    with pytest.raises(ModelError, match=r"model\.safetensors does not fit this architecture: " + r".*" + expected):
        load_model(str(good))


@pytest.mark.parametrize("arch_edit", [
    {"block": "weird"}, {"layers": "abc"}, {"layers": 5}, {"widths": [-1, 2, 3, 4]}, {"integration": "sideways"},
    {"gate": "nope"}, {"reduction": 0}, {"layers": [10**9, 1, 1, 1]},
])
def test_malformed_model_cards(tmp_path, small, arch_edit):
    good = sevis_checkpoint(small, tmp_path)
    card = json.loads(good.with_suffix(".json").read_text())
    card["architecture"].update(arch_edit)
    good.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="model card describes an architecture sevis cannot build"):
        load_model(str(good))


@pytest.mark.parametrize("card_text", ["[1, 2]", "{not json", '{"architecture": "resnet"}',
                                       '{"architecture": {}, "classes": 5}', "\udcff"])
def test_model_cards_that_are_not_cards(tmp_path, small, card_text):
    good = sevis_checkpoint(small, tmp_path)
    good.with_suffix(".json").write_bytes(card_text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelError):
        load_model(str(good))


def test_card_with_wrong_class_count(tmp_path, small):
    good = sevis_checkpoint(small, tmp_path)
    card = json.loads(good.with_suffix(".json").read_text())
    card["classes"] = ["a", "b"]
    good.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="names 2 classes, the model has 10 outputs"):
        load_model(str(good))


def _peak_kb() -> int | None:
    try:
        return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1])
    except (OSError, StopIteration):
        return None


def test_card_asking_for_a_huge_model_is_refused_before_allocating(tmp_path, small):
    """widths of 20000 channels would be ~15 GB of weights: refused from shapes alone, on the meta device."""
    good = sevis_checkpoint(small, tmp_path)
    card = json.loads(good.with_suffix(".json").read_text())
    card["architecture"]["widths"] = [16, 32, 64, 20000]
    good.with_suffix(".json").write_text(json.dumps(card))
    try:
        open("/proc/self/clear_refs", "w").write("5")
        before = _peak_kb()
    except OSError:
        before = None
    with pytest.raises(ModelError, match="does not fit this architecture"):
        load_model(str(good))
    if before is not None:
        assert (_peak_kb() - before) / 1024 < 200, "the huge model was allocated before being refused"


# ---------------------------------------------------------------------------------------------- export names
export = pytest.importorskip("sevis.figures.export",
                             reason="sevis/figures/export.py (the app helper's) is not there yet")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def _assert_safe(name: str, folder: Path) -> None:
    """A plain file name: no separators, no '..', no leading dot, short, and it stays inside `folder`."""
    assert SAFE_NAME.match(name), name
    assert name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
    assert os.path.basename(name) == name and not os.path.isabs(name)
    assert len(name) <= 100
    assert (folder / name).resolve().parent == folder.resolve()


def _assert_portable(name: str) -> None:
    """Windows also ignores trailing dots and treats CON/NUL/... with any extension as a device."""
    assert not name.endswith("."), name
    assert name.split(".")[0].upper() not in WINDOWS_DEVICES, name


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd", "/etc/passwd", "..", ".", "", "   ", "C:\\Windows\\system32\\evil", "a/../../b",
    "\0hidden", ".bashrc", "~/.ssh/authorized_keys", "CON", "nul.txt", "x" * 5000, "名前/図", "%2e%2e%2fetc",
    "fig\n6", "..\\..\\boot.ini", "$(touch PWNED)", "file:///etc/passwd",
])
@pytest.mark.parametrize("ext", [None, "png", "../png", "p/n/g"])
def test_export_file_names_are_sanitised(tmp_path, hostile, ext):
    _assert_safe(export.safe_filename(hostile, ext), tmp_path)


@pytest.mark.parametrize("hostile,ext", [("nul.txt", None), ("CON", "png"), ("com1.tar", "gz"), ("", ":.")])
def test_export_file_names_are_portable_to_windows(hostile, ext):
    _assert_portable(export.safe_filename(hostile, ext))


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=300), ext=st.one_of(st.none(), st.text(max_size=12)))
def test_export_file_names_fuzzed(tmp_path, name, ext):
    _assert_safe(export.safe_filename(name, ext), tmp_path)


def test_written_exports_stay_in_their_folder(tmp_path):
    """write_panels / teaching_pack with hostile keys, prefixes and view names write only inside out_dir."""
    import io
    import zipfile

    import pandas as pd
    import plotly.graph_objects as go

    from sevis.figures.plots import Panel

    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    panels = [Panel("../../escape", "t", "c", fig, pd.DataFrame({"a": [1]})),
              Panel("/abs/olute", "t", "c", fig, pd.DataFrame({"a": [2]}))]
    out = tmp_path / "out"
    written = export.write_panels(panels, out, ["csv", "json", "html"], prefix="../../pre/", pack=True,
                                  view="../../view")
    assert written
    for path in written:
        assert path.resolve().parent == out.resolve(), path
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(p.name for p in written)
    with zipfile.ZipFile(io.BytesIO(export.teaching_pack(panels, "../../view", ["csv"]))) as zf:
        for member in zf.namelist():
            parts = Path(member).parts
            assert not Path(member).is_absolute() and ".." not in parts and len(parts) == 2, member
