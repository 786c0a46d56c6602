"""Safe to serve to a class (issue 18): server folders only under SEVIS_DATA_DIRS (symlinks out refused, one
message for every path outside), FIFOs and other non-regular files refused, free model names sized on the meta
device before anything is built, uploaded weights in a private per-process store, caches bounded by bytes, and
the CLI's writes atomic (with --force to replace files)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image

from sevis.data.folders import ConfinedFolder, confine, folder_files, folder_images
from sevis.errors import DatasetError, ModelError, SevisError
from sevis.files import read_regular, write_atomic
from sevis.serving.budget import ByteBudgetCache, nbytes
from sevis.serving.uploads import UploadStore, safe_upload_name


def _labelled(root: Path, classes=("Trouser", "Bag"), per_class: int = 6, size=(28, 28)) -> Path:
    """A labelled folder of real garments (the bundled reference set's), one sub-folder per class."""
    from sevis.data.fashion_mnist import load_reference_set
    ref = load_reference_set()
    for cls in classes:
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(ref.images[ref.labels == ref.classes.index(cls)][:per_class]):
            Image.fromarray(a, "L").resize(size).save(d / f"{i}.png")
    return root


@pytest.fixture
def served(tmp_path) -> tuple[Path, Path]:
    """(a data root holding a labelled folder, a labelled folder outside it)."""
    root, outside = tmp_path / "served", tmp_path / "private"
    _labelled(root / "garments")
    _labelled(outside, classes=("Sandal", "Coat"))
    return root, outside


# ---------------------------------------------------------------------------------------------- folders
def test_a_folder_inside_a_root_is_resolved_and_relative_names_work(served):
    root, _ = served
    for text in (str(root / "garments"), "garments", str(root / "garments" / ".." / "garments")):
        folder = confine(text, [str(root)])
        assert isinstance(folder, ConfinedFolder) and folder == os.path.realpath(root / "garments")
        classes, paths, labels = folder_files(folder)
        assert classes == ["Bag", "Trouser"] and len(paths) == 12 and labels.count(0) == 6


def test_a_folder_outside_the_roots_gets_the_same_message_whether_it_exists_or_not(served, tmp_path):
    root, outside = served
    messages = []
    for text in (str(outside), str(tmp_path / "no-such-folder"), "../private", "../nothing", "/", "/etc",
                 "/" + "x" * 300, "a\x00b", "y" * 2000):
        with pytest.raises(DatasetError) as e:
            confine(text, [str(root)])
        messages.append(str(e.value).split(" is not inside ", 1)[-1])
    assert all(m.startswith("the folders this server shares") for m in messages), messages
    assert len(set(messages)) == 1, messages  # nothing tells an existing folder from a missing one
    assert not any("Sandal" in m or "Coat" in m for m in messages)
    # A name relative to a root that is not there: said so, briefly (a 300-character name is shortened).
    with pytest.raises(DatasetError, match="no such folder inside the folders this server shares") as e:
        confine("x" * 300, [str(root)])
    assert len(str(e.value)) < 200 + len(str(root))


def test_a_symlink_escaping_a_root_is_refused_and_never_listed(served):
    root, outside = served
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DatasetError, match="is not inside the folders this server shares"):
        confine("escape", [str(root)])
    # Links inside an allowed folder that point out: a class folder and a file; neither is listed nor read.
    (root / "garments" / "Sandal").symlink_to(outside / "Sandal", target_is_directory=True)
    (root / "garments" / "Bag" / "zz.png").symlink_to(outside / "Coat" / "0.png")
    folder = confine("garments", [str(root)])
    classes, paths, _ = folder_files(folder)
    assert classes == ["Bag", "Trouser"] and not any(p.name == "zz.png" for p in paths)
    # The CLI (no confinement) follows the operator's own links.
    classes, paths, _ = folder_files(str(root / "garments"))
    assert "Sandal" in classes and any(p.name == "zz.png" for p in paths)


def test_with_no_roots_no_server_folder_is_read(served):
    root, _ = served
    with pytest.raises(DatasetError, match="switched off.*SEVIS_DATA_DIRS"):
        confine(str(root / "garments"), [])


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="FIFO"):
        confine("x.json", [str(tmp_path)])
    with pytest.raises(SevisError, match="x.json is a FIFO"):
        read_regular(fifo, 1024)  # would hang forever if it were opened for reading the ordinary way
    from sevis.analysis.stats import read_stats_file
    with pytest.raises(DatasetError, match="FIFO"):
        read_stats_file(fifo)
    from sevis.data.preprocess import open_image
    from sevis.errors import ImageError
    os.mkfifo(tmp_path / "y.png")
    with pytest.raises(ImageError, match="y.png is a FIFO"):
        open_image(tmp_path / "y.png")
    with pytest.raises(ImageError, match="is a folder"):
        open_image(tmp_path)


