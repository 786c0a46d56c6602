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
from sevis.inference import predict_images, run_batch
from sevis.recorder import _ACTIVE, count_hooks, find_se_blocks
from sevis.zoo import EMBEDDED, PRETRAINED_DIR

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
