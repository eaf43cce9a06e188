"""ISIC 2018 Task 3 training data: input JPEGs plus the one-hot ground-truth CSV.

Layout as distributed by ISIC::

    ISIC2018_Task3_Training_Input/ISIC_0024306.jpg ... (+ ATTRIBUTION.txt, LICENSE.txt)
    ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv

The CSV has a header ``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC`` and one row per image with 1.0 in
exactly one column. A row without its image, a row that is not one-hot, or a missing file is an
error naming the row.
"""

from __future__ import annotations

import csv
from pathlib import Path

from registry.errors import DatasetFormatError
from registry.loaders.base import LoaderOptions, SampleTable, register_loader, require_dir
from registry.loaders.files import FileLoader

ISIC_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


class IsicOptions(LoaderOptions):
    images_dir: str = "ISIC2018_Task3_Training_Input"
    labels_csv: str = "ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv"
    image_suffix: str = ".jpg"


def _one_hot_row(row: dict[str, str], classes: tuple[str, ...], where: str) -> int:
    try:
        values = [float(row[c]) for c in classes]
    except (KeyError, TypeError, ValueError):
        raise DatasetFormatError(f"{where} has a missing or non-numeric class value.",
                                 "Each row needs 0/1 values in every class column.") from None
    hot = [i for i, v in enumerate(values) if v == 1.0]
    if len(hot) != 1 or any(v not in (0.0, 1.0) for v in values):
        raise DatasetFormatError(f"{where} is not one-hot (values {values}).",
                                 "Each row must have 1.0 in exactly one class column.")
    return hot[0]


@register_loader
class Isic2018Loader(FileLoader):
    name = "isic2018"
    Options = IsicOptions

    def scan(self, root: Path | None) -> SampleTable:
        hint = ("Pass --path pointing at the folder that holds ISIC2018_Task3_Training_Input/ and "
                "ISIC2018_Task3_Training_GroundTruth/ (unzip both archives there).")
        base = require_dir(root, "ISIC 2018 Task 3 data", hint)
        images = require_dir(base / self.opts.images_dir, "ISIC input images", hint)
        csv_path = base / self.opts.labels_csv
        if not csv_path.is_file():
            raise DatasetFormatError(f"Ground-truth CSV {csv_path} not found.", hint)
        files, labels = self._read_csv(csv_path, images)
        return self.table(ISIC_CLASSES, files, labels, str(base))

    def _read_csv(self, csv_path: Path, images: Path) -> tuple[list[Path], list[int]]:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            if not header or header[0] != "image" or set(ISIC_CLASSES) - set(header):
                raise DatasetFormatError(
                    f"{csv_path} header is {header}, expected image,{','.join(ISIC_CLASSES)}.",
                    "Use the official ISIC2018_Task3_Training_GroundTruth.csv.")
            files, labels, missing = [], [], []
            for line, row in enumerate(reader, start=2):
                where = f"{csv_path} line {line} (image '{row.get('image')}')"
                path = images / f"{row['image']}{self.opts.image_suffix}"
                if not path.is_file():
                    missing.append(f"{where}: its image {path} does not exist")
                files.append(path)
                labels.append(_one_hot_row(row, ISIC_CLASSES, where))
        if missing:  # every missing image in one error, so one pass fixes them all
            more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
            raise DatasetFormatError(f"{len(missing)} image(s) are missing: "
                                     f"{'; '.join(missing[:20])}{more}.",
                                     "Unzip the complete ISIC2018_Task3_Training_Input archive.")
        if not files:
            raise DatasetFormatError(f"{csv_path} has no rows.", "Use the official CSV.")
        return files, labels