def test_fifos_in_a_labelled_folder_are_skipped(tmp_path):
    _labelled(tmp_path)
    os.mkfifo(tmp_path / "Bag" / "pipe.png")
    classes, paths, _ = folder_files(tmp_path)
    assert not any(p.name == "pipe.png" for p in paths) and len(paths) == 12


def test_os_errors_in_listing_are_one_message(tmp_path, monkeypatch):
    long = tmp_path / ("d" * 300)
    with pytest.raises(DatasetError) as e:
        folder_files(long)
    assert "…" in str(e.value) and len(str(e.value)) < 200
    locked = tmp_path / "locked"
    _labelled(locked)
    real_scandir = os.scandir

    def scandir(path):  # what an unreadable system folder does (the tests may run as root, who reads anything)
        if Path(path).name == "Bag":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DatasetError, match=r"locked: cannot be read \(Permission denied\)"):
        folder_files(locked)


def test_folder_images_decode_lazily_and_downscaled(tmp_path):
    _labelled(tmp_path, size=(1024, 768))
    (tmp_path / "Bag" / "broken.png").write_bytes(b"not an image")
    classes, images, labels, errors = folder_images(tmp_path)
    assert len(images) == len(labels) == 12 and errors == ["broken.png: not an image file Pillow can read"]
    batch = images[0:4]  # only what is indexed is decoded
    assert len(batch) == 4 and all(isinstance(im, Image.Image) for im in batch)
    assert max(min(im.size) for im in batch) <= 512  # downscaled at decode to what the views need


def test_a_folders_batches_are_kept_only_when_small(tmp_path):
    from sevis import load_model
    from sevis.analysis.reference import FolderBatches, reference_batches
    _labelled(tmp_path)
    loaded = load_model("embedded")
    batches, _ = reference_batches(loaded, str(tmp_path), batch_size=4)
    assert isinstance(batches, FolderBatches) and len(batches) == 3
    first = [(x.clone(), y.copy()) for x, y in batches]
    assert batches._kept is not None  # 12 small inputs: kept after the first pass
    large = FolderBatches(loaded, batches.images, batches.labels, 4, keep_bytes=first[0][0].nbytes)
    again = [list(large), list(large)]  # over the budget: decoded again on every pass, the same batches
    assert large._kept is None
    for one in again:
        assert all(torch.equal(a[0], b[0]) and (a[1] == b[1]).all() for a, b in zip(one, first))


# ---------------------------------------------------------------------------------------------- models
def test_a_huge_model_name_is_refused_without_allocating(monkeypatch):
    import resource

    from sevis.serving.settings import check_free_model
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelError, match=r"1,013 million parameters, more than this server allows \(150 million\)"):
        check_free_model("timm:vit_giant_patch14_224", set())
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 1000, grown_mib  # its 4 GB of float32 weights were never allocated
    with pytest.raises(ModelError, match="no Squeeze-and-Excitation blocks"):
        check_free_model("timm:resnet18", set())
    check_free_model("timm:seresnet18", set())  # an SE model under the limit passes
    monkeypatch.setenv("SEVIS_MAX_MODEL_PARAMS", "1000000")
    with pytest.raises(ModelError, match="more than this server allows"):
        check_free_model("timm:seresnet18", set())
    monkeypatch.setenv("SEVIS_MODELS", "listed")
    with pytest.raises(ModelError, match="only the listed models"):
        check_free_model("timm:seresnet18", set())
    check_free_model("timm:seresnet50", {"timm:seresnet50"})


def test_a_name_without_weights_says_so_before_building_it(monkeypatch):
    import timm

    from sevis import load_model
    built = []
    monkeypatch.setattr(timm, "create_model", lambda *a, **kw: built.append(a) or None)
    with pytest.raises(ModelError, match="seresnet18 has no pretrained weights to download") as e:
        load_model("timm:seresnet18")  # timm ships no weights for it
    assert not built and "offline" not in str(e.value) and "Error" not in str(e.value)


