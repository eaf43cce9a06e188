"""Generic image folders: ``ROOT/<class>/<image>`` (torchvision's ImageFolder layout)."""

from __future__ import annotations

from pathlib import Path

from registry.errors import DatasetFormatError
from registry.loaders.base import (LoaderOptions, SampleTable, class_index, is_junk, list_images,
                                   register_loader, require_dir)
from registry.loaders.files import FileLoader


class ImageFolderOptions(LoaderOptions):
    subdir: str | None = None


def scan_class_folders(root: Path, expected: tuple[str, ...] | None, where: str
                       ) -> tuple[tuple[str, ...], list[Path], list[int]]:
    """Images of ``root/<class>/``; every class folder must hold at least one image."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not is_junk(p))
    if not folders:
        raise DatasetFormatError(
            f"{where} has no class subfolders.",
            "Lay the data out as ROOT/<class name>/<image files>.")
    index = class_index([f.name for f in folders], expected, where)
    files: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        images = list_images(folder)
        if not images:
            raise DatasetFormatError(
                f"Class folder {folder} holds no image files (class '{folder.name}' is empty).",
                "Add its images or remove the folder.")
        files += images
        labels += [index[folder.name]] * len(images)
    names = tuple(sorted(index, key=index.__getitem__))
    return names, files, labels


@register_loader
class ImageFolderLoader(FileLoader):
    """One subfolder per class; hidden files and archive debris are skipped."""

    name = "imagefolder"
    Options = ImageFolderOptions

    def scan(self, root: Path | None) -> SampleTable:
        hint = "Pass --path pointing at the folder that holds one subfolder per class."
        base = require_dir(root, "image folder", hint)
        if self.opts.subdir:
            base = require_dir(base / self.opts.subdir, "image folder", hint)
        names, files, labels = scan_class_folders(base, self.context.classes, str(base))
        return self.table(names, files, labels, str(base))
