"""Batched augmentation on the device (the paper's Keras generator settings): rotation up to
``rotation`` degrees, width/height shift up to ``shift`` of the size, horizontal flip; one affine
warp per batch via ``affine_grid``/``grid_sample``, edges filled with the border pixels (Keras'
``fill_mode='nearest'``). Randomness comes from an explicit generator, so runs are repeatable."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmark.suite.settings import Augmentation


def random_affine(batch: int, aug: Augmentation, gen: torch.Generator, device: torch.device
                  ) -> torch.Tensor:
    """(B, 2, 3) affine matrices in normalised coordinates."""
    u = torch.rand((batch, 4), generator=gen, device=gen.device).to(device)
    angle = (u[:, 0] * 2 - 1) * math.radians(aug.rotation)
    shift = (u[:, 1:3] * 2 - 1) * (2 * aug.shift)  # normalised coordinates span 2
    flip = torch.where(u[:, 3] < 0.5, -1.0, 1.0) if aug.hflip else torch.ones(batch, device=device)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin * flip, cos, shift[:, 1]], dim=1)], dim=1)
    return theta


def augment(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Augment a float batch (B, C, H, W); identity when every setting is off."""
    if aug.rotation == 0 and aug.shift == 0 and not aug.hflip:
        return x
    theta = random_affine(x.shape[0], aug, gen, x.device).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
