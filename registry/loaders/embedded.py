"""The loader for embedded datasets: runs a registered builder (no files, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from registry.embedded import digits, mnist, standins, skimage_sets, dicom_sets  # noqa: F401  (fill BUILDERS)
from registry.embedded.builders import BUILDERS
from registry.errors import DatasetFormatError
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import LoaderOptions, SampleTable, register_loader


class EmbeddedOptions(LoaderOptions):
    builder: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


@register_loader
class EmbeddedLoader(ArrayLoader):
    name = "embedded"
    Options = EmbeddedOptions
    needs_path = False

    def scan(self, root: Path | None) -> SampleTable:
        data = BUILDERS.get(self.opts.builder)(dict(self.opts.params), self.opts.seed)
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
