"""Device selection: ``auto`` picks CUDA when available; a CUDA request without one is an error."""

from __future__ import annotations

import torch

from registry.errors import BenchError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchError(f"--device '{name}' is not a device.", "Use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name} was asked for, but no CUDA device is available.",
                         "Use --device cpu (or auto).")
    return device
