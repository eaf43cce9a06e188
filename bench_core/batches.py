"""Per-batch preparation of device-resident uint8 images: float conversion, grey to 3
channels, optional augmentation, ImageNet normalisation, channels_last on CUDA."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Augment = Callable[[torch.Tensor], torch.Tensor]


class BatchPrep:
    """uint8 (B, C, H, W) on the device -> normalised float, 3 channels, right memory format."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        self.cuda = device.type == "cuda"

    def __call__(self, x: torch.Tensor, augment: Augment | None = None) -> torch.Tensor:
        x = x.float().div_(255.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if augment is not None:
            x = augment(x)  # on [0, 1] images, before normalisation
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x


def class_weights(labels: np.ndarray, n_classes: int, device: torch.device) -> torch.Tensor:
    """scikit-learn's 'balanced' weights: n_samples / (n_classes * count_c)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = len(labels) / (n_classes * np.maximum(counts, 1))
    return torch.tensor(w, dtype=torch.float32, device=device)
