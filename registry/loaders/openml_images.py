"""Image datasets on OpenML, by id, through openml-python.

Each row is one image with its pixels in columns; ``shape`` ([H, W] or [H, W, C], row-major as
OpenML stores MNIST-like data) reshapes them and ``max_value`` scales them to 0..255. The
dataset's OpenML qualities become meta-features. The cache lives in ``BENCH_HOME/openml``;
offline, a prepared cache there is used as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.errors import DatasetFormatError, DownloadError
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import LoaderOptions, SampleTable, register_loader


class OpenMLOptions(LoaderOptions):
    dataset_id: int
    shape: tuple[int, ...]
    max_value: float = 255.0
    target: str | None = None


def _get_dataset(dataset_id: int, cache_root: Path):  # -> openml.datasets.OpenMLDataset
    import openml  # heavy import, only when an OpenML dataset is used
    from openml.exceptions import OpenMLServerException

    openml.config.set_root_cache_directory(str(cache_root))
    openml.config.connection_n_retries = 1
    try:
        return openml.datasets.get_dataset(dataset_id, download_data=True,
                                           download_qualities=True,
                                           download_features_meta_data=True)
    except OpenMLServerException as err:
        raise DownloadError(f"OpenML has no usable dataset {dataset_id} ({err}).",
                            "Check the id on openml.org.") from None
    except Exception as err:  # openml raises many network exception types
        raise DownloadError(
            f"Could not fetch OpenML dataset {dataset_id} ({type(err).__name__}: {err}).",
            f"Connect to the internet, or place a prepared OpenML cache in {cache_root}.") from None


@register_loader
class OpenMLLoader(ArrayLoader):
    name = "openml"
    Options = OpenMLOptions
    needs_path = False

    def scan(self, root: Path | None) -> SampleTable:
        cache_root = root or self.context.paths.openml_dir
        ds = _get_dataset(self.opts.dataset_id, cache_root)
        target = self.opts.target or ds.default_target_attribute
        X, y, _, _ = ds.get_data(target=target)
        pixels = np.asarray(X, dtype=np.float64)
        if pixels.shape[1] != int(np.prod(self.opts.shape)):
            raise DatasetFormatError(
                f"OpenML dataset {self.opts.dataset_id} has {pixels.shape[1]} feature columns; "
                f"shape {list(self.opts.shape)} needs {int(np.prod(self.opts.shape))}.",
                "Fix format.options.shape in the card.")
        scaled = np.clip(pixels / self.opts.max_value, 0.0, 1.0) * 255.0
        self._images = scaled.round().astype(np.uint8).reshape(-1, *self.opts.shape)
        labels, classes = self._labels(y)
        self._qualities = {k: float(v) for k, v in (ds.qualities or {}).items()
                           if v is not None and np.isfinite(v)}
        return SampleTable(classes, labels, np.arange(len(labels)),
                           f"OpenML dataset {self.opts.dataset_id}")

    def _labels(self, y) -> tuple[np.ndarray, tuple[str, ...]]:
        values = [str(v) for v in np.asarray(y)]
        found = sorted(set(values), key=lambda v: (len(v), v))
        classes = self.context.classes or tuple(found)
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DatasetFormatError(
                f"OpenML dataset {self.opts.dataset_id} has labels {unknown} not in the card.",
                "Fix the card's classes.")
        index = {c: i for i, c in enumerate(classes)}
        return np.asarray([index[v] for v in values], dtype=np.int64), tuple(map(str, classes))

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        return self._images[indices]

    def extra_meta_features(self) -> dict[str, float]:
        return dict(getattr(self, "_qualities", {}))