def test_model_cache_is_bounded_by_bytes():
    import torch
    cache = ByteBudgetCache(3 * 4 * 1000)  # room for three 1000-parameter float32 models
    models = {k: torch.nn.Linear(999, 1) for k in range(5)}  # 1000 parameters each
    assert nbytes(models[0]) == 4000
    for k, m in models.items():
        assert cache.get_or_make(k, lambda m=m: m) is m
    assert len(cache) == 3 and 0 not in cache and 4 in cache and cache.used == 12000
    big = torch.nn.Linear(10_000, 1)
    assert cache.get_or_make("big", lambda: big) is big and "big" not in cache  # served, never kept


# ---------------------------------------------------------------------------------------------- uploads
def test_uploads_go_to_a_private_folder_and_are_removed(tmp_path):
    store = UploadStore(parent=tmp_path)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    a = store.put(b"weights-a", "my model.safetensors", holder="s1")
    b = store.put(b"weights-a", "my model.safetensors", holder="s2")
    assert a == b and a.name == "my model.safetensors" and a.read_bytes() == b"weights-a"
    store.check(a)
    store.release("s1")
    assert a.exists()  # s2 still holds it
    store.sweep(alive=[])  # s2's session ended
    assert not a.exists() and not a.parent.exists()
    store.put(b"x", "x.pt", holder="s3")
    store.close()
    assert not store.root.exists()


def test_a_symlink_planted_where_uploads_go_is_never_followed(tmp_path):
    store = UploadStore(parent=tmp_path)
    target = tmp_path / "victim.pth"
    target.write_bytes(b"original")
    import hashlib
    data = b"student weights"
    planted = store.root / hashlib.sha256(data).hexdigest()[:32]
    planted.mkdir()
    (planted / "w.pth").symlink_to(target)
    with pytest.raises(ModelError) as e:
        store.put(data, "w.pth", holder="s1")
    assert target.read_bytes() == b"original"
    assert "w.pth" in str(e.value) and hashlib.sha256(data).hexdigest()[:16] not in str(e.value)
    # A file replaced after it was written is caught by its hash before it is read.
    good = store.put(b"other weights", "v.safetensors", holder="s2")
    good.write_bytes(b"tampered")
    with pytest.raises(ModelError, match="v.safetensors is no longer what was uploaded"):
        store.check(good)


def test_upload_names_are_sanitised():
    assert safe_upload_name("../../etc/passwd") == "passwd.pt"
    assert safe_upload_name(".hidden.pth") == "hidden.pth"
    assert len(safe_upload_name("a" * 500 + ".safetensors")) <= 100


# ---------------------------------------------------------------------------------------------- writes
def test_write_atomic_leaves_the_old_file_whole_on_failure(tmp_path):
    out = tmp_path / "table.csv"
    out.write_text("old,complete\n")

    def half_then_fail(path: Path) -> None:
        path.write_text("new,half")
        raise OSError(28, "No space left on device")

    with pytest.raises(SevisError, match="No space left on device"):
        write_atomic(out, half_then_fail)
    assert out.read_text() == "old,complete\n" and os.listdir(tmp_path) == ["table.csv"]
    write_atomic(out, "new,complete\n")
    assert out.read_text() == "new,complete\n" and os.listdir(tmp_path) == ["table.csv"]


# ---------------------------------------------------------------------------------------------- CLI
def _cli(args: list[str], capsys) -> tuple[int, str]:
    from sevis.cli.main import main
    try:
        rc = main(args)
    except SystemExit as e:  # argparse refusals
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


