"""Kermany et al. pediatric chest X-rays: ``{train,val,test}/{NORMAL,PNEUMONIA}``, merged.

The paper merges the published splits and re-splits with 5-fold CV. Archives found in the wild
nest the tree differently (``chest_xray/``, ``ChestXRay2017/chest_xray/``, Kaggle's duplicate
``chest_xray/chest_xray/``) and carry ``__MACOSX`` and ``.DS_Store`` debris: the loader uses the
shallowest folder that holds the split folders and ignores the debris. Grayscale and RGB JPEGs of
any size are accepted (the cache converts them to the card's channels).
"""

from __future__ import annotations

from pathlib import Path

from registry.errors import DatasetFormatError
from registry.files import listing
from registry.loaders.base import (LoaderOptions, SampleTable, is_junk, list_images,
                                   register_loader, require_dir)
from registry.loaders.files import FileLoader

CHEST_CLASSES = ("NORMAL", "PNEUMONIA")


class ChestOptions(LoaderOptions):
    splits: tuple[str, ...] = ("train", "val", "test")
    max_depth: int = 4


def find_split_parent(root: Path, splits: tuple[str, ...], max_depth: int) -> Path | None:
    """The shallowest folder below ``root`` holding at least one split folder."""
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if any((folder / s).is_dir() for s in splits):
                return folder
        level = sorted(c for f in level for c in f.iterdir() if c.is_dir() and not is_junk(c))
    return None


@register_loader
class ChestXrayLoader(FileLoader):
    name = "chest-xray"
    Options = ChestOptions

    def scan(self, root: Path | None) -> SampleTable:
        hint = ("Pass --path pointing at the unpacked archive (the folder that contains "
                "chest_xray/ or train/, val/, test/ with NORMAL/ and PNEUMONIA/ inside).")
        base = require_dir(root, "chest X-ray data", hint)
        parent = find_split_parent(base, self.opts.splits, self.opts.max_depth)
        if parent is None:
            raise DatasetFormatError(
                f"No split folder ({', '.join(self.opts.splits)}) found below {base}.", hint)
        files: list[Path] = []
        labels: list[int] = []
        problems: list[str] = []
        for split in self.opts.splits:
            if not (parent / split).is_dir():
                continue
            for label, cls in enumerate(CHEST_CLASSES):
                folder = parent / split / cls
                images = list_images(folder) if folder.is_dir() else []
                if not images:
                    problems.append(f"{folder} {'holds no images' if folder.is_dir() else 'is missing'}")
                files += images
                labels += [label] * len(images)
        if problems:  # every missing class folder in one error, so one pass fixes them all
            raise DatasetFormatError(f"{len(problems)} class folder(s) are missing or empty: "
                                     f"{listing(problems)}.",
                                     f"Each split folder needs {' and '.join(CHEST_CLASSES)} with "
                                     "images; unpack the complete archive.")
        return self.table(CHEST_CLASSES, files, labels, str(parent))
