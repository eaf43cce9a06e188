"""The registry of embedded-dataset builders and what they return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry.names import Registry


@dataclass(frozen=True)
class EmbeddedData:
    """Images uint8 (N, H, W) or (N, H, W, 3), labels int64 (N,), class names in label order."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


Builder = Callable[[dict[str, Any], int], EmbeddedData]
BUILDERS: Registry[Builder] = Registry("embedded dataset builder")


def to_uint8(x: np.ndarray, max_value: float) -> np.ndarray:
    """Scale ``x`` from [0, max_value] to uint8 0..255 (rounded, clipped)."""
    return (np.clip(x / max_value, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def grid_patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """All ``size`` x ``size`` patches of ``image`` on a grid of step ``stride``, row by row."""
    h, w = image.shape[:2]
    return np.stack([image[r:r + size, c:c + size]
                     for r in range(0, h - size + 1, stride)
                     for c in range(0, w - size + 1, stride)])


def composite(digits: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
    """uint8 digits over uint8 backgrounds, each pixel's digit intensity as its opacity (pure
    ink keeps the digit's value, pure black shows the background)."""
    alpha = digits.astype(np.float32) / 255.0
    out = alpha * digits + (1.0 - alpha) * backgrounds.astype(np.float32)
    return out.round().astype(np.uint8)