def test_cli_refuses_non_regular_files_and_odd_arguments(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.new("RGB", (28, 28), (200, 30, 30)).save(image)
    os.mkfifo(tmp_path / "x.json")
    cases = [
        (["predict", str(tmp_path)], "is a folder, not a file"),
        (["predict", str(tmp_path / "x.json")], "x.json is a FIFO (named pipe), not a file"),
        (["export", "fig6", "--folder", str(tmp_path / "x.json"), "--out", str(tmp_path / "o")], "FIFO"),
        (["predict", str(image), "--model", "embedded", "--arch", "timm:seresnet50"], "leave --arch out"),
        (["export", "architecture", "--out", ""], "--out: is empty"),
        (["stats", "--folder", str(tmp_path), "--out", "s.json", "--batch-size", str(2**70)],
         "must be at most 65,536"),
    ]
    for args, expected in cases:
        rc, err = _cli(args, capsys)
        assert rc == 2 and expected in err.strip().splitlines()[-1], (args, err)  # one line (after argparse's usage)
    assert not (tmp_path / "o").exists()


ARCH_EXPORT = ["export", "architecture", "--format", "csv", "json"]


def test_export_refuses_to_replace_files_without_force(tmp_path, capsys):
    out = tmp_path / "figs"
    rc, _ = _cli([*ARCH_EXPORT, "--out", str(out)], capsys)
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names and all(not n.startswith(".") for n in names)
    (out / names[0]).write_text("a table the teacher edited by hand")
    rc, err = _cli([*ARCH_EXPORT, "--out", str(out)], capsys)
    # The CLI names the view's summary it writes beside the figures (sevis export, issue 24) before write_panels runs.
    assert rc == 2 and "already holds" in err and names[0] in err, err
    assert "--force" in err and "nothing was written" in err
    assert (out / names[0]).read_text() == "a table the teacher edited by hand"
    rc, _ = _cli([*ARCH_EXPORT, "--out", str(out), "--force"], capsys)
    assert rc == 0 and (out / names[0]).read_text() != "a table the teacher edited by hand"
    assert sorted(p.name for p in out.iterdir()) == names


def test_an_export_stopped_half_way_leaves_every_file_whole(tmp_path, capsys, monkeypatch):
    reference = tmp_path / "reference"
    assert _cli([*ARCH_EXPORT, "--out", str(reference)], capsys)[0] == 0
    complete = {p.name: p.read_bytes() for p in reference.iterdir()}
    out = tmp_path / "figs"
    out.mkdir()
    for k, name in enumerate(complete):
        (out / name).write_bytes(f"previous export {k}".encode())
    real_write = Path.write_bytes
    calls = []

    def disk_fills_up(self: Path, data: bytes) -> int:  # the second file: half written, then the disk is full
        calls.append(self)
        if len(calls) == 2:
            real_write(self, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_fills_up)
    rc, err = _cli([*ARCH_EXPORT, "--out", str(out), "--force"], capsys)
    assert rc == 2 and "No space left on device" in err
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(files) == sorted(complete)  # no temporary file left behind
    for k, (name, data) in enumerate(files.items()):
        assert data in (complete[name], f"previous export {k}".encode()) or data.startswith(b"previous export"), name
    assert sum(files[n] == complete[n] for n in files) == 1  # the first file was replaced whole, the rest kept


_KILLED_EXPORT = """
import os, sys, time
from pathlib import Path
real = Path.write_bytes
calls = []

def stall_half_way(self, data, *args, **kwargs):  # the second file: half written, then the process is killed
    calls.append(self)
    if len(calls) == 2:
        real(self, data[: len(data) // 2], *args, **kwargs)
        print("half", flush=True)
        time.sleep(600)
    return real(self, data, *args, **kwargs)

Path.write_bytes = stall_half_way
from sevis.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_export_killed_with_sigkill_leaves_no_part_file_after_the_next_export(tmp_path, capsys):
    import signal
    import subprocess
    import sys
    out = tmp_path / "figs"
    args = [*ARCH_EXPORT, "--out", str(out)]
    old = os.umask(0o022)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_EXPORT, *args], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert "half\n" in iter(proc.stdout.readline, "")  # the second file is half written into its .part
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        left = [p.name for p in out.iterdir() if p.name.endswith(".part")]
        assert len(left) == 1 and left[0].startswith(".") and f".sevis-{proc.pid}-" in left[0], left
        (out / ".notes.csv.sevis-1-0123abcd.part").write_text("a .part of a running process (pid 1)")
        rc, _ = _cli([*args, "--force"], capsys)
    finally:
        os.umask(old)
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.endswith(".part")] == [".notes.csv.sevis-1-0123abcd.part"], names  # pid 1 lives
    exported = [out / n for n in names if not n.startswith(".")]
    assert exported and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in exported), \
        [(p.name, oct(p.stat().st_mode)) for p in exported]


def test_exported_files_take_their_mode_from_the_umask(tmp_path, capsys):
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(umask)
        try:
            rc, _ = _cli([*ARCH_EXPORT, "--out", str(tmp_path / oct(umask))], capsys)
            written = write_atomic(tmp_path / f"table{umask}.csv", "a,b\n")
        finally:
            os.umask(old)
        assert rc == 0
        files = [*(tmp_path / oct(umask)).iterdir(), written]
        assert len(files) > 1 and {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}, oct(umask)


def test_excite_never_truncates_an_existing_csv(tmp_path, capsys, monkeypatch):
    import pandas as pd
    image = tmp_path / "x.png"
    Image.new("RGB", (28, 28), (200, 30, 30)).save(image)
    out = tmp_path / "s.csv"
    out.write_text("image,block,channel,s\nold.png,SE_1_1,0,0.5\n")
    real = pd.DataFrame.to_csv

    def half(self, path, *a, **kw):
        real(self.iloc[: len(self) // 2], path, *a, **kw)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half)
    rc, err = _cli(["excite", str(image), "--out", str(out)], capsys)
    assert rc == 2 and "No space left on device" in err
    assert out.read_text() == "image,block,channel,s\nold.png,SE_1_1,0,0.5\n"
    assert sorted(os.listdir(tmp_path)) == ["s.csv", "x.png"]  # no temporary file left behind


# ---------------------------------------------------------------------------------------------- the app
APP = str(Path(__file__).resolve().parent.parent / "app.py")
APP_TIMEOUT = 300


def _app():
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _everything(at) -> str:
    """Every element's content the page would send to the browser (protos: text, chart specs, captions)."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


@pytest.mark.app
def test_the_app_reads_no_folder_outside_the_roots(tmp_path, monkeypatch):
    root, outside = tmp_path / "served", tmp_path / "private"
    _labelled(root / "garments")
    _labelled(outside, classes=("Sandal", "Coat"))
    for cls in ("Sandal", "Coat"):  # class names nothing else in the app shows
        (outside / cls).rename(outside / f"secret_{cls.lower()}")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "garments" / "secret_link").symlink_to(outside / "secret_sandal", target_is_directory=True)
    monkeypatch.setenv("SEVIS_DATA_DIRS", str(root))
    at = _app()
    for text in (str(outside), str(root / "escape"), "escape", "../private", "/" + "x" * 300):
        at.text_input(key="ref_folder").set_value(text)
        at.session_state["view"] = "Class × depth"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("is not inside the folders this server shares" in e.value for e in at.sidebar.error), text
        page = _everything(at)
        assert "secret_" not in page and str(outside) not in page.replace(repr(text), "")
    at.text_input(key="ref_folder").set_value("garments")
    at.run()
    assert not at.exception and not at.sidebar.error
    page = _everything(at)
    assert f"folder {os.path.realpath(root / 'garments')}" in page  # the allowed folder is what Class × depth read
    assert "secret_" not in page  # its link out was never listed


