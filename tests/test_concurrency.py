"""Concurrency: many threads (and many Streamlit sessions) share one cached model.

* ≥ 8 threads run inference with an ExcitationRecorder on one shared model at the same moment (a barrier
  lines them up, for several rounds); each thread's probabilities and excitations equal the same image's
  result computed alone, to 1e-6, also while other threads knock blocks out (overrides) or fail.
* No hook is left on the model after any error, including errors raised mid-forward (inside a hook after
  earlier blocks were recorded, inside a module's forward, and a BaseException): count_hooks == 0.
* ≥ 4 AppTest sessions of app.py run at once against the shared st.cache_resource model; each one's
  prediction equals the single-session prediction for its image.
"""
from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sevis import ExcitationRecorder, load_model
from sevis.analysis.inference import predict_images, run_batch
from sevis.core.recorder import _ACTIVE, count_hooks, find_se_blocks
from sevis.models.zoo import EMBEDDED, PRETRAINED_DIR

pytestmark = pytest.mark.timeout(600, method="thread")

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8
ROUNDS = 3
TOL = 1e-6
DEFAULT_THREADS = torch.get_num_threads()


@pytest.fixture(scope="module")
def shared():
    """One model instance shared by every thread (the shipped weights when present)."""
    shipped = (PRETRAINED_DIR / f"{EMBEDDED['embedded']}.safetensors").exists()
    torch.manual_seed(0)
    return load_model("embedded", pretrained=shipped)


@pytest.fixture(autouse=True)
def one_intra_op_thread():
    """8-16 Python threads × torch's intra-op pool oversubscribe a 2-core CI box; the Python threads are the
    concurrency under test. (test_threads_share_one_model... also runs with torch's default pool.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def garment_images(n: int, seed: int = 0) -> list[Image.Image]:
    """n different images: a light blob on dark of varying size, position and texture."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = rng.integers(0, 40, (28, 28)).astype(np.uint8)
        y, x = rng.integers(2, 10, 2)
        h, w = rng.integers(10, 18, 2)
        a[y:y + h, x:x + w] = rng.integers(120, 255)
        out.append(Image.fromarray(a, "L").convert("RGB"))
    return out


def assert_same(a, b, what: str) -> None:
    assert torch.allclose(a.probs, b.probs, atol=TOL, rtol=0), f"{what}: probabilities differ"
    assert list(a.excitations) == list(b.excitations)
    for name in a.excitations:
        assert a.excitations[name].shape == b.excitations[name].shape, f"{what}: {name} shape"
        diff = (a.excitations[name] - b.excitations[name]).abs().max().item()
        assert diff <= TOL, f"{what}: {name} differs by {diff:g}"


class InjectedFailure(RuntimeError):
    pass


class InjectedAbort(BaseException):
    """Not an Exception: checks that hooks go even on KeyboardInterrupt-like exits."""


@pytest.mark.parametrize("intra_op", [1, "default"])
def test_threads_share_one_model_and_each_gets_its_own_result(shared, intra_op, one_intra_op_thread):
    if intra_op == "default":
        torch.set_num_threads(DEFAULT_THREADS)
    images = garment_images(THREADS * 2)
    alone = [predict_images(shared, [img]) for img in images]
    assert len({tuple(r.probs[0].tolist()) for r in alone}) > 1, "images must give different results"
    barrier = threading.Barrier(THREADS)

    def work(i: int, rnd: int):
        barrier.wait(timeout=60)
        k = (i + rnd * 3) % len(images)  # a different image per thread and round
        res = predict_images(shared, [images[k]])
        return k, res, len(_ACTIVE.get())

    with ThreadPoolExecutor(THREADS) as pool:
        for rnd in range(ROUNDS):
            for k, res, active in pool.map(lambda i: work(i, rnd), range(THREADS)):
                assert_same(res, alone[k], f"image {k}, round {rnd}")
                assert active == 0
    assert count_hooks(shared.model) == 0


