"""Device selection: ``auto`` picks CUDA when available; a CUDA request without one is an error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def full_float32() -> Iterator[None]:
    """Convolutions and matrix products in full float32 inside the block (no TF32), then the
    settings as they were. cuDNN runs float32 convolutions in TF32 by default (10-bit
    mantissa): fine for training, but a squared per-sample gradient through ~20 such layers
    was off by up to 7% of its largest value in the stem filters on an H200 (Task2Vec's
    Fisher). No effect on the CPU. These are torch's process-wide switches."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    old = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = old