@pytest.mark.app
def test_with_no_roots_the_folder_field_is_off_and_says_why(monkeypatch):
    monkeypatch.delenv("SEVIS_DATA_DIRS", raising=False)
    at = _app()
    field = at.text_input(key="ref_folder")
    assert field.disabled and "shares no folders" in field.placeholder and "SEVIS_DATA_DIRS" in field.help


@pytest.mark.app
def test_the_app_refuses_a_huge_model_name_without_building_it(monkeypatch):
    import resource
    at = _app()
    at.sidebar.selectbox(key="model_kind").set_value("timm ImageNet model")
    at.run()
    at.sidebar.selectbox(key="timm_name").set_value("other…")
    at.run()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    at.sidebar.text_input(key="timm_other").set_value("vit_giant_patch14_224")
    at.sidebar.checkbox(key="timm_random").check()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.sidebar.error]
    assert any("1,013 million parameters, more than this server allows" in e for e in errors), errors
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 1000  # 4 GB never allocated
    monkeypatch.setenv("SEVIS_MODELS", "listed")
    at.run()
    assert "other…" not in at.sidebar.selectbox(key="timm_name").options


@pytest.mark.app
def test_uploaded_weights_are_private_and_messages_name_the_students_file(tmp_path):
    import re

    import torch
    from safetensors.torch import save_file

    from sevis import load_model
    from sevis.serving.uploads import upload_store
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in load_model("embedded", pretrained=False).model.state_dict().items()}
    for key in list(state)[-2:]:
        del state[key]
    save_file(state, str(tmp_path / "my weights.safetensors"))
    at = _app()
    at.sidebar.selectbox(key="model_kind").set_value("Uploaded checkpoint")
    at.run()
    at.sidebar.file_uploader(key="ckpt_file").set_value(
        ("my weights.safetensors", (tmp_path / "my weights.safetensors").read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("my weights.safetensors"), errors
    assert not re.search(r"[0-9a-f]{16}", errors[0]) and "--" not in errors[0]  # no hash, no command-line flag
    store = upload_store()
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700 and len(store.files()) >= 1
    assert store.root.name.startswith("sevis-uploads-") and store.root.name != "sevis_uploaded_checkpoints"


def test_pack_and_handout_model_line_never_shows_the_private_upload_path(tmp_path):
    """Teaching packs and the tour handout name an uploaded model by the student's file, not the server path."""
    from types import SimpleNamespace

    from sevis.app.common import model_line
    private = tmp_path / "sevis-uploads-x1y2" / "0123abcd" / "my_net.safetensors"
    line = model_line(SimpleNamespace(source="checkpoint", spec=str(private), name="my_net"))
    assert "my_net.safetensors" in line and str(tmp_path) not in line and "0123abcd" not in line
    shipped = model_line(SimpleNamespace(source="embedded", spec="embedded", name="fmnist_se_resnet50"))
    assert shipped == "Model: fmnist_se_resnet50 (embedded)."


# ---------------------------------------------------------------------------------------------- shared results
SHARED_VIEWS = ("Live inference", "Class × depth", "Channel", "Inside a block")


@pytest.mark.app
def test_sessions_draw_their_own_copies_of_one_shared_result():
    """Results no upload is part of (the prepared defaults, the Live view on the bundled sample images) are computed
    once for every session and kept unpickled (issue 26: unpickling them cost half the server's CPU per view); each
    session draws its own copy, so sessions never touch one Plotly figure at the same time (Plotly's Figure(fig)
    changes `fig` while it copies it). After two sessions drew four views in normal and lecture mode, no figure
    object is shared between them or with the kept result, and every figure equals the view's default read afresh."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from sevis import load_model
    from sevis.app.common import _shared_result
    from sevis.views.registry import compute_view, default_requests
    app = str(Path(__file__).resolve().parent.parent / "app.py")
    sessions = [AppTest.from_file(app, default_timeout=600) for _ in range(2)]
    shown: dict[str, list] = {view: [] for view in SHARED_VIEWS}
    for at in sessions:
        for lecture in (False, True):
            at.session_state["lecture"] = lecture
            for view in SHARED_VIEWS:
                at.session_state["view"] = view
                at.run()
                assert not at.exception, [e.value for e in at.exception]
                shown[view].append(at.session_state["view_results"][view])
    loaded = load_model("embedded")
    requests = default_requests(loaded)
    for view, results in shown.items():
        first, other = results[0], results[-1]  # the two sessions' results
        assert first is results[1] and other is results[2], f"{view}: a rerun copied the result again"
        # the view's default request, read afresh (from the prepared file, or computed when it is stale)
        candidates = [(r, compute_view(loaded, first.slug, r)) for r in requests[first.slug]]
        same = [(r, c) for r, c in candidates if [p.key for p in c.panels] == [p.key for p in first.panels]
                and c.takeaway == first.takeaway]
        assert same, f"{view}: what the sessions showed is no default result of the view"
        request, fresh = same[0]
        kept = _shared_result("embedded", True, None, first.slug, request.key(), request)
        for mine, theirs, master, new in zip(first.panels, other.panels, kept.panels, fresh.panels):
            assert len({id(mine.figure), id(theirs.figure), id(master.figure)}) == 3, f"{view}: a shared figure"
            for fig in (mine.figure, theirs.figure, master.figure):
                assert fig.to_json() == new.figure.to_json(), f"{view}: {new.key} differs from the view's default"
            assert mine.caption == new.caption and mine.data.equals(new.data)


def test_copies_of_one_shared_result_made_at_once_are_all_whole():
    """Sixteen threads copy one shared result at the same moment (a barrier): every copy equals it, trace types
    included, and the shared figures are unchanged."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sevis import load_model
    from sevis.app.common import own_copy
    from sevis.views.registry import compute_view
    shared = compute_view(load_model("embedded"), "class-depth")
    before = [p.figure.to_json() for p in shared.panels]
    meet = threading.Barrier(16)

    def copy_at_once(_):
        meet.wait(timeout=60)
        return own_copy(shared)

    with ThreadPoolExecutor(16) as pool:
        copies = list(pool.map(copy_at_once, range(16)))
    assert [p.figure.to_json() for p in shared.panels] == before
    for c in copies:
        assert [p.figure.to_json() for p in c.panels] == before
        assert all(a.figure is not b.figure for a, b in zip(c.panels, shared.panels))
