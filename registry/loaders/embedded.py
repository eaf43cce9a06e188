"""The loader for embedded datasets: runs a registered builder (no files, no network).

The builder is found by name in registry/embedded/ (:data:`BUILDERS` reads the sources and
imports only the module that holds it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from registry.embedded.builders import BUILDERS, GUIDE, EmbeddedData
from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import LoaderOptions, SampleTable, register_loader
from registry.names import ContractError


class EmbeddedOptions(LoaderOptions):
    builder: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


@register_loader
class EmbeddedLoader(ArrayLoader):
    """A registered builder of the offline datasets (``builder``, ``params``, ``seed``)."""

    name = "embedded"
    Options = EmbeddedOptions
    needs_path = False

    def scan(self, root: Path | None) -> SampleTable:
        data = BUILDERS.get(self.opts.builder)(dict(self.opts.params), self.opts.seed)
        _check_output(self.opts.builder, data)
        classes = self.context.classes or data.classes
        if tuple(classes) != data.classes:
            raise DatasetFormatError(
                f"Builder '{self.opts.builder}' makes classes {list(data.classes)}, "
                f"the card lists {list(classes)}.", "Fix the card's classes.")
        self._images = data.images
        return SampleTable(data.classes, data.labels, np.arange(len(data.labels)),
                           f"embedded:{self.opts.builder}")

    def rows(self, table: SampleTable, indices: np.ndarray) -> np.ndarray:
        return self._images[indices]


def _check_output(builder: str, data: object) -> None:
    """Refuse what a builder returned unless it is EmbeddedData of uint8 images, one label each."""
    images = getattr(data, "images", None)
    labels = getattr(data, "labels", None)
    if isinstance(data, EmbeddedData) and isinstance(images, np.ndarray) \
            and images.dtype == np.uint8 and (images.ndim == 3 or images.ndim == 4
                                              and images.shape[3] == 3) \
            and isinstance(labels, np.ndarray) and labels.shape == images.shape[:1]:
        return
    what = (f"images {getattr(images, 'dtype', '?')} {getattr(images, 'shape', '?')}, labels "
            f"{getattr(labels, 'shape', '?')}") if isinstance(data, EmbeddedData) else \
        type(data).__name__
    raise ContractError(f"Embedded dataset builder '{builder}' returned {what}.",
                        "A builder returns EmbeddedData(images uint8 (N, H, W) or (N, H, W, 3), "
                        f"labels int64 (N,), classes) ({GUIDE}).")
