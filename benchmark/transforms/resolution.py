"""Lower resolution (a coarser acquisition), at the original size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.transforms.base import ShiftTransform, register_transform


@register_transform
class Resolution(ShiftTransform):
    """Downsampled to level x the side (bilinear, antialiased) and upsampled back."""

    name = "resolution"
    level_range = (0.0, 1.0)  # the scale factor

    @staticmethod
    def apply(images: torch.Tensor, level: float, seed: int) -> torch.Tensor:
        x = images.float()
        h, w = x.shape[-2:]
        small = (max(1, round(h * level)), max(1, round(w * level)))
        x = F.interpolate(x, size=small, mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)

    @staticmethod
    def describe(level: float, seed: int) -> str:
        return f"downsampled to {level:g} of the side (bilinear, antialiased) and upsampled back"