def test_batches_and_repeated_passes_inside_one_recorder_under_contention(shared):
    """Each thread runs two forward passes in one `with` (a batch of 3, then 1 image): its recorder holds
    exactly its own 4 rows, in order, while other threads' passes run through the same hooks."""
    images = garment_images(THREADS * 4, seed=1)
    preprocess = shared.preprocess
    barrier = threading.Barrier(THREADS)

    def work(i: int):
        mine = images[i * 4:(i + 1) * 4]
        x1 = torch.stack([preprocess(im) for im in mine[:3]])
        x2 = preprocess(mine[3])[None]
        barrier.wait(timeout=60)
        with torch.inference_mode(), ExcitationRecorder(shared.model) as rec:
            p1 = shared.model(x1).softmax(1)
            p2 = shared.model(x2).softmax(1)
        return i, torch.cat([p1, p2]), rec.excitations

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    for i, probs, exc in results:
        ref = predict_images(shared, images[i * 4:(i + 1) * 4])
        assert torch.allclose(probs, ref.probs, atol=TOL, rtol=0)
        for name, s in exc.items():
            assert s.shape[0] == 4, f"thread {i}: {name} recorded {s.shape[0]} rows, expected 4"
            assert (s - ref.excitations[name]).abs().max().item() <= TOL
    assert count_hooks(shared.model) == 0


def test_overrides_in_some_threads_never_leak_into_others(shared):
    images = garment_images(THREADS, seed=2)
    blocks = [b for b, _ in find_se_blocks(shared.model)]
    knock = {blocks[-1].name: "identity", blocks[1].name: 0.0}
    alone = [predict_images(shared, [im]) for im in images]
    alone_knocked = [predict_images(shared, [im], overrides=knock) for im in images]
    assert not torch.allclose(alone[0].probs, alone_knocked[0].probs, atol=1e-4), "knock-out must matter"
    barrier = threading.Barrier(THREADS)

    def work(i: int, rnd: int):
        barrier.wait(timeout=60)
        knocked = (i + rnd) % 2 == 1
        return i, knocked, predict_images(shared, [images[i]], overrides=knock if knocked else None)

    with ThreadPoolExecutor(THREADS) as pool:
        for rnd in range(ROUNDS):
            for i, knocked, res in pool.map(lambda i: work(i, rnd), range(THREADS)):
                assert_same(res, (alone_knocked if knocked else alone)[i], f"thread {i} knocked={knocked}")
                if knocked:
                    assert torch.all(res.excitations[blocks[-1].name] == 1)
    assert count_hooks(shared.model) == 0


def test_errors_mid_forward_leave_no_hooks_and_do_not_disturb_other_threads(shared):
    """Threads fail in four ways while the others run: a bad override raised inside a hook after earlier
    blocks were recorded, a RuntimeError raised inside a residual block's forward, a BaseException there,
    and an input of the wrong shape. The survivors' results are exact; no hook survives anywhere."""
    images = garment_images(THREADS * 2, seed=3)
    alone = [predict_images(shared, [im]) for im in images]
    blocks = [b for b, _ in find_se_blocks(shared.model)]
    failing = threading.local()
    victim = shared.model.layer3[0]  # a residual block in the middle of the net: SE_2_* already ran
    original_forward = victim.forward

    def sometimes_failing_forward(*args, **kwargs):
        kind = getattr(failing, "kind", None)
        if kind == "runtime":
            raise InjectedFailure("injected failure mid-forward")
        if kind == "abort":
            raise InjectedAbort()
        return original_forward(*args, **kwargs)

    victim.forward = sometimes_failing_forward  # an instance attribute: no hook is involved
    barrier = threading.Barrier(THREADS * 2)
    modes = ["ok", "bad-override", "runtime", "ok", "abort", "bad-shape", "ok", "ok"]

    def work(i: int, rnd: int):
        mode = modes[(i + rnd) % len(modes)]
        failing.kind = mode if mode in ("runtime", "abort") else None
        seen_hooks_after = None
        barrier.wait(timeout=60)
        try:
            if mode == "bad-override":
                # raised by the hook of the last SE block, mid-forward, after all earlier blocks recorded
                predict_images(shared, [images[i]], overrides={blocks[-1].name: torch.ones(3)})
            elif mode == "bad-shape":
                run_batch(shared, torch.zeros(1, 3, 28, 28))  # the stem expects 1 channel
            else:
                res = predict_images(shared, [images[i]])
                return i, mode, res, len(_ACTIVE.get())
        except (ValueError, RuntimeError, InjectedAbort) as e:
            seen_hooks_after = len(_ACTIVE.get())
            return i, mode, e, seen_hooks_after
        finally:
            failing.kind = None
        raise AssertionError(f"mode {mode} did not fail")

    try:
        with ThreadPoolExecutor(THREADS * 2) as pool:
            for rnd in range(ROUNDS):
                for i, mode, out, active in pool.map(lambda i: work(i, rnd), range(THREADS * 2)):
                    assert active == 0, "a recorder stayed active in its thread's context"
                    if mode == "ok":
                        assert_same(out, alone[i], f"thread {i}, round {rnd}")
                    elif mode == "bad-override":
                        assert isinstance(out, ValueError) and "channels" in str(out)
                    elif mode == "runtime":
                        assert isinstance(out, InjectedFailure)
                    elif mode == "abort":
                        assert isinstance(out, InjectedAbort)
                    else:
                        assert isinstance(out, RuntimeError)
            assert count_hooks(shared.model) == 0
    finally:
        del victim.forward
    assert count_hooks(shared.model) == 0
    # and the model still gives the same answers afterwards
    assert_same(predict_images(shared, [images[0]]), alone[0], "after the storm")


