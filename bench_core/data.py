"""Datasets held on the device as uint8 (N, C, H, W): batches are index gathers, never decodes.

The registry's cache is loaded once (memory-mapped, then copied to the device). If the suite
asks for a size the cache does not hold, the largest cached size is resized once on the device
(bilinear, antialiased) and a warning says how to cache the exact size.
"""

from __future__ import annotations

from pathlib import Path
import socket

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from registry.errors import RegistryError
from registry.store import DatasetRecord

log = logging.getLogger(__name__)
RESIZE_CHUNK = 1024


@dataclass
class DeviceData:
    """Images uint8 (N, C, H, W) and labels int64 (N,) on ``device``; host copy of labels."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    labels_np: np.ndarray
    classes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _images_files(record: DatasetRecord) -> dict[tuple[int, int], str]:
    out = {}
    for f in record.files:
        if f.role.startswith("images ") and f.shape:
            out[(f.shape[2], f.shape[3])] = f.path
    return out


def load_device_data(record: DatasetRecord, size: tuple[int, int], device: torch.device
                     ) -> DeviceData:
    """``record``'s cache at ``size`` on ``device``."""
    files = _images_files(record)
    labels_path = record.file_path("labels")
    if not files or labels_path is None:
        raise RegistryError(f"'{record.name}' has no cache files in the registry.",
                            f"Run `bench add-dataset {record.name} --force`.")
    _check_present(record, [labels_path, *files.values()])
    labels = np.load(labels_path)
    if labels.ndim != 1:
        raise RegistryError(f"'{record.name}' is multilabel; the benchmark trains single-label "
                            "classifiers.", "Pick a single-label dataset as source or target.")
    size = tuple(size)
    if size in files:
        images = torch.from_numpy(np.load(files[size]))
        images = images.to(device)
    else:
        largest = max(files, key=lambda s: s[0] * s[1])
        log.warning("'%s' is cached at %s, not %dx%d: resizing once on the device "
                    "(cache it with `bench add-dataset %s --force --size %dx%d`)", record.name,
                    ", ".join(f"{h}x{w}" for h, w in files), *size, record.name, *size)
        images = _resize_on_device(np.load(files[largest], mmap_mode="r"), size, device)
    return DeviceData(record.name, images, torch.from_numpy(labels).to(device), labels,
                      list(record.classes))


def _check_present(record: DatasetRecord, paths: list[str]) -> None:
    """The cache files exist on this machine (a cluster worker sees the driver's paths)."""

    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise RegistryError(f"'{record.name}' cache file {missing[0]} is missing on host "
                            f"{socket.gethostname()}.",
                            "On a cluster put BENCH_HOME on storage every node mounts at the same "
                            f"path; on one machine run `bench add-dataset {record.name} --force`.")


def _resize_on_device(images: np.ndarray, size: tuple[int, int], device: torch.device
                      ) -> torch.Tensor:
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8, device=device)
    for start in range(0, images.shape[0], RESIZE_CHUNK):
        x = torch.from_numpy(np.array(images[start:start + RESIZE_CHUNK])).to(device).float()
        y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out[start:start + len(x)] = y.round().clamp(0, 255).to(torch.uint8)
    return out


class DeviceDataCache:
    """The last dataset loaded onto the device, reused by the next job that asks for the same
    one (jobs of a pair come in a row). A copy sent to another process starts empty."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._data: DeviceData | None = None

    def get(self, record: DatasetRecord, size: tuple[int, int], device: torch.device
            ) -> DeviceData:
        key = (record.name, record.fingerprint, tuple(size), str(device))
        if key != self._key:
            self._key, self._data = None, None  # free the previous one first
            self._data, self._key = load_device_data(record, size, device), key
        return self._data

    def __getstate__(self) -> dict:
        return {"_key": None, "_data": None}
