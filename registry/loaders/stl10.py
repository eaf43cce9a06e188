"""STL-10 binary files (``stl10_binary/``): ``{train,test}_X.bin`` hold uint8 images stored
channel by channel in column-major order (3 x 96 x 96 each); ``{train,test}_y.bin`` hold labels
1..10; ``class_names.txt`` names them. The paper's 13,000 images are train + test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader, gather_rows
from registry.loaders.base import LoaderOptions, SampleTable, register_loader, require_dir

SIDE = 96
PIXELS = 3 * SIDE * SIDE


class Stl10Options(LoaderOptions):
    splits: tuple[str, ...] = ("train", "test")


@register_loader
class Stl10Loader(ArrayLoader):
    name = "stl10"
    Options = Stl10Options

    def scan(self, root: Path | None) -> SampleTable:
        hint = "Pass --path pointing at stl10_binary/ (or the folder that contains it)."
        base = require_dir(root, "STL-10 binary files", hint)
        if (base / "stl10_binary").is_dir():
            base = base / "stl10_binary"
        names_file = base / "class_names.txt"
        if not names_file.is_file():
            raise DatasetFormatError(f"{names_file} not found.", hint)
        classes = tuple(ln.strip() for ln in names_file.read_text().splitlines() if ln.strip())
        self._arrays, labels, self._files = [], [], [names_file]
        for split in self.opts.splits:
            x, y = self._split(base, split, len(classes))
            self._arrays.append(x)
            labels.append(y)
        pooled = np.concatenate(labels)
        self._offsets = np.cumsum([0] + [len(a) for a in self._arrays])
        return SampleTable(classes, pooled, np.arange(len(pooled)), str(base))

    def _split(self, base: Path, split: str, n_classes: int) -> tuple[np.memmap, np.ndarray]:
        xpath, ypath = base / f"{split}_X.bin", base / f"{split}_y.bin"
        for p in (xpath, ypath):
            if not p.is_file():
                raise DatasetFormatError(f"STL-10 file {p} not found.", "Unpack the complete archive.")
        size = xpath.stat().st_size
        if size == 0 or size % PIXELS:
            raise DatasetFormatError(f"{xpath} has {size} bytes, not a multiple of {PIXELS}.",
                                     "The file is truncated: download it again.")
        y = np.fromfile(ypath, dtype=np.uint8).astype(np.int64) - 1
        if len(y) != size // PIXELS:
            raise DatasetFormatError(f"{ypath} has {len(y)} labels for {size // PIXELS} images.",
                                     "Download the archive again.")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise DatasetFormatError(f"{ypath} has labels outside 1..{n_classes}.",
                                     "Download the archive again.")
        self._files += [xpath, ypath]
        x = np.memmap(xpath, dtype=np.uint8, mode="r").reshape(-1, 3, SIDE, SIDE)
        return x, y

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        # stored column-major per channel: (c, x, y) -> (y, x, c)
        raw = np.concatenate(gather_rows(self._arrays, self._offsets, indices))
        return np.ascontiguousarray(raw.transpose(0, 3, 2, 1))
