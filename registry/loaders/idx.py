"""IDX files (MNIST, Fashion-MNIST, EMNIST): ``*-images-idx3-ubyte[.gz]`` and
``*-labels-idx1-ubyte[.gz]`` pairs. EMNIST stores images transposed and letters as 1..26
(``transpose: true``, ``label_offset: 1``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import LoaderOptions, SampleTable, register_loader, require_dir

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxOptions(LoaderOptions):
    pairs: tuple[tuple[str, str], ...]
    transpose: bool = False
    label_offset: int = 0


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzip-compressed or not)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as err:
        raise DatasetFormatError(f"Cannot read IDX file {path} ({err}).",
                                 "Download the file again.") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DatasetFormatError(f"{path} is not an IDX file (bad magic number).",
                                 "Use the original *-idx?-ubyte files.")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    body = data[4 + 4 * ndim:]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(body) != expected:
        raise DatasetFormatError(f"{path} holds {len(body)} data bytes, its header says {expected}.",
                                 "The file is truncated: download it again.")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(base: Path, name: str) -> Path:
    for cand in (base / name, base / f"{name}.gz", base / name.removesuffix(".gz")):
        if cand.is_file():
            return cand
    raise DatasetFormatError(f"IDX file {base / name} not found.",
                             "Pass --path pointing at the folder with the IDX files.")


@register_loader
class IdxLoader(ArrayLoader):
    name = "idx"
    Options = IdxOptions

    def scan(self, root: Path | None) -> SampleTable:
        base = require_dir(root, "IDX files", "Pass --path pointing at the folder with the files.")
        images, labels, self._files = [], [], []
        for img_name, lbl_name in self.opts.pairs:
            ipath, lpath = _find(base, img_name), _find(base, lbl_name)
            x, y = read_idx(ipath), read_idx(lpath)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise DatasetFormatError(f"{ipath.name} {x.shape} and {lpath.name} {y.shape} "
                                         "do not pair up.", "Use matching image/label files.")
            images.append(x.transpose(0, 2, 1) if self.opts.transpose else x)
            labels.append(y.astype(np.int64) - self.opts.label_offset)
            self._files += [ipath, lpath]
        self._images = np.ascontiguousarray(np.concatenate(images).astype(np.uint8))
        y = np.concatenate(labels)
        classes = self.context.classes or tuple(str(i) for i in range(int(y.max()) + 1))
        if y.min() < 0 or y.max() >= len(classes):
            raise DatasetFormatError(f"Labels in {base} run {y.min()}..{y.max()}, outside the "
                                     f"card's {len(classes)} classes.", "Check label_offset.")
        return SampleTable(tuple(classes), y, np.arange(len(y)), str(base))

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        return self._images[indices]
