"""Describable Textures Dataset: ``dtd/images/<class>/*.jpg`` with ``dtd/labels/*.txt``.

The label files (``train1.txt`` ... ``test10.txt``) list ``<class>/<file>`` paths. Option
``split`` selects ``all`` (every image, as the paper used) or one of the published split files.
Every file a label list names must exist.
"""

from __future__ import annotations

from pathlib import Path

from registry.errors import DatasetFormatError
from registry.files import listing
from registry.loaders.base import LoaderOptions, SampleTable, register_loader, require_dir
from registry.loaders.files import FileLoader
from registry.loaders.imagefolder import scan_class_folders


class DtdOptions(LoaderOptions):
    split: str = "all"


def _dtd_base(root: Path) -> Path:
    for cand in (root, root / "dtd"):
        if (cand / "images").is_dir():
            return cand
    raise DatasetFormatError(f"No images/ folder in {root} or {root / 'dtd'}.",
                             "Pass --path pointing at the unpacked dtd-r1.0.1 archive.")


@register_loader
class DtdLoader(FileLoader):
    name = "dtd"
    Options = DtdOptions

    def scan(self, root: Path | None) -> SampleTable:
        base = _dtd_base(require_dir(root, "DTD data", "Pass --path to the unpacked archive."))
        names, files, labels = scan_class_folders(base / "images", self.context.classes,
                                                  str(base / "images"))
        self._check_label_lists(base)
        if self.opts.split != "all":
            keep = set(self._split_entries(base, self.opts.split))
            pairs = [(f, y) for f, y in zip(files, labels)
                     if f"{f.parent.name}/{f.name}" in keep]
            files, labels = [p[0] for p in pairs], [p[1] for p in pairs]
        return self.table(names, files, labels, str(base))

    def _split_entries(self, base: Path, split: str) -> list[str]:
        path = base / "labels" / f"{split}.txt"
        if not path.is_file():
            raise DatasetFormatError(f"Split file {path} not found.",
                                     "Use split 'all' or one of train1..10, val1..10, test1..10.")
        return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]

    def _check_label_lists(self, base: Path) -> None:
        labels_dir = base / "labels"
        if not labels_dir.is_dir():
            raise DatasetFormatError(f"Label folder {labels_dir} not found.",
                                     "Unpack the complete dtd archive (images/ and labels/).")
        missing = [f"{lst.name} lists {entry}"
                   for lst in sorted(labels_dir.glob("*[0-9].txt"))
                   for entry in self._split_entries(base, lst.stem)
                   if not (base / "images" / entry).is_file()]
        if missing:  # every missing file in one error, so one pass fixes them all
            raise DatasetFormatError(
                f"{len(missing)} file(s) that the label lists in {labels_dir} name are not in "
                f"{base / 'images'}: {listing(missing)}.", "Unpack the complete dtd archive.")
