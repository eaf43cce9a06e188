"""Shared base for formats made of one image file per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.loaders.base import Loader, SampleTable, decode_image, decode_image_sized


class FileLoader(Loader):
    """A loader whose sample references are image paths; decoding runs in threads.

    ``draft_size`` (height, width), set by the cache builder, lets JPEGs decode at a reduced
    DCT scale that is still at least that large (much faster for big photos).
    """

    parallel_read = True
    draft_size: tuple[int, int] | None = None

    def read(self, table: SampleTable, index: int) -> np.ndarray:
        return decode_image(table.refs[index], self.draft_size)

    def read_sized(self, table: SampleTable, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        return decode_image_sized(table.refs[index], self.draft_size)

    @staticmethod
    def table(class_names: tuple[str, ...], files: list[Path], labels: list[int],
              where: str) -> SampleTable:
        return SampleTable(class_names=class_names, labels=np.asarray(labels, dtype=np.int64),
                           refs=tuple(files), where=where)
