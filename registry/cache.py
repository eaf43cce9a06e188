"""Decode once into uint8 (N, C, H, W) arrays, one ``.npy`` per image size, written atomically.

Everything is written into a temporary folder next to the final one and renamed into place
when complete, so a crash or a bad image leaves no partial cache behind. The folder name is the
dataset's fingerprint: two identical runs produce the same folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from registry.errors import DatasetFormatError
from registry.files import atomic_folder, file_digest, listing
from registry.loaders.base import Loader, SampleTable

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class CacheResult:
    """The cache folder's files and the native (height, width) range of the decoded images."""

    files: list[CacheFile]
    native_min: tuple[int, int]
    native_max: tuple[int, int]


@dataclass(frozen=True)
class CacheFile:
    """One cached array and its checksum."""

    kind: str  # "images", "labels" or "split"
    path: Path
    shape: tuple[int, ...]
    sha256: str
    size: tuple[int, int] | None = None


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (H, W) or (H, W, C) -> (H, W, channels); RGB to gray with ITU-R 601 luma (as PIL)."""
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == channels:
        return img
    if channels == 3 and img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if channels == 1 and img.shape[2] >= 3:
        rgb = img[..., :3].astype(np.float32)
        luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        return luma.round().clip(0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {img.shape[2]} channels to {channels}")


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8 resized to ``size`` (height, width), bilinear with antialiasing."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    if img.shape[2] in (1, 3):  # one PIL call for L / RGB
        out = np.asarray(Image.fromarray(img if img.shape[2] == 3 else img[..., 0])
                         .resize((w, h), Image.BILINEAR))
        return out if out.ndim == 3 else out[..., None]
    planes = [np.asarray(Image.fromarray(img[..., c]).resize((w, h), Image.BILINEAR))
              for c in range(img.shape[2])]
    return np.stack(planes, axis=2)


def _prepare(img: np.ndarray, native: tuple[int, int], sizes: tuple[tuple[int, int], ...],
             channels: int) -> tuple[tuple[int, int], list[np.ndarray]]:
    """Native (height, width) and the image as (C, H, W) at every size."""
    img = to_channels(img, channels)
    return native, [resize(img, size).transpose(2, 0, 1) for size in sizes]


@dataclass(frozen=True)
class _Bad:
    """A sample that did not decode: what the loader said."""

    message: str


def _prepared(loader: Loader, table: SampleTable, sizes: tuple[tuple[int, int], ...],
              channels: int, workers: int
              ) -> Iterator[tuple[tuple[int, int], list[np.ndarray]] | _Bad]:
    """Prepared samples in table order (a :class:`_Bad` for a file that does not decode, so
    every bad file is found in one pass). File formats decode and resize in threads (PIL
    releases the GIL) through a bounded window, so memory stays flat however fast decoding
    runs."""
    if not loader.parallel_read:  # array formats: chunked reads, stored size = decoded size
        for img in loader.iter_images(table):
            yield _prepare(img, (int(img.shape[0]), int(img.shape[1])), sizes, channels)
        return

    def job(i: int):
        try:
            return _prepare(*loader.read_sized(table, i), sizes, channels)
        except DatasetFormatError as err:
            return _Bad(err.what.rstrip("."))

    if workers <= 1:
        for i in range(len(table)):
            yield job(i)
        return
    window = 4 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for i in range(len(table)):
            pending.append(pool.submit(job, i))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _write_arrays(loader: Loader, table: SampleTable, tmp: Path, sizes: tuple[tuple[int, int], ...],
                  channels: int, workers: int, progress: Progress | None) -> list[tuple[int, int]]:
    n = len(table)
    native: list[tuple[int, int]] = []
    arrays = {size: np.lib.format.open_memmap(tmp / _image_name(size), mode="w+", dtype=np.uint8,
                                              shape=(n, channels, *size)) for size in sizes}
    start = time.perf_counter()
    if hasattr(loader, "draft_size"):
        loader.draft_size = (max(h for h, _ in sizes), max(w for _, w in sizes))
    bad: list[str] = []
    for i, prepared in enumerate(_prepared(loader, table, sizes, channels, workers)):
        if progress:
            progress(1)
        if isinstance(prepared, _Bad):
            bad.append(prepared.message)
            native.append((0, 0))
            continue
        size_hw, planes = prepared
        native.append(size_hw)
        for arr, plane in zip(arrays.values(), planes):
            arr[i] = plane
    if bad:
        del arrays
        raise DatasetFormatError(f"{len(bad)} of {n} images do not decode: {listing(bad)}.",
                                 "Replace or delete those files (a truncated download?) and run "
                                 "add-dataset again; nothing was registered.")
    for arr in arrays.values():
        arr.flush()
    del arrays
    elapsed = max(time.perf_counter() - start, 1e-9)
    log.info("decoded %d images in %.1f s (%.0f images/s)", n, elapsed, n / elapsed)
    np.save(tmp / "labels.npy", table.labels)
    if table.splits is not None:
        np.save(tmp / "split.npy", table.splits)
    return native


def _image_name(size: tuple[int, int]) -> str:
    return f"images_{size[0]}x{size[1]}.npy"


def build_cache(loader: Loader, table: SampleTable, final_dir: Path,
                sizes: tuple[tuple[int, int], ...], channels: int, *, workers: int = 0,
                progress: Progress | None = None) -> CacheResult:
    """Decode every sample into ``final_dir`` (atomically); return the files with checksums.

    Side effects: creates ``final_dir`` (and its parent). If ``final_dir`` already exists (an
    identical earlier or concurrent run), the new copy is discarded and the existing one used.
    """
    workers = workers or min(8, os.cpu_count() or 1)
    with atomic_folder(final_dir, keep_existing=True) as tmp:
        native = np.asarray(_write_arrays(loader, table, tmp, sizes, channels, workers, progress))
        (tmp / "manifest.json").write_text(json.dumps(
            {"n": len(table), "channels": channels, "sizes": [list(s) for s in sizes],
             "classes": list(table.class_names),
             "native_min": native.min(axis=0).tolist(), "native_max": native.max(axis=0).tolist()}))
    manifest = json.loads((final_dir / "manifest.json").read_text())
    return CacheResult(describe_cache(final_dir, sizes), tuple(manifest["native_min"]),
                       tuple(manifest["native_max"]))


def describe_cache(folder: Path, sizes: tuple[tuple[int, int], ...]) -> list[CacheFile]:
    """The cache files of ``folder`` with shapes and sha256 checksums."""
    files = []
    for size in sizes:
        path = folder / _image_name(size)
        shape = np.load(path, mmap_mode="r").shape
        files.append(CacheFile("images", path, tuple(shape), file_digest(path), size))
    for kind in ("labels", "split"):  # split.npy: the dataset's official split, if any
        path = folder / f"{kind}.npy"
        if kind == "labels" or path.is_file():
            files.append(CacheFile(kind, path, tuple(np.load(path).shape), file_digest(path)))
    return files
