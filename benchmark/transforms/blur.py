"""Gaussian blur (images out of focus)."""

from __future__ import annotations

import math

import torch
from torchvision.transforms.functional import gaussian_blur

from benchmark.transforms.base import ShiftTransform, register_transform


@register_transform
class Blur(ShiftTransform):
    """Gaussian blur of sigma = level pixels (kernel 2 ceil(3 sigma) + 1)."""

    name = "blur"

    @staticmethod
    def apply(images: torch.Tensor, level: float, seed: int) -> torch.Tensor:
        k = 2 * math.ceil(3 * level) + 1
        return gaussian_blur(images.float(), [k, k], [level, level])

    @staticmethod
    def describe(level: float, seed: int) -> str:
        return f"Gaussian blur of sigma {level:g} pixels"
