"""PatchCamelyon HDF5 files, with seeded stratified nested subsets (PCam-middle, PCam-small).

Files as published: ``camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5`` with dataset
``x`` (N, 96, 96, 3) uint8 and ``y`` (N, 1, 1, 1) uint8. The splits are concatenated in the
order of ``splits``; ``subset`` draws a stratified subset from that pool with ``seed``
(see :mod:`registry.sampling`: the same seed gives nested subsets).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader, gather_rows
from registry.loaders.base import LoaderOptions, SampleTable, register_loader, require_dir
from registry.sampling import stratified_subset

PREFIX = "camelyonpatch_level_2_split"


class PcamOptions(LoaderOptions):
    splits: tuple[str, ...] = ("train", "valid", "test")
    subset: int | None = None
    seed: int = 0


def _open_h5(path: Path, key: str) -> h5py.Dataset:
    if not path.is_file():
        gz = path.with_name(path.name + ".gz")
        extra = f" (found {gz.name}: gunzip it first)" if gz.is_file() else ""
        raise DatasetFormatError(f"PCam file {path} not found{extra}.",
                                 "Pass --path pointing at the folder with the PCam .h5 files.")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DatasetFormatError(f"PCam file {path} is not a readable HDF5 file ({err}).",
                                 "Download it again.") from None
    if key not in handle:
        raise DatasetFormatError(f"PCam file {path} has no dataset '{key}' (keys: {list(handle)}).",
                                 "Use the official PCam files.")
    return handle[key]


@register_loader
class PcamLoader(ArrayLoader):
    name = "pcam"
    Options = PcamOptions

    def scan(self, root: Path | None) -> SampleTable:
        base = require_dir(root, "PCam files", "Pass --path pointing at the folder with the .h5 files.")
        self._x, labels, self._files = [], [], []
        for split in self.opts.splits:
            xpath, ypath = base / f"{PREFIX}_{split}_x.h5", base / f"{PREFIX}_{split}_y.h5"
            x, y = _open_h5(xpath, "x"), _open_h5(ypath, "y")
            if x.shape[0] != y.shape[0] or x.ndim != 4 or x.shape[-1] != 3:
                raise DatasetFormatError(
                    f"{xpath.name} has shape {x.shape} and {ypath.name} {y.shape}.",
                    "x must be (N, 96, 96, 3) and y must have N rows: use the official files.")
            self._x.append(x)
            self._files += [xpath, ypath]
            labels.append(np.asarray(y[:]).reshape(-1).astype(np.int64))
        pooled = np.concatenate(labels)
        self._offsets = np.cumsum([0] + [x.shape[0] for x in self._x])
        refs = np.arange(len(pooled))
        if self.opts.subset is not None:
            refs = stratified_subset(pooled, self.opts.subset, self.opts.seed)
        classes = self.context.classes or ("no-tumor", "tumor")
        return SampleTable(class_names=tuple(classes), labels=pooled[refs], refs=refs,
                           where=str(base))

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        return np.concatenate(gather_rows(self._x, self._offsets, indices))
