"""Larochelle et al. (2007) MNIST variants (rotated, background-image ...): ``.amat`` text files,
one sample per line: 784 pixel values in [0, 1] then the label. Images are stored column by
column (``transpose: true`` turns them upright)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import LoaderOptions, SampleTable, register_loader, require_dir


class AmatOptions(LoaderOptions):
    files: tuple[str, ...]
    side: int = 28
    transpose: bool = True


def read_amat(path: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, side, side) in [0, 1] and integer labels from one .amat file."""
    if not path.is_file():
        raise DatasetFormatError(f"AMAT file {path} not found.",
                                 "Pass --path pointing at the unzipped variant files.")
    try:
        data = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as err:
        raise DatasetFormatError(f"{path} is not a numeric .amat file ({err}).",
                                 "Download the file again.") from None
    if data.shape[1] != side * side + 1:
        raise DatasetFormatError(f"{path} has {data.shape[1]} columns per row, expected "
                                 f"{side * side + 1} ({side}x{side} pixels + label).",
                                 "Check the card's 'side' option.")
    labels = data[:, -1]
    if np.any(labels != np.round(labels)):
        raise DatasetFormatError(f"{path} has non-integer labels in its last column.",
                                 "Download the file again.")
    return data[:, :-1].reshape(-1, side, side), labels.astype(np.int64)


@register_loader
class AmatLoader(ArrayLoader):
    name = "amat"
    Options = AmatOptions

    def scan(self, root: Path | None) -> SampleTable:
        base = require_dir(root, "AMAT files", "Pass --path pointing at the unzipped files.")
        images, labels, self._files = [], [], []
        for name in self.opts.files:
            x, y = read_amat(base / name, self.opts.side)
            images.append(x.transpose(0, 2, 1) if self.opts.transpose else x)
            labels.append(y)
            self._files.append(base / name)
        pixels = np.concatenate(images)
        self._images = (np.clip(pixels, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        y = np.concatenate(labels)
        classes = self.context.classes or tuple(str(i) for i in range(int(y.max()) + 1))
        return SampleTable(tuple(classes), y, np.arange(len(y)), str(base))

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        return self._images[indices]
