"""Images that are not garments, for fitting and for checking the domain verdict: noise, stripes, text and photos.

Every kind is deterministic (fixed seeds, fixed strings and sizes) and needs nothing downloaded: the text is drawn
with Pillow's default font, the photos are the ones that ship inside scikit-image (photographs only: its
synthetic test patterns, drawings and text scans are left out) and scikit-learn; without them `photos` is empty.

Two disjoint collections: calibration_negatives() is what the verdict is fitted on (its own seeds and words, and
only the photographs sevis.data.photos trains with); the KINDS are what docs/upload_accuracy.py checks it on (other
seeds, other words, the other photographs, and faces). tests/test_domain*.py check a few.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

# kind -> what the row says
KINDS = {
    "noise": "uniform and Gaussian pixel noise, grey and colour, 28-300 px",
    "stripes": "black-and-white stripes, 1-16 px periods, four orientations, both polarities",
    "text": "words in Pillow's default font, 10-64 px, dark on light and light on dark",
    "photos": "photographs that ship with scikit-image and scikit-learn (none the verdict is fitted on), whole",
    "photo-crops": "square crops (20-70% of the short side) of the same photographs",
    "faces": "the 100 face photos (25 px) of scikit-image's LFW subset",
}

WORDS = ("hello", "Fashion", "SALE 50%", "abc", "12345", "The quick brown fox", "sevis", "T-shirt", "Bag",
         "Ankle boot", "Lorem ipsum dolor", "XYZ", "Hi!", "OK", "Q", "W", "2026", "shoe", "data", "SE-Net")
TEXT_SIZES = (10, 16, 24, 40, 64)
# scikit-image's photographs (its drawings, test patterns and scanned text are not photos of scenes)
SKIMAGE_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
                  "gravel.png", "hubble_deep_field.jpg", "moon.png", "retina.jpg", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "cell.png", "ihc.png", "microaneurysms.png", "clock_motion.png")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
# The verdict's own non-garments (calibration_negatives): words and sizes apart from WORDS and TEXT_SIZES
CALIBRATION_WORDS = ("train", "Mode", "NEW 2x", "xyz", "9876", "jumps over", "lazy dog", "Dress", "Coat", "Sneaker",
                     "Pullover", "Sandal", "A", "zz", "ok?", "1999", "boot", "model", "SE", "qwerty")
CALIBRATION_TEXT_SIZES = (12, 20, 32, 48)


def noise(n: int = 120, seed: int = 7) -> list[Image.Image]:
    """Return n noise images (RGB): uniform grey, Gaussian grey (random mean and spread), uniform colour, in turn."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        s = int(rng.choice([28, 36, 48, 64, 128, 300]))
        if k % 3 == 0:
            a = rng.integers(0, 256, (s, s), dtype=np.uint8)
        elif k % 3 == 1:
            a = np.clip(rng.normal(rng.uniform(40, 215), rng.uniform(10, 80), (s, s)), 0, 255).astype(np.uint8)
        else:
            a = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
        out.append(Image.fromarray(a).convert("RGB"))
    return out


