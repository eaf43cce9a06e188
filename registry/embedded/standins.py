"""Honest offline stand-ins for the two sets of the SimEx paper that no installed package ships
(Fashion-MNIST and EMNIST letters). They play the same role in a comparison (a 10-class 28x28
grayscale set that is not digits) and are never given the real dataset's name.

- ``font-letters``: the letters A-J, upper or lower case, drawn with the TrueType fonts that
  ship with matplotlib (DejaVu, STIX, Computer Modern), white on black like EMNIST, with random
  affine jitter (rotation, scale, shear, shift), stroke width and blur. A stand-in for EMNIST
  letters (whose first ten classes the paper kept), not handwriting.
- ``picture-crops``: 28x28 grayscale crops of ten pictures bundled with scikit-image (class =
  picture: astronaut, camera, cat, coffee, coins, clock, horse, moon, page, rocket), each crop a
  random window of 48 to 160 pixels resized down. A stand-in for Fashion-MNIST's role (ten
  classes of non-digit objects), not clothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from registry.embedded.builders import BUILDERS, EmbeddedData

LETTERS = tuple("ABCDEFGHIJ")
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf",
              "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
              "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf",
              "cmtt10.ttf", "cmb10.ttf")
OBJECTS = ("astronaut", "camera", "chelsea", "coffee", "coins", "clock", "horse", "moon", "page",
           "rocket")


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _glyph(letter: str, font: ImageFont.FreeTypeFont, stroke: int) -> Image.Image:
    """The letter drawn centred on a 64x64 black canvas."""
    canvas = Image.new("L", (64, 64), 0)
    draw = ImageDraw.Draw(canvas)
    draw.text((32, 32), letter, fill=255, font=font, anchor="mm", stroke_width=stroke,
              stroke_fill=255)
    return canvas


def _jitter(glyph: Image.Image, rng: np.random.Generator, side: int) -> np.ndarray:
    """Random rotation, scale, shear and shift about the centre, then down to ``side``."""
    angle = np.deg2rad(rng.uniform(-15, 15))
    scale, shear = rng.uniform(0.8, 1.15), rng.uniform(-0.25, 0.25)
    dx, dy = rng.uniform(-4, 4, size=2)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    a, b = cos, sin + shear * cos
    d, e = -sin, cos - shear * sin
    c = 32 - a * 32 - b * 32 - dx
    f = 32 - d * 32 - e * 32 - dy
    out = glyph.transform((64, 64), Image.AFFINE, (a, b, c, d, e, f), Image.BILINEAR)
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return np.asarray(out.resize((side, side), Image.BILINEAR))


@BUILDERS.register("font-letters")
def build_font_letters(params: dict[str, Any], seed: int) -> EmbeddedData:
    per_class, side = params.get("per_class", 500), params.get("side", 28)
    rng = np.random.default_rng(seed)
    fonts = [_font_dir() / name for name in FONT_FILES]
    images = np.empty((per_class * len(LETTERS), side, side), dtype=np.uint8)
    for label, letter in enumerate(LETTERS):
        for i in range(per_class):
            font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]),
                                      size=int(rng.integers(36, 50)))
            shown = letter if rng.random() < 0.5 else letter.lower()
            glyph = _glyph(shown, font, int(rng.integers(0, 3)))
            images[label * per_class + i] = _jitter(glyph, rng, side)
    labels = np.repeat(np.arange(len(LETTERS), dtype=np.int64), per_class)
    return EmbeddedData(images, labels, LETTERS)


def _picture(name: str) -> np.ndarray:
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:
        image = np.where(image, 0, 255)  # the horse silhouette: black horse on white
    if image.ndim == 3:
        return np.asarray(Image.fromarray(image[..., :3].astype(np.uint8)).convert("L"))
    return image.astype(np.uint8)


@BUILDERS.register("picture-crops")
def build_picture_crops(params: dict[str, Any], seed: int) -> EmbeddedData:
    per_class, side = params.get("per_class", 500), params.get("side", 28)
    lo, hi = params.get("window", (48, 160))
    rng = np.random.default_rng(seed)
    images = np.empty((per_class * len(OBJECTS), side, side), dtype=np.uint8)
    for label, name in enumerate(OBJECTS):
        picture = Image.fromarray(_picture(name))
        for i in range(per_class):
            w = int(rng.integers(lo, min(hi, *picture.size) + 1))
            r = int(rng.integers(picture.size[1] - w + 1))
            c = int(rng.integers(picture.size[0] - w + 1))
            crop = picture.crop((c, r, c + w, r + w)).resize((side, side), Image.BILINEAR)
            images[label * per_class + i] = np.asarray(crop)
    labels = np.repeat(np.arange(len(OBJECTS), dtype=np.int64), per_class)
    return EmbeddedData(images, labels, OBJECTS)
