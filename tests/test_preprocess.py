"""open_image: every odd image becomes a plain RGB image or one clear ImageError."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from sevis import ImageError
from sevis.data.preprocess import MAX_PIXELS, InvertIfLightBackground, grayscale_transform, images_to_batch, open_image


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_rgb_and_formats(image_files):
    img = open_image(image_files["rgb.png"])
    assert img.mode == "RGB" and img.size == (30, 40)
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(image_files["rgb.png"])))
    assert open_image(image_files["photo.jpg"]).size == (48, 64)


def test_bytes_and_file_objects(image_files):
    data = image_files["rgb.png"].read_bytes()
    a, b = open_image(data), open_image(io.BytesIO(data), name="upload.png")
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_grayscale_l(image_files):
    img = open_image(image_files["gray.png"])
    arr = np.asarray(img)
    assert img.mode == "RGB" and arr.shape == (28, 28, 3)
    assert (np.array_equal(arr[..., 0], arr[..., 1])
            and np.array_equal(arr[..., 0], np.asarray(Image.open(image_files["gray.png"]))))


def test_rgba_transparency_is_composited_on_white(image_files):
    arr = np.asarray(open_image(image_files["rgba.png"]))
    assert tuple(arr[0, 0]) == (255, 0, 0)  # opaque red stays red
    assert tuple(arr[-1, -1]) == (255, 255, 255)  # transparent becomes white, not black or red


def test_la_mode():
    la = Image.new("LA", (8, 8), (0, 0))  # black, fully transparent
    assert tuple(np.asarray(open_image(_png_bytes(la)))[0, 0]) == (255, 255, 255)


def test_palette_with_transparency():
    p = Image.new("P", (10, 10), 0)
    p.putpalette([0, 0, 255] + [0, 255, 0] + [0, 0, 0] * 254)
    p.paste(1, (0, 0, 5, 10))  # left half green, right half index 0 (blue, marked transparent)
    arr = np.asarray(open_image(_png_bytes(p, transparency=0)))
    assert tuple(arr[0, 0]) == (0, 255, 0)
    assert tuple(arr[0, 9]) == (255, 255, 255)
    # and a palette image without transparency keeps its colours
    assert tuple(np.asarray(open_image(_png_bytes(p)))[0, 9]) == (0, 0, 255)


def test_16_bit_grayscale_uses_its_full_range():
    arr16 = np.linspace(1000, 60000, 64 * 16).reshape(16, 64).astype(np.uint16)
    img16 = Image.fromarray(arr16)
    data = _png_bytes(img16)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = np.asarray(open_image(data))[..., 0]
    assert out.min() == 0 and out.max() == 255  # rescaled, not clipped to white
    assert len(np.unique(out)) > 200
    assert np.all(np.diff(out.astype(int), axis=1) >= 0)  # order preserved


def test_16_bit_constant_image():
    data = _png_bytes(Image.fromarray(np.full((8, 8), 40000, np.uint16)))
    assert open_image(data).size == (8, 8)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    buf = io.BytesIO()
    cmyk.save(buf, format="JPEG", quality=95)
    img = open_image(buf.getvalue())
    r, g, b = np.asarray(img)[8, 8].astype(int)
    assert img.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = open_image(buf.getvalue())
    assert out.size == (20, 40)  # upright: width and height swapped
    arr = np.asarray(out).astype(int)
    assert arr[2, 10, 0] > 200 and arr[-3, 10, 0] < 60  # the left strip is now on top


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (12, 12), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(io.BytesIO(buf.getvalue())), "n_frames", 1) == 3
    r, g, b = np.asarray(open_image(buf.getvalue()))[5, 5].astype(int)
    assert r > 200 and g < 50 and b < 50


def test_empty_file(image_files):
    with pytest.raises(ImageError, match="empty"):
        open_image(image_files["empty.png"])
    with pytest.raises(ImageError, match="empty"):
        open_image(b"")


def test_truncated_file(image_files):
    with pytest.raises(ImageError, match="truncated or corrupt"):
        open_image(image_files["truncated.png"])


def test_not_an_image(image_files):
    with pytest.raises(ImageError, match="not an image file"):
        open_image(image_files["corrupt.png"])


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused_before_decoding():
    # A valid PNG header that claims 50 000 × 50 000 pixels (2.5 gigapixels), with a tiny payload.
    side = 50_000
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 100))
            + _chunk(b"IEND", b""))
    assert side * side > MAX_PIXELS
    with pytest.raises(ImageError, match="too large|bomb"):
        open_image(data, name="bomb.png")


def test_very_elongated_image():
    with pytest.raises(ImageError, match="elongated"):
        open_image(_png_bytes(Image.new("RGB", (10000, 1))))
    with pytest.raises(ImageError, match="elongated"):
        open_image(_png_bytes(Image.new("L", (1, 10000))))


def test_error_messages_name_the_file_on_one_line(image_files):
    for key in ("empty.png", "truncated.png", "corrupt.png"):
        with pytest.raises(ImageError) as info:
            open_image(image_files[key])
        assert str(info.value).startswith(key) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------ model preprocessing
def test_grayscale_transform_shape_and_normalisation():
    t = grayscale_transform(28, [0.5], [0.25], auto_invert=False)
    x = t(Image.new("RGB", (56, 84), (255, 255, 255)))
    assert x.shape == (1, 28, 28)
    torch.testing.assert_close(x, torch.full((1, 28, 28), 2.0))  # (1 − 0.5) / 0.25


def test_light_background_is_inverted_to_match_fashion_mnist(image_files):
    t = grayscale_transform(28, [0.0], [1.0])
    dark = t(open_image(image_files["gray.png"]))
    light = t(open_image(image_files["garment_light.png"]))
    # the garment on white becomes light on black, like the training images
    assert float(dark[0, 0, 0]) == 0.0 and float(light[0, 0, 0]) == 0.0
    assert float(light[0, 14, 14]) > 0.5
    assert repr(InvertIfLightBackground()).startswith("InvertIfLightBackground")


def test_images_to_batch(embedded_random, image_files):
    imgs = [open_image(image_files[k]) for k in ("rgb.png", "gray.png", "rgba.png")]
    batch = images_to_batch(imgs, embedded_random.preprocess)
    assert batch.shape == (3, 1, 36, 36) and torch.isfinite(batch).all()  # the 28 px garment on a 36 px canvas
