"""Contrast change about each image's mean."""

from __future__ import annotations

import torch

from benchmark.transforms.base import ShiftTransform, register_transform


@register_transform
class Contrast(ShiftTransform):
    """Contrast scaled by level about each image's mean (below 1: flatter)."""

    name = "contrast"

    @staticmethod
    def apply(images: torch.Tensor, level: float, seed: int) -> torch.Tensor:
        x = images.float()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * level + mean

    @staticmethod
    def describe(level: float, seed: int) -> str:
        return f"contrast scaled by {level:g} about each image's mean"
