"""Upload fuzzing: every byte string an upload can carry either gives a valid prediction or one ImageError.

Each input goes down the exact path an upload takes in the app and the CLI:
`open_image(bytes)` → the model's own preprocessing → `predict_images` (model + ExcitationRecorder).
The only acceptable outcomes are

* a prediction: an RGB image, probabilities that are finite, non-negative and sum to 1, and finite
  excitations in [0, 1] (N×C per SE block), or
* an `ImageError` (a `SevisError`) whose message is one non-empty line naming the upload.

Anything else raising out is a failure. Time per input is bounded by Hypothesis' deadline (and a plain
wall-clock check for the hand-made cases), memory per input by the peak resident set size (VmHWM,
reset before each input through /proc/self/clear_refs; Linux). A counter proves at least 500 generated
inputs went through the path.
"""
from __future__ import annotations

import io
import os
import struct
import time
import zlib
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from sevis import load_model
from sevis.analysis.inference import predict_images
from sevis.data.preprocess import MAX_ASPECT, MAX_PIXELS, open_image
from sevis.errors import ImageError, SevisError
from sevis.models.zoo import EMBEDDED, PRETRAINED_DIR

pytestmark = pytest.mark.timeout(300, method="thread")  # a hang inside a C decoder still ends the run

PER_INPUT_SECONDS = 10.0  # generous: CI machines with 2 busy cores; typical inputs take ~10 ms
PER_INPUT_MB = 600  # peak RSS growth allowed for one upload (a legal 40-megapixel image needs ~300 MB)
MIN_GENERATED = 500
# SEVIS_FUZZ_SCALE=20 runs a 20× longer campaign (same checks) when hunting for new failures.
SCALE = max(1, int(os.environ.get("SEVIS_FUZZ_SCALE", "1")))

