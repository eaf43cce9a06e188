"""Shared base for formats made of one image file per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.loaders.base import Loader, SampleTable, decode_image


class FileLoader(Loader):
    """A loader whose sample references are image paths; decoding runs in threads."""

    parallel_read = True

    def read(self, table: SampleTable, index: int) -> np.ndarray:
        return decode_image(table.refs[index])

    @staticmethod
    def table(class_names: tuple[str, ...], files: list[Path], labels: list[int],
              where: str) -> SampleTable:
        return SampleTable(class_names=class_names, labels=np.asarray(labels, dtype=np.int64),
                           refs=tuple(files), where=where)