def test_an_error_inside_the_with_block_removes_every_hook(shared):
    x = shared.preprocess(garment_images(1)[0])[None]
    for exc in (ValueError("boom"), KeyboardInterrupt(), InjectedAbort()):
        with pytest.raises(type(exc)):
            with ExcitationRecorder(shared.model) as rec:
                assert count_hooks(shared.model) == len(rec.blocks) > 0
                shared.model(x)
                raise exc
        assert count_hooks(shared.model) == 0 and _ACTIVE.get() == ()


def test_another_se_implementation_under_threads():
    """torchvision's SqueezeExcitation (hardsigmoid gates, mobilenet_v3_small) shared by 8 threads."""
    torch.manual_seed(0)
    tv = load_model("torchvision:mobilenet_v3_small", pretrained=False)
    rng = np.random.default_rng(4)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(THREADS)]
    alone = [predict_images(tv, [im]) for im in images]
    barrier = threading.Barrier(THREADS)

    def work(i: int):
        barrier.wait(timeout=60)
        return i, predict_images(tv, [images[i]])

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in range(2):
            for i, res in pool.map(work, range(THREADS)):
                assert_same(res, alone[i], f"mobilenet thread {i}")
    assert count_hooks(tv.model) == 0


# ---------------------------------------------------------------------------------------------- app sessions
APP = ROOT / "app.py"
SESSIONS = 4
APP_TIMEOUT = 420  # seconds per script run: the first one loads the model on a busy 2-core box


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def chart_numbers(at) -> list[np.ndarray]:
    """Every number plotted in the main area's plotly charts (x/y/z of every trace), chart by chart."""
    import base64
    import json

    def decode(v):
        if isinstance(v, dict) and "bdata" in v:
            return np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"])).astype(np.float64).ravel()
        arr = np.asarray(v, dtype=object).ravel()
        nums = [float(a) for a in arr if isinstance(a, (int, float)) and not isinstance(a, bool)]
        return np.asarray(nums, np.float64)

    out = []
    for chart in at.main.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        parts = [decode(trace[k]) for trace in spec.get("data", []) for k in ("x", "y", "z") if k in trace]
        out.append(np.concatenate(parts) if parts else np.zeros(0))
    return out


def chart_titles(at) -> list[str]:
    import json
    out = []
    for chart in at.main.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


def prediction_line(at) -> str:
    return next(m.value for m in at.main.markdown if m.value.startswith("**Prediction:"))


def run_app_with_upload(at, name: str, data: bytes) -> None:
    at.sidebar.file_uploader(key="uploads").set_value((name, data, "image/png"))
    for ms in at.sidebar.multiselect:
        if ms.key and ms.key.startswith("samples_"):
            ms.set_value([])
    at.run(timeout=APP_TIMEOUT)