FUZZ = settings(deadline=timedelta(seconds=PER_INPUT_SECONDS), database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

COUNTS: dict[str, int] = {}
OUTCOMES = {"prediction": 0, "ImageError": 0}


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model():
    """The small embedded SE-ResNet (shipped weights when present; random ones before training ends)."""
    shipped = (PRETRAINED_DIR / f"{EMBEDDED['embedded']}.safetensors").exists()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny forward passes: one intra-op thread is 5× faster on 2 busy cores
    try:
        yield load_model("embedded", pretrained=shipped)
    finally:
        torch.set_num_threads(threads)


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def check_upload(loaded, data: bytes, kind: str, name: str = "upload.bin") -> str:
    """Send `data` down the upload path; assert the outcome is a valid prediction or one ImageError."""
    COUNTS[kind] = COUNTS.get(kind, 0) + 1
    measure = _reset_peak()
    rss0 = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        img = open_image(data, name=name)
    except ImageError as e:
        msg = str(e)
        assert isinstance(e, SevisError)
        assert msg.strip(), "ImageError without a message"
        assert "\n" not in msg and "Traceback" not in msg, f"message is not one clear line: {msg!r}"
        assert name in msg, f"message does not name the upload: {msg!r}"
        outcome = "ImageError"
    else:
        assert isinstance(img, Image.Image) and img.mode == "RGB"
        assert img.width >= 1 and img.height >= 1
        res = predict_images(loaded, [img])
        probs = res.probs
        assert probs.shape == (1, len(loaded.classes))
        assert torch.isfinite(probs).all() and (probs >= 0).all()
        assert abs(float(probs.sum()) - 1.0) < 1e-5
        assert len(res.excitations) == len(res.blocks) > 0
        for blk in res.blocks:
            s = res.excitations[blk.name]
            assert s.shape == (1, blk.channels)
            assert torch.isfinite(s).all() and (s >= 0).all() and (s <= 1).all()
        outcome = "prediction"
    elapsed = time.perf_counter() - t0
    assert elapsed < PER_INPUT_SECONDS, f"{kind}: {elapsed:.1f} s for one input"
    if measure and rss0 is not None:
        grown_mb = (_status_kb("VmHWM") - rss0) / 1024
        assert grown_mb < PER_INPUT_MB, f"{kind}: peak memory grew by {grown_mb:.0f} MB for one input"
    OUTCOMES[outcome] += 1
    return outcome


# ---------------------------------------------------------------------------------------------- builders
FORMAT_MODES = {
    "PNG": ["1", "L", "LA", "P", "PT", "RGB", "RGBA", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "GIF": ["L", "P", "PT", "RGB"],
    "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I", "F", "YCbCr", "LAB"],
    "BMP": ["1", "L", "P", "RGB"],
    "ICO": ["RGBA"],
}
if features.check("webp"):
    FORMAT_MODES["WEBP"] = ["RGB", "RGBA"]
FORMATS = sorted(FORMAT_MODES)


def make_image(mode: str, w: int, h: int, seed: int) -> tuple[Image.Image, dict]:
    """Return a random image in `mode` (PT: palette with a transparent index) and extra save options."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    if mode in ("I;16", "I;16B"):
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))  # I;16
        return (img if mode == "I;16" else img.convert("I").convert("I;16B")), {}
    if mode == "I":
        return Image.fromarray(rng.integers(-2**31, 2**31 - 1, (h, w), dtype=np.int32), "I"), {}
    if mode == "F":
        arr = rng.normal(0, 1e3, (h, w)).astype(np.float32)
        arr.flat[rng.integers(0, arr.size, 2)] = rng.choice([np.nan, np.inf, -np.inf], 2)
        return Image.fromarray(arr, "F"), {}
    if mode == "PT":
        img = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        return img, {"transparency": int(rng.integers(0, 16))}
    if mode in ("LA", "RGBA"):
        img = rgb.convert(mode)
        alpha = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
        img.putalpha(alpha)
        return img, {}
    if mode == "P":
        return rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), {}
    return rgb.convert(mode), {}


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


@st.composite
def valid_images(draw) -> tuple[bytes, str]:
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(FORMAT_MODES[fmt]))
    w = draw(st.integers(1, 48))
    h = draw(st.integers(1, 48))
    if fmt == "ICO":
        w = h = max(w, 16)
    img, options = make_image(mode, w, h, draw(st.integers(0, 2**32 - 1)))
    if fmt == "JPEG":
        options["quality"] = draw(st.integers(5, 95))
    if fmt == "TIFF":
        options["compression"] = draw(st.sampled_from(["raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"]))
    return encode(img, fmt, **options), f"{fmt}/{mode}"


@st.composite
def corrupted(draw, source) -> tuple[bytes, str]:
    """Truncate, flip bytes of, splice or duplicate parts of a real encoded image."""
    data, label = draw(source)
    op = draw(st.sampled_from(["truncate", "flip", "flip_header", "splice", "zero_tail", "intact"]))
    buf = bytearray(data)
    if op == "truncate":
        buf = buf[: draw(st.integers(0, max(len(buf) - 1, 0)))]
    elif op in ("flip", "flip_header"):
        hi = min(len(buf), 64) if op == "flip_header" else len(buf)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, hi - 1))
            buf[i] ^= draw(st.integers(1, 255))
    elif op == "splice":
        i = draw(st.integers(0, len(buf)))
        buf[i:i] = draw(st.binary(min_size=1, max_size=64))
    elif op == "zero_tail":
        i = draw(st.integers(0, len(buf)))
        buf[i:] = bytes(len(buf) - i)
    return bytes(buf), f"{label}:{op}"


MAGICS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"GIF87a", b"II*\x00", b"MM\x00*",
          b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM", b"\x00\x00\x01\x00", b"P6\n", b"%PDF-1.4", b"<svg"]


# ---------------------------------------------------------------------------------------------- fuzzing
@settings(FUZZ, max_examples=150 * SCALE)
@given(magic=st.sampled_from(MAGICS), tail=st.binary(max_size=2048))
def test_random_bytes(model, magic, tail):
    """Random bytes, alone or behind a real format's magic number, so they reach each decoder."""
    check_upload(model, magic + tail, "random bytes")


@settings(FUZZ, max_examples=350 * SCALE)
@given(sample=corrupted(valid_images()))
def test_real_images_truncated_and_corrupted(model, sample):
    """Real PNG/JPEG/GIF/WebP/TIFF/BMP/ICO files in every mode, intact or truncated/flipped/spliced."""
    data, label = sample
    check_upload(model, data, "corrupted image", name=f"{label.replace('/', '_')}.img")


@settings(FUZZ, max_examples=40 * SCALE)
@given(w=st.integers(1, 2**31 - 1), h=st.integers(1, 2**31 - 1), fmt=st.sampled_from(["PNG", "GIF", "JPEG", "TIFF"]))
def test_decompression_bombs_are_refused_before_decoding(model, w, h, fmt):
    """Tiny files whose headers claim more pixels than MAX_PIXELS (up to far past Pillow's own limit)."""
    limits = {"GIF": 65535, "JPEG": 65535}
    w, h = min(w, limits.get(fmt, w)), min(h, limits.get(fmt, h))
    assume(w * h > MAX_PIXELS)
    data = BOMB_HEADERS[fmt](w, h)
    assert len(data) < 1024
    assert check_upload(model, data, "bomb", name="bomb.img") == "ImageError"


@settings(FUZZ, max_examples=30 * SCALE)
@given(orientation=st.integers(1, 8), fmt=st.sampled_from(["JPEG", "PNG", "WEBP", "TIFF"]),
       w=st.integers(8, 40), h=st.integers(8, 40))
def test_exif_orientation_is_applied(model, orientation, fmt, w, h):
    """An EXIF-rotated photo comes out upright: the same pixels as the original, whatever the tag."""
    assume(fmt in FORMATS)
    assume(w != h)
    upright = Image.new("RGB", (w, h), (0, 0, 0))
    upright.paste((255, 255, 255), (0, 0, w // 2, h // 3))  # a white block in the top-left corner
    stored = _inverse_orient(upright, orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"exif": exif.tobytes()}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = 95
    if fmt == "WEBP":
        options["lossless"] = True
    data = encode(stored, fmt, **options)
    assert check_upload(model, data, "exif orientation", name=f"photo.{fmt.lower()}") == "prediction"
    out = open_image(data, name="photo")
    assert out.size == (w, h), f"orientation {orientation}: {out.size} != {(w, h)}"
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(upright, np.int16)).mean()
    assert diff < 8, f"orientation {orientation} ({fmt}) not applied: mean difference {diff:.1f}"


def _inverse_orient(upright: Image.Image, orientation: int) -> Image.Image:
    """Return the pixels a camera stores for `upright` under EXIF `orientation` (TIFF/EXIF spec, tag 0x0112).

    E.g. 6 means "rotate 90° clockwise to display", so the stored pixels are upright turned 90° counter-
    clockwise (PIL's ROTATE_90). Written from the spec, not from Pillow's exif_transpose table."""
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    return upright if inverse is None else upright.transpose(inverse)


# ---------------------------------------------------------------------------------------------- crafted headers
def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(w: int, h: int, depth: int = 8, color_type: int = 0, raw: bytes | None = None,
              extra: list[tuple[bytes, bytes]] = ()) -> bytes:
    """A PNG written by hand: any header Pillow would never write (huge sizes, 16-bit RGB)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    raw = raw if raw is not None else b"\0" * 16
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + b"".join(_png_chunk(t, d) for t, d in extra)
            + _png_chunk(b"IDAT", zlib.compress(raw, 9)) + _png_chunk(b"IEND", b""))


def gif_bytes(w: int, h: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x02\x02\x4c\x01\x00;")


def jpeg_bytes(w: int, h: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 16 + b"\xff\xd9"


def tiff_bytes(w: int, h: int) -> bytes:
    data_at = 8 + 2 + 8 * 12 + 4
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, data_at), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0" * 16


BOMB_HEADERS = {"PNG": png_bytes, "GIF": gif_bytes, "JPEG": jpeg_bytes, "TIFF": tiff_bytes}


# ---------------------------------------------------------------------------------------------- named cases
def test_zero_bytes(model):
    with pytest.raises(ImageError, match="empty"):
        open_image(b"", name="empty.png")
    assert check_upload(model, b"", "named", name="empty.png") == "ImageError"


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "ICO"])
def test_one_pixel(model, fmt):
    img = Image.new("RGB", (1, 1), (200, 30, 30))
    assert check_upload(model, encode(img, fmt), "named", name=f"dot.{fmt.lower()}") == "prediction"


@pytest.mark.parametrize("size", [(1, 10000), (10000, 1), (3, 20000), (1, MAX_ASPECT + 1)])
def test_extreme_strips_are_refused_clearly(model, size):
    data = encode(Image.new("L", size, 128), "PNG")
    assert check_upload(model, data, "named", name="strip.png") == "ImageError"
    with pytest.raises(ImageError, match="elongated"):
        open_image(data, name="strip.png")


@pytest.mark.parametrize("size", [(1, MAX_ASPECT), (MAX_ASPECT, 1), (2, 150)])
def test_thin_strips_within_the_aspect_limit_are_classified(model, size):
    data = encode(Image.new("L", size, 200), "PNG")
    assert check_upload(model, data, "named", name="strip.png") == "prediction"


@pytest.mark.parametrize("w,h", [(7000, 7000), (10000, 10000), (65535, 65535), (2**31 - 1, 2**31 - 1)])
@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG", "TIFF"])
def test_bombs_between_and_beyond_pillows_limits(model, fmt, w, h):
    """Under, between and far past Pillow's warning (≈89 MP) and error (≈179 MP) limits: all refused."""
    if fmt in ("GIF", "JPEG"):
        w, h = min(w, 65535), min(h, 65535)
    data = BOMB_HEADERS[fmt](w, h)
    assert check_upload(model, data, "named", name="bomb.img") == "ImageError"
    with pytest.raises(ImageError, match="too large|decompression bomb"):
        open_image(data, name="bomb.img")


def test_real_compressed_bomb_just_under_the_limit_stays_bounded(model):
    """A 40 KB PNG that inflates to ~36 megapixels is legal: it decodes within the time/memory bounds."""
    side = 6000
    assert side * side <= MAX_PIXELS
    row = b"\0" + b"\0" * side
    data = png_bytes(side, side, raw=row * side)
    assert len(data) < 100_000
    assert check_upload(model, data, "named", name="big.png") == "prediction"


def test_real_compressed_bomb_over_the_limit(model):
    side = 7000  # 49 MP: over MAX_PIXELS, under Pillow's own warning threshold
    row = b"\0" + b"\0" * side
    data = png_bytes(side, side, raw=row * side)
    assert check_upload(model, data, "named", name="big.png") == "ImageError"


def test_animated_gif_uses_the_first_frame(model):
    frames = [Image.new("RGB", (28, 28), c) for c in [(255, 255, 255), (0, 0, 0), (255, 0, 0)]]
    frames[0].paste((0, 0, 0), (8, 4, 20, 24))
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert check_upload(model, data, "named", name="anim.gif") == "prediction"
    first = predict_images(model, [frames[0]]).probs
    assert torch.allclose(predict_images(model, [open_image(data)]).probs, first, atol=1e-6)
    # animated WebP and PNG (APNG) likewise
    for fmt in [f for f in ("PNG", "WEBP") if f in FORMATS]:
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=50, lossless=True)
        assert check_upload(model, buf.getvalue(), "named", name=f"anim.{fmt.lower()}") == "prediction"


def test_sixteen_bit_grayscale_keeps_its_range(model):
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    for fmt in ("PNG", "TIFF"):
        data = encode(Image.fromarray(ramp), fmt)
        assert check_upload(model, data, "named", name=f"deep.{fmt.lower()}") == "prediction"
        arr = np.asarray(open_image(data).convert("L"))
        assert arr.min() == 0 and arr.max() == 255, "16-bit values were clipped instead of rescaled"


def test_sixteen_bit_rgb_png(model):
    rng = np.random.default_rng(0)
    rows = [b"\0" + rng.integers(0, 256, 16 * 6, dtype=np.uint8).tobytes() for _ in range(16)]
    data = png_bytes(16, 16, depth=16, color_type=2, raw=b"".join(rows))
    assert check_upload(model, data, "named", name="deep-rgb.png") == "prediction"


def test_float_tiff_with_nan_and_inf_keeps_its_finite_range(model):
    ramp = np.tile(np.linspace(0, 1, 16, dtype=np.float32), (16, 1))
    ramp[0, :3] = [np.inf, np.nan, -np.inf]  # one bad pixel must not blank the whole image
    data = encode(Image.fromarray(ramp, "F"), "TIFF")
    assert check_upload(model, data, "named", name="float.tif") == "prediction"
    row = np.asarray(open_image(data).convert("L"))[8]
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row.astype(int)) > 0)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(model, fmt):
    img = Image.new("CMYK", (20, 20), (0, 0, 0, 0))  # no ink: white paper
    img.paste((0, 0, 0, 255), (5, 5, 15, 15))  # black ink square
    data = encode(img, fmt)
    assert check_upload(model, data, "named", name=f"print.{fmt.lower()}") == "prediction"
    arr = np.asarray(open_image(data))
    assert arr[0, 0].min() > 200 and arr[10, 10].max() < 60, "CMYK was not converted to RGB properly"


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_is_composited_on_white(model, fmt):
    img = Image.new("P", (20, 20), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    img.paste(1, (0, 0, 10, 20))  # left half red, right half index 0 = transparent black
    data = encode(img, fmt, transparency=0)
    assert check_upload(model, data, "named", name=f"logo.{fmt.lower()}") == "prediction"
    arr = np.asarray(open_image(data))
    assert tuple(arr[5, 2]) == (255, 0, 0)
    assert tuple(arr[5, 15]) == (255, 255, 255), "transparent pixels must be white, not the palette's black"


def test_rgba_transparency_is_composited_on_white(model):
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    data = encode(img, "PNG")
    assert check_upload(model, data, "named", name="clear.png") == "prediction"
    assert np.asarray(open_image(data)).min() == 255


def test_broken_exif_keeps_the_image(model):
    exif = b"Exif\0\0" + b"MM\x00*\x00\x00\x00\x08" + b"\xff" * 40  # an IFD claiming 65535 entries
    img = Image.new("RGB", (16, 16), (10, 200, 10))
    data = encode(img, "JPEG", exif=exif)
    assert check_upload(model, data, "named", name="odd-exif.jpg") == "prediction"


def test_file_paths_and_streams_take_the_same_path(model, tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert open_image(good).size == (8, 8)
    assert open_image(io.BytesIO(good.read_bytes())).size == (8, 8)
    for bad in (tmp_path / "missing.png", tmp_path):
        with pytest.raises(ImageError):
            open_image(bad)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        open_image(tmp_path / "empty.png")


@settings(FUZZ, max_examples=60 * SCALE)
@given(sample=st.one_of(corrupted(valid_images()), st.tuples(st.binary(max_size=256), st.just("bytes"))))
def test_the_apps_upload_helpers_take_this_same_path(model, sample):
    """The app decodes uploads with images.decode_uploads and predicts with images.analyse_images: same
    outcome as open_image + predict_images for the same bytes (error line or pixels and probabilities)."""
    views = pytest.importorskip("sevis.analysis.images")
    data, _ = sample
    good, errors = views.decode_uploads([("upload.bin", data)])
    try:
        img = open_image(data, name="upload.bin")
    except ImageError as e:
        assert good == [] and errors == [str(e)]
        return
    assert errors == [] and len(good) == 1
    assert good[0].image.tobytes() == img.tobytes()
    (res,) = views.analyse_images(model, good, k=3)
    top = predict_images(model, [img]).topk(3)[0]
    assert [c for c, _ in res.topk] == [c for c, _ in top]
    assert np.allclose([p for _, p in res.topk], [p for _, p in top], atol=1e-6)


def test_at_least_500_generated_inputs_went_through_the_upload_path():
    """Runs last (file order): the fuzzers above must have sent ≥500 inputs through check_upload."""
    fuzzed = {k: v for k, v in COUNTS.items() if k != "named"}
    if set(fuzzed) != {"random bytes", "corrupted image", "bomb", "exif orientation"}:
        pytest.skip("run the whole file to count the generated inputs")
    total = sum(COUNTS.values())
    print(f"upload inputs: {COUNTS}; outcomes: {OUTCOMES}")
    assert sum(fuzzed.values()) >= MIN_GENERATED, COUNTS
    assert OUTCOMES["prediction"] >= 100 and OUTCOMES["ImageError"] >= 100, OUTCOMES
    assert total == sum(OUTCOMES.values())
