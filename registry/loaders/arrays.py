"""Shared base for formats that store many samples in one array file."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from registry.loaders.base import Loader, SampleTable

CHUNK = 1024


class ArrayLoader(Loader):
    """Samples are rows of arrays; ``refs`` are row numbers into :meth:`rows`."""

    @abstractmethod
    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        """Images for the given (sorted) row references, uint8 (n, H, W[, C])."""

    def read(self, table: SampleTable, index: int) -> np.ndarray:
        return self.rows(table, np.asarray([table.refs[index]]))[0]

    def iter_images(self, table: SampleTable) -> Iterator[np.ndarray]:
        refs = np.asarray(table.refs)
        for start in range(0, len(refs), CHUNK):
            yield from self.rows(table, refs[start:start + CHUNK])

    def source_files(self, root: Path | None, table: SampleTable) -> list[Path]:
        return list(getattr(self, "_files", []))


def gather_rows(parts: list, offsets: np.ndarray, indices: np.ndarray) -> list[np.ndarray]:
    """Rows ``indices`` (sorted, global) of arrays concatenated at ``offsets``, part by part."""
    out = []
    for k, part in enumerate(parts):
        lo, hi = offsets[k], offsets[k + 1]
        local = indices[(indices >= lo) & (indices < hi)] - lo
        if len(local):
            out.append(np.asarray(part[np.sort(local)]))
    return out
