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
  classes of non-digit objects), not clothing. Nine of its pictures are also behind the digits of
  ``mnist-5k-background-image`` (:data:`registry.embedded.mnist.PICTURES`).
- ``heldout-picture-crops``: the same crops of ten other pictures, files that ship inside
  scikit-image and matplotlib and that no background of ``mnist-5k-background-image`` comes
  from (:data:`HELDOUT_PICTURES`: package, file and sha256 of each, checked when it is built).
  The Fashion-MNIST stand-in of the SimEx reproduction (``probes/reproduce_simex.py``).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from registry.embedded.builders import EmbeddedData, register_builder
from registry.errors import DatasetFormatError

LETTERS = tuple("ABCDEFGHIJ")
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf",
              "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
              "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf",
              "cmtt10.ttf", "cmb10.ttf")
OBJECTS = ("astronaut", "camera", "chelsea", "coffee", "coins", "clock", "horse", "moon", "page",
           "rocket")
# class, package, file inside the installed package, sha256 of the file (scikit-image 0.26.0,
# matplotlib 3.11.2): none is a picture that mnist-5k-background-image's backgrounds come from
HELDOUT_PICTURES = (
    ("horse", "skimage", "data/horse.png",
     "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455"),
    ("motorcycle", "skimage", "data/motorcycle_left.png",
     "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
    ("cell", "skimage", "data/cell.png",
     "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515"),
    ("retina", "skimage", "data/retina.jpg",
     "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6"),
    ("histology", "skimage", "data/ihc.png",
     "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
    ("snake-logo", "skimage", "data/logo.png",
     "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168"),
    ("phantom", "skimage", "data/phantom.png",
     "552ff698167aa402cceb17981130607a228a0a0aa7c519299eaa4d5f301ba36c"),
    ("grace-hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
     "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
    ("gift-box", "matplotlib", "mpl-data/sample_data/Minduka_Present_Blue_Pack.png",
     "5e72868826a7a4329a950e5a9efa393594807833fb7f27e5cd001a8afb9cd081"),
    ("brain-mri", "matplotlib", "mpl-data/sample_data/s1045.ima.gz",
     "32b424d64f62b7e71cb24d29fd53938ad5664d608055a67ab2b2af4369f8b89e"),
)


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


@register_builder("font-letters")
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


def _random_crops(picture: Image.Image, n: int, side: int, window: tuple[int, int],
                  rng: np.random.Generator) -> np.ndarray:
    """``n`` square windows of ``window[0]`` to ``window[1]`` pixels (at most the picture's
    short side) at random places, each resized bilinearly to ``side`` x ``side``."""
    lo, hi = window
    out = np.empty((n, side, side), dtype=np.uint8)
    for i in range(n):
        w = int(rng.integers(lo, min(hi, *picture.size) + 1))
        r = int(rng.integers(picture.size[1] - w + 1))
        c = int(rng.integers(picture.size[0] - w + 1))
        out[i] = np.asarray(picture.crop((c, r, c + w, r + w)).resize((side, side),
                                                                       Image.BILINEAR))
    return out


@register_builder("picture-crops")
def build_picture_crops(params: dict[str, Any], seed: int) -> EmbeddedData:
    per_class, side = params.get("per_class", 500), params.get("side", 28)
    window = tuple(params.get("window", (48, 160)))
    rng = np.random.default_rng(seed)
    images = np.concatenate([_random_crops(Image.fromarray(_picture(name)), per_class, side,
                                           window, rng) for name in OBJECTS])
    labels = np.repeat(np.arange(len(OBJECTS), dtype=np.int64), per_class)
    return EmbeddedData(images, labels, OBJECTS)


def package_file(package: str, file: str) -> Path:
    """A data file inside an installed package (found without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DatasetFormatError(f"Package '{package}' is not installed; it holds {file}.",
                                 f"Install it: `pip install {package}`.")
    return Path(spec.origin).parent / file


def heldout_picture(package: str, file: str, sha256: str) -> np.ndarray:
    """One picture of :data:`HELDOUT_PICTURES` as 8-bit grayscale, after checking its bytes:
    PNG and JPEG through Pillow's ``convert("L")`` (ITU-R 601-2 luma, alpha ignored);
    matplotlib's ``s1045.ima.gz``, a 256x256 MRI slice of 16-bit big-endian values 0-215,
    with its values kept as grey levels."""
    path = package_file(package, file)
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DatasetFormatError(
            f"{path} is missing or not the picture the card names (sha256 {sha256[:12]}...).",
            "Install the versions in constraints.txt (scikit-image 0.26.0, matplotlib 3.11.2).")
    if file.endswith(".ima.gz"):
        raw = np.frombuffer(gzip.decompress(data), dtype=">u2").reshape(256, 256)
        return np.clip(raw, 0, 255).astype(np.uint8)
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


@register_builder("heldout-picture-crops")
def build_heldout_picture_crops(params: dict[str, Any], seed: int) -> EmbeddedData:
    per_class, side = params.get("per_class", 500), params.get("side", 28)
    window = tuple(params.get("window", (48, 160)))
    sources = [tuple(p) for p in params.get("pictures", HELDOUT_PICTURES)]
    rng = np.random.default_rng(seed)
    images = np.concatenate([_random_crops(Image.fromarray(heldout_picture(*src[1:])),
                                           per_class, side, window, rng) for src in sources])
    labels = np.repeat(np.arange(len(sources), dtype=np.int64), per_class)
    return EmbeddedData(images, labels, tuple(src[0] for src in sources))
