"""MedMNIST 2D ``.npz`` files: ``{train,val,test}_images`` (N, S, S[, 3]) uint8 and
``{train,val,test}_labels`` (N, 1) for single-label tasks or (N, K) 0/1 for multilabel. The
official train/val/test split is kept (the cache's ``split.npy``), so a suite can evaluate on
it and compare with MedMNIST's published numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import (SPLIT_CODES, LoaderOptions, SampleTable, register_loader,
                                   require_dir)


class MedMnistOptions(LoaderOptions):
    file: str
    splits: tuple[str, ...] = ("train", "val", "test")
    multilabel: bool = False


@register_loader
class MedMnistLoader(ArrayLoader):
    name = "medmnist"
    Options = MedMnistOptions

    def scan(self, root: Path | None) -> SampleTable:
        base = require_dir(root, "MedMNIST files", "Pass --path pointing at the folder with the .npz.")
        path = base / self.opts.file
        if not path.is_file():
            raise DatasetFormatError(f"MedMNIST file {path} not found.",
                                     f"Download {self.opts.file} into {base}.")
        try:
            npz = np.load(path)
            images = [npz[f"{s}_images"] for s in self.opts.splits]
            labels = [npz[f"{s}_labels"] for s in self.opts.splits]
        except (KeyError, ValueError, OSError) as err:
            raise DatasetFormatError(f"{path} lacks the MedMNIST arrays ({err}).",
                                     "Download the file again.") from None
        self._images, self._files = np.concatenate(images), [path]
        y = np.concatenate(labels)
        if len(y) != len(self._images):
            raise DatasetFormatError(f"{path} has {len(self._images)} images and {len(y)} labels.",
                                     "Download the file again.")
        y = y.astype(np.uint8) if self.opts.multilabel else y.reshape(-1).astype(np.int64)
        classes = self.context.classes or tuple(str(i) for i in range(int(y.max()) + 1))
        splits = np.concatenate([np.full(len(im), SPLIT_CODES[s], dtype=np.int8)
                                 for s, im in zip(self.opts.splits, images)])
        return SampleTable(tuple(classes), y, np.arange(len(y)), str(path), splits)

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        return self._images[indices]