class concurrent_apptests:
    """Let several AppTest instances run in threads of one process, as sessions do in a Streamlit server.

    AppTest.run installs a mock Runtime singleton and patches config.get_option for the length of one run
    and resets both afterwards; with several runs in flight, the first to finish would pull them from
    under the others. Here one shared mock Runtime answers whenever a run's own one is gone, and the
    originals are put back at the end. Each AppTest run also compiles app.py with a ScriptCache of its
    own, and CPython 3.11's AST state is not safe in several threads at once ("AST constructor recursion
    depth mismatch"): not only ast.parse, but also 3.11's traceback formatting, which parses source lines
    to place its carets, can collide with it. A server has one ScriptCache that compiles app.py once and
    serves the same bytecode to every session; so do the same here: compile once, under a lock."""

    def __enter__(self):
        from unittest.mock import MagicMock

        from streamlit import config
        from streamlit.runtime import Runtime
        from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
        from streamlit.runtime.media_file_manager import MediaFileManager
        from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
        from streamlit.testing.v1.util import patch_config_options

        shared_rt = MagicMock(spec=Runtime)
        shared_rt.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
        shared_rt.cache_storage_manager = MemoryCacheStorageManager()
        from streamlit.runtime.scriptrunner.script_cache import ScriptCache

        self._saved = (Runtime.__dict__["instance"], Runtime.__dict__["exists"], Runtime._instance, config.get_option)
        self._get_bytecode = ScriptCache.get_bytecode
        compile_lock = threading.Lock()
        original = self._get_bytecode
        compiled: dict[str, object] = {}

        def get_bytecode(cache, script_path):
            with compile_lock:
                if script_path not in compiled:
                    compiled[script_path] = original(cache, script_path)
                return compiled[script_path]

        ScriptCache.get_bytecode = get_bytecode
        Runtime.instance = classmethod(lambda cls: cls._instance or shared_rt)
        Runtime.exists = classmethod(lambda cls: True)
        self._config = patch_config_options({"global.appTest": True})
        self._config.__enter__()
        return self

    def __exit__(self, *exc):
        from streamlit import config
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner.script_cache import ScriptCache

        self._config.__exit__(*exc)
        Runtime.instance, Runtime.exists, Runtime._instance, config.get_option = self._saved
        ScriptCache.get_bytecode = self._get_bytecode


@pytest.mark.app
@pytest.mark.skipif(not APP.exists(), reason="app.py is not there yet")
def test_app_sessions_share_the_cached_model_and_match_single_sessions(monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    images = garment_images(SESSIONS, seed=11)
    uploads = [(f"garment{i}.png", png_bytes(im)) for i, im in enumerate(images)]

    seen_models: dict[int, torch.nn.Module] = {}
    in_flight = [0, 0]  # now, most at once
    lock = threading.Lock()
    meet = threading.Barrier(SESSIONS)
    import sevis.analysis.images as views  # analyse_images calls predict_images from there
    real_predict = views.predict_images

    def predict_together(loaded, imgs, *args, **kwargs):
        """Every session's upload reaches the shared model at the same moment (a barrier), so the forward
        passes (and their recorders) really overlap."""
        with lock:
            seen_models[id(loaded.model)] = loaded.model
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        try:
            try:
                meet.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
            return real_predict(loaded, imgs, *args, **kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    st.cache_data.clear()
    with concurrent_apptests():
        sessions = [AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT) for _ in range(SESSIONS)]
        with ThreadPoolExecutor(SESSIONS) as pool:
            list(pool.map(lambda at: at.run(), sessions))  # first page: model load, sample images
            for at in sessions:
                assert not at.exception, [e.value for e in at.exception]
            monkeypatch.setattr(views, "predict_images", predict_together)
            list(pool.map(lambda pair: run_app_with_upload(pair[0], *pair[1]), zip(sessions, uploads)))
            monkeypatch.setattr(views, "predict_images", real_predict)
    assert in_flight[1] == SESSIONS, f"only {in_flight[1]} sessions were in the model at once"
    assert len(seen_models) == 1, "sessions did not share one cached model"
    concurrent = []
    for at, (name, _) in zip(sessions, uploads):
        assert not at.exception, [e.value for e in at.exception]
        assert any(name in t for t in chart_titles(at)), f"session for {name} shows {chart_titles(at)}"
        concurrent.append((prediction_line(at), chart_numbers(at)))
    (shared,) = seen_models.values()

    # The same uploads, one session at a time, with the results cache emptied so each is recomputed.
    st.cache_data.clear()
    for (name, data), (line, numbers) in zip(uploads, concurrent):
        at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT)
        at.run()
        run_app_with_upload(at, name, data)
        assert not at.exception
        assert prediction_line(at) == line
        alone = chart_numbers(at)
        assert len(alone) == len(numbers) >= 2, "expected the top-5 chart and the excitation charts"
        for a, b in zip(alone, numbers):
            assert a.shape == b.shape, f"{name}: a chart changed shape"
            bad = np.flatnonzero(~np.isclose(a, b, atol=TOL, rtol=0, equal_nan=True))  # NaN: heat-strip padding
            assert bad.size == 0, f"{name}: {bad.size} numbers differ, e.g. at {bad[:5]}: {a[bad[:5]]} vs {b[bad[:5]]}"
    assert count_hooks(shared) == 0
