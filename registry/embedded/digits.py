"""scikit-learn's 8x8 digits and variants in the spirit of SimEx's MNIST variants.

Variants start from the digits upsampled (bilinear) to ``side`` x ``side`` pixels:
rotated (uniform random angle), on texture backgrounds (random crops of scikit-image's bundled
grayscale photos and textures, composited under the digit), on uniform noise, and inverted.
Every random choice comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from registry.embedded.builders import EmbeddedData, composite, register_builder, to_uint8

DIGIT_CLASSES = tuple(str(d) for d in range(10))
BACKGROUND_IMAGES = ("brick", "grass", "gravel", "camera", "moon", "text", "coins")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return to_uint8(bunch.images, 16.0), bunch.target.astype(np.int64)


def _upsample(images: np.ndarray, side: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.BILINEAR))
                     for im in images])


@register_builder("digits")
def build_digits(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = _digits()
    return EmbeddedData(images, labels, DIGIT_CLASSES)


@register_builder("digits-rotated")
def build_rotated(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = _digits()
    big = _upsample(images, params.get("side", 32))
    rng = np.random.default_rng(seed)
    lo, hi = params.get("angle_range", (0.0, 360.0))
    angles = rng.uniform(lo, hi, size=len(big))
    rotated = np.stack([np.asarray(Image.fromarray(im).rotate(a, Image.BILINEAR))
                        for im, a in zip(big, angles)])
    return EmbeddedData(rotated, labels, DIGIT_CLASSES)


def _background_crops(n: int, side: int, rng: np.random.Generator, max_level: float
                      ) -> np.ndarray:
    import skimage.data

    sources = [np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
               for name in BACKGROUND_IMAGES]
    crops = np.empty((n, side, side), dtype=np.uint8)
    picks = rng.integers(len(sources), size=n)
    for i, k in enumerate(picks):
        src = sources[k]
        r = rng.integers(src.shape[0] - side + 1)
        c = rng.integers(src.shape[1] - side + 1)
        crops[i] = src[r:r + side, c:c + side]
    return (crops.astype(np.float32) * max_level).round().astype(np.uint8)


@register_builder("digits-background")
def build_background(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = _digits()
    side = params.get("side", 32)
    big = _upsample(images, side)
    rng = np.random.default_rng(seed)
    bg = _background_crops(len(big), side, rng, params.get("max_level", 0.8))
    return EmbeddedData(composite(big, bg), labels, DIGIT_CLASSES)


@register_builder("digits-noise")
def build_noise(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = _digits()
    side = params.get("side", 32)
    big = _upsample(images, side)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, int(255 * params.get("max_level", 0.8)) + 1, size=big.shape)
    return EmbeddedData(composite(big, noise.astype(np.uint8)), labels, DIGIT_CLASSES)


@register_builder("digits-inverted")
def build_inverted(params: dict[str, Any], seed: int) -> EmbeddedData:
    images, labels = _digits()
    big = _upsample(images, params.get("side", 32))
    return EmbeddedData(255 - big, labels, DIGIT_CLASSES)