def stripes(sizes: tuple[int, ...] = (36, 96, 200), periods: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16)
            ) -> list[Image.Image]:
    """Return square stripe images (RGB): each size × half-period × orientation (rows, columns, both diagonals) ×
    polarity."""
    out = []
    for size in sizes:
        yy, xx = np.mgrid[:size, :size]
        for p in periods:
            for t in (yy, xx, xx + yy, xx - yy + size):
                a = ((t // p) % 2 * 255).astype(np.uint8)
                out += [Image.fromarray(a).convert("RGB"), Image.fromarray(255 - a).convert("RGB")]
    return out


def text(words: tuple[str, ...] = WORDS, sizes: tuple[int, ...] = TEXT_SIZES, seed: int = 7) -> list[Image.Image]:
    """Return each word drawn at each font size in Pillow's default font, on a canvas a random margin larger,
    alternately light on dark and dark on light (RGB)."""
    rng = np.random.default_rng(seed)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    out = []
    for i, w in enumerate(words):
        for size in sizes:
            font = ImageFont.load_default(size=size)
            left, top, right, bottom = probe.textbbox((0, 0), w, font=font)
            pad = int(rng.integers(2, 20))
            dark = (i + size) % 2 == 0
            im = Image.new("L", (right - left + 2 * pad, max(bottom - top + 2 * pad, 12)), 0 if dark else 255)
            ImageDraw.Draw(im).text((pad - left, pad - top), w, fill=255 if dark else 0, font=font)
            out.append(im.convert("RGB"))
    return out


def photo_files() -> list[Path]:
    """Return the photograph files found in the installed scikit-image and scikit-learn (none if neither is), less
    the ones the verdict is fitted on (sevis.data.photos.TRAINING_PHOTOS)."""
    from sevis.data.photos import TRAINING_PHOTOS
    fitted = {name for _, name in TRAINING_PHOTOS}
    files: list[Path] = []
    try:
        import skimage
        files += [Path(skimage.__file__).parent / "data" / f for f in SKIMAGE_PHOTOS]
    except ImportError:
        pass
    try:
        import sklearn.datasets
        files += [Path(sklearn.datasets.__file__).parent / "images" / f for f in SKLEARN_PHOTOS]
    except ImportError:
        pass
    return [f for f in files if f.is_file() and f.name not in fitted]


def photos() -> list[Image.Image]:
    """Return the photographs of photo_files(), whole (RGB)."""
    out = []
    for f in photo_files():
        with Image.open(f) as im:
            out.append(im.convert("RGB"))
    return out


def photo_crops(per_photo: int = 20, seed: int = 7) -> list[Image.Image]:
    """Return per_photo random square crops of every photograph (side 20-70% of its short side)."""
    rng = np.random.default_rng(seed)
    out = []
    for im in photos():
        w, h = im.size
        for _ in range(per_photo):
            s = max(8, int(rng.uniform(0.2, 0.7) * min(w, h)))
            x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            out.append(im.crop((x0, y0, x0 + s, y0 + s)))
    return out


def faces() -> list[Image.Image]:
    """Return the face photos of scikit-image's LFW subset (its first 100 images; the rest are not faces), RGB;
    none without scikit-image."""
    try:
        import skimage
    except ImportError:
        return []
    path = Path(skimage.__file__).parent / "data" / "lfw_subset.npy"
    if not path.is_file():
        return []
    a = np.load(path)[:100]
    return [Image.fromarray(np.clip(x * 255.0, 0, 255).round().astype(np.uint8)).convert("RGB") for x in a]


def _augmented_crops(photos: list[Image.Image], n: int, side: tuple[float, float], rng: np.random.Generator
                     ) -> list[Image.Image]:
    """Return n square crops of every photo (side a share of its short side), a few flipped, turned, inverted or
    blurred."""
    out = []
    for im in photos:
        w, h = im.size
        for _ in range(n):
            s = max(8, int(rng.uniform(*side) * min(w, h)))
            x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            c = im.crop((x0, y0, x0 + s, y0 + s))
            r = rng.random()
            if r < 0.2:
                c = c.transpose(Image.FLIP_LEFT_RIGHT)
            elif r < 0.3:
                c = c.transpose(Image.ROTATE_90)
            elif r < 0.4:
                c = ImageOps.invert(c)
            elif r < 0.5:
                c = c.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3.0))))
            out.append(c)
    return out


def calibration_negatives(seed: int = 1234) -> list[Image.Image]:
    """Return the non-garments the domain verdict is fitted on (RGB): noise, stripes and words unlike the KINDS'
    (other seeds, sizes, periods and words), and the photographs sevis trains with (sevis.data.photos), whole and as
    85 crops each; no photograph of the KINDS' "photos" and no face."""
    from sevis.data.photos import TRAINING_PHOTOS, photo_path
    rng = np.random.default_rng(seed)
    out = noise(150, seed=99) + stripes(sizes=(48, 150), periods=(1, 2, 5, 7, 10, 14))
    out += text(CALIBRATION_WORDS, CALIBRATION_TEXT_SIZES, seed=5)
    fitted = []
    for package, name in TRAINING_PHOTOS:
        try:
            with Image.open(photo_path(package, name)) as im:
                fitted.append(im.convert("RGB"))
        except FileNotFoundError:
            continue  # without scikit-image or scikit-learn the verdict is fitted without photos
    return out + fitted + _augmented_crops(fitted, 25, (0.15, 0.8), rng) + _augmented_crops(fitted, 60, (0.3, 1.0), rng)


def render_kind(kind: str) -> list[Image.Image]:
    """Return the images of one KINDS key."""
    makers = {"noise": noise, "stripes": stripes, "text": text, "photos": photos, "photo-crops": photo_crops,
              "faces": faces}
    if kind not in makers:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return makers[kind]()
