"""A subset of an ImageNet-style folder (``train/<wnid>/*.JPEG``), selected by synsets.

Used for STI-10 (ImageNet images of ten texture-like synsets). ``synsets`` maps each class name
to one or more WordNet ids; ``per_class`` caps the images drawn per class (seeded, sorted first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from registry.errors import DatasetFormatError
from registry.loaders.base import LoaderOptions, SampleTable, list_images, register_loader, require_dir
from registry.loaders.files import FileLoader


class ImageNetSubsetOptions(LoaderOptions):
    synsets: dict[str, tuple[str, ...]]
    split_dir: str = "train"
    per_class: int | None = None
    seed: int = 0


@register_loader
class ImageNetSubsetLoader(FileLoader):
    name = "imagenet-subset"
    Options = ImageNetSubsetOptions

    def scan(self, root: Path | None) -> SampleTable:
        hint = "Pass --path pointing at an ImageNet folder that holds train/<wnid>/ subfolders."
        base = require_dir(root, "ImageNet folder", hint)
        split = base / self.opts.split_dir if (base / self.opts.split_dir).is_dir() else base
        rng = np.random.default_rng(self.opts.seed)
        classes = tuple(self.opts.synsets)
        files: list[Path] = []
        labels: list[int] = []
        for label, cls in enumerate(classes):
            images = self._class_images(split, cls, hint)
            if self.opts.per_class is not None and len(images) > self.opts.per_class:
                keep = np.sort(rng.choice(len(images), self.opts.per_class, replace=False))
                images = [images[i] for i in keep]
            files += images
            labels += [label] * len(images)
        return self.table(classes, files, labels, str(split))

    def _class_images(self, split: Path, cls: str, hint: str) -> list[Path]:
        images: list[Path] = []
        for wnid in self.opts.synsets[cls]:
            folder = split / wnid
            if not folder.is_dir():
                raise DatasetFormatError(f"Synset folder {folder} (class '{cls}') is missing.", hint)
            images += list_images(folder)
        if not images:
            raise DatasetFormatError(f"No images for class '{cls}' in {split}.", hint)
        return images
