"""KimiaPath960: one flat folder of 960 TIFFs; the class is the letter(s) that start the name
(``A1.tif`` ... ``T48.tif``: 20 classes of 48 images)."""

from __future__ import annotations

import re
from pathlib import Path

from registry.errors import DatasetFormatError
from registry.loaders.base import (LoaderOptions, SampleTable, class_index, list_images,
                                   register_loader, require_dir)
from registry.loaders.files import FileLoader


class KimiaOptions(LoaderOptions):
    pattern: str = r"^(?P<label>[A-Za-z]+)\d+$"


@register_loader
class Kimia960Loader(FileLoader):
    name = "kimia960"
    Options = KimiaOptions

    def scan(self, root: Path | None) -> SampleTable:
        hint = "Pass --path pointing at the unzipped KimiaPath960 folder (A1.tif ... T48.tif)."
        base = require_dir(root, "KimiaPath960 images", hint)
        pattern = re.compile(self.opts.pattern)
        images = list_images(base)
        if not images:
            raise DatasetFormatError(f"{base} holds no image files.", hint)
        names = []
        for path in images:
            match = pattern.match(path.stem)
            if not match:
                raise DatasetFormatError(
                    f"File name {path.name} in {base} does not match {self.opts.pattern}.",
                    "Class letters must start the file name (e.g. A12.tif); move other files away.")
            names.append(match.group("label").upper())
        index = class_index(sorted(set(names)), self.context.classes, str(base))
        classes = tuple(sorted(index, key=index.__getitem__))
        return self.table(classes, images, [index[n] for n in names], str(base))
