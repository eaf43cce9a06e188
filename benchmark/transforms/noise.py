"""Gaussian pixel noise."""

from __future__ import annotations

import torch

from benchmark.transforms.base import ShiftTransform, register_transform


@register_transform
class Noise(ShiftTransform):
    """Gaussian noise of standard deviation level x 255 added to every pixel."""

    name = "noise"
    seeded = True

    @staticmethod
    def apply(images: torch.Tensor, level: float, seed: int) -> torch.Tensor:
        # drawn on the CPU from a seeded generator, so CPU and CUDA give the same bytes
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(tuple(images.shape), generator=gen).to(images.device)
        return images.float() + noise * level * 255.0

    @staticmethod
    def describe(level: float, seed: int) -> str:
        return (f"Gaussian noise of std {level:g} x 255 added (torch generator seed {seed}), "
                "rounded and clipped to 0..255")
