"""Files that cost the server far more than their size (issue 26): a 1 MB .pt zip whose entry inflates to 1 GiB,
a safetensors file whose header lists 700,000 empty tensors, and their relatives. Each is refused with one clear
ModelError from its own headers, before torch or safetensors reads it; peak memory is measured in a fresh
process (resource.getrusage's high-water mark), so nothing else the test run allocated counts."""
from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from sevis.errors import ModelError
from sevis.models.checkpoint import MAX_SAFETENSORS_HEADER, MAX_TENSORS, read_state_dict

pytestmark = pytest.mark.timeout(300)
GiB = 2**30
GROWTH_LIMIT_MB = 300  # what the issue allows the server's memory to grow by for one bomb


def _torch_entries() -> dict[str, bytes]:
    """The entries of a real torch.save zip of a small state dict (name -> bytes)."""
    buf = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write_deflate_bomb(path: Path, inflated: int = GiB) -> Path:
    """A real torch checkpoint whose first storage record is replaced by `inflated` zero bytes, deflated: about
    1 MB on disk for 1 GiB. Written a MiB at a time, so making it costs no memory."""
    chunk = bytes(2**20)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _torch_entries().items():
            if name.endswith("/data/0"):
                info = zipfile.ZipInfo(name)
                info.compress_type, info._compresslevel = zipfile.ZIP_DEFLATED, 9
                with zf.open(info, "w") as fh:
                    for _ in range(inflated // len(chunk)):
                        fh.write(chunk)
            else:
                zf.writestr(name, data)  # stored, as torch writes them
    return path


def write_lying_zip(path: Path, declared: int = GiB) -> Path:
    """A real torch checkpoint whose stored storage record declares `declared` bytes in the central directory
    (its data is 160 bytes): what a reader that trusts the header would allocate."""
    entries = _torch_entries()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    raw = bytearray(path.read_bytes())
    target = next(n for n in entries if n.endswith("/data/0")).encode()
    at = raw.find(b"PK\x01\x02")
    while raw[at + 46: at + 46 + len(target)] != target:  # the storage's central-directory record
        at = raw.find(b"PK\x01\x02", at + 4)
    struct.pack_into("<I", raw, at + 24, declared)  # its uncompressed size
    path.write_bytes(bytes(raw))
    return path


def write_tensor_flood(path: Path, count: int = 700_000) -> Path:
    """A safetensors file listing `count` empty tensors and no data (about 67 bytes of JSON header each)."""
    body = ",".join(f'"t{i:07d}.weight":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(count))
    header = ("{" + body + "}").encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bombs")
    return {"deflate": write_deflate_bomb(root / "weights.pt"),
            "lying": write_lying_zip(root / "lying.pth"),
            "flood": write_tensor_flood(root / "flood.safetensors"),
            "short-flood": write_tensor_flood(root / "many.safetensors", MAX_TENSORS + 1)}


_MEASURE = """
import json, resource, sys
from sevis.errors import ModelError
from sevis.models.checkpoint import read_state_dict
import torch
torch.zeros(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    {call}
    message = None
except ModelError as e:
    message = str(e)
except Exception as e:  # the control: torch's own error, after the damage
    message = type(e).__name__ + ": " + str(e)[:200]
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"grew_mb": grew / 1024, "message": message}}))
"""


def _measure(path: Path, call: str = "read_state_dict(sys.argv[1])") -> dict:
    """Return {"grew_mb", "message"}: how far peak memory rose while a fresh process ran `call` on `path`."""
    done = subprocess.run([sys.executable, "-c", _MEASURE.format(call=call), str(path)], capture_output=True,
                          text=True, timeout=240, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_bombs_are_what_the_issue_measured(bombs):
    assert 0.9e6 < bombs["deflate"].stat().st_size < 1.2e6
    with zipfile.ZipFile(bombs["deflate"]) as zf:
        assert sum(i.file_size for i in zf.infolist()) > GiB
    assert 44e6 < bombs["flood"].stat().st_size < 50e6


def test_a_zip_entry_inflating_to_1_gib_is_refused_with_flat_memory(bombs):
    result = _measure(bombs["deflate"])
    assert re.match(r"weights.pt holds compressed entries \(archive/data/0: 1,0\d\d.\d KB that would inflate to "
                    r"1.0 GB\); torch.save never compresses", result["message"]), result
    assert result["grew_mb"] < GROWTH_LIMIT_MB, result


@pytest.mark.slow
def test_control_torch_itself_inflates_the_bomb(bombs):
    """Without the check, torch.load (weights_only) inflates the gibibyte before it finds the record does not match: the measure sees it."""
    result = _measure(bombs["deflate"], "torch.load(sys.argv[1], map_location='cpu', weights_only=True)")
    assert result["grew_mb"] > 2 * GROWTH_LIMIT_MB, result  # about 870 MB measured: the whole record, inflated


def test_a_zip_declaring_more_than_it_holds_is_refused(bombs):
    result = _measure(bombs["lying"])
    assert result["message"].startswith("lying.pth declares 1.0 GB of tensors inside a "), result
    assert "no real checkpoint does" in result["message"]
    assert result["grew_mb"] < GROWTH_LIMIT_MB, result


def test_700k_empty_tensors_are_refused_from_the_header_length(bombs):
    result = _measure(bombs["flood"])
    assert result["message"].startswith("flood.safetensors: its safetensors header declares 4"), result
    assert f"more than sevis reads ({MAX_SAFETENSORS_HEADER // 2**20:.1f} MB" in result["message"]
    assert result["grew_mb"] < GROWTH_LIMIT_MB, result


def test_a_small_header_with_too_many_tensors_is_refused_by_count(bombs):
    assert bombs["short-flood"].stat().st_size < MAX_SAFETENSORS_HEADER
    with pytest.raises(ModelError, match=f"holds {MAX_TENSORS + 1:,} tensors, more than sevis loads"):
        read_state_dict(bombs["short-flood"])


def test_a_zip_with_too_many_entries_is_refused_before_its_directory_is_parsed(tmp_path, monkeypatch):
    path = tmp_path / "entries.pt"
    entries = _torch_entries()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for i in range(MAX_TENSORS + 20):
            zf.writestr(f"archive/data/x{i}", b"")

    def parsed(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", parsed)
    count = len(entries) + MAX_TENSORS + 20
    with pytest.raises(ModelError, match=f"entries.pt holds {count:,} entries, more than a checkpoint sevis loads"):
        read_state_dict(path)


def test_real_checkpoints_still_load(tmp_path):
    """The shipped model as safetensors and as a torch.save zip: the checks pass what torch and safetensors write."""
    from sevis.names import PRETRAINED_DIR
    shipped = PRETRAINED_DIR / "fmnist_se_resnet50.safetensors"
    state = read_state_dict(shipped)
    assert len(state) > 100
    torch.save(state, tmp_path / "same.pt")
    again = read_state_dict(tmp_path / "same.pt")
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)
    broken = tmp_path / "truncated.pt"
    broken.write_bytes((tmp_path / "same.pt").read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated.pt is not a readable PyTorch checkpoint"):
        read_state_dict(broken)
