"""Trained source models as plain descriptions (no torch import): what a probe may score."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceModel:
    """A trained source model on disk: its dataset, timm architecture, weights file (a
    safetensors state dict with its classifier) and the image size its targets are fed at."""

    name: str
    arch: str
    weights: str
    image_size: tuple[int, int]
