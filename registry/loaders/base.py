"""The loader contract: every on-disk format is one registered :class:`Loader`.

A loader is built from the card's ``format.options`` (validated by its own pydantic
``Options`` model). :meth:`Loader.scan` walks the data, checks the layout and returns a
:class:`SampleTable` (labels and a reference per sample) without decoding pixels;
:meth:`Loader.read` decodes one sample into a uint8 array (H, W) or (H, W, C).
Errors name the file or value and say what to do.

:func:`register_loader` holds a class to :data:`LOADER_CONTRACT` (everything the registry and
the cache builder read off a loader) and refuses one that lacks any of it, naming it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict

from registry.errors import DatasetFormatError
from registry.names import (LazyRegistry, Requirement, check_extension, is_flag, is_name,
                            subclass_of, takes, validate_options)
from registry.paths import BenchPaths

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp",
                            ".ppm", ".pgm"})
JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini", ".directory"})


class LoaderOptions(BaseModel):
    """Base of every loader's options; unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class LoaderContext:
    """What a loader may need beyond its options: where BENCH_HOME is, the dataset's name and
    the class names the card declares (None for a user's folder whose classes are discovered)."""

    paths: BenchPaths
    dataset: str
    classes: tuple[str, ...] | None = None


SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SampleTable:
    """What a loader found: class names, labels and one reference per sample.

    ``labels`` is int64 (N,) of indices into ``class_names``, or uint8 (N, K) of 0/1 for
    multilabel data. ``refs`` are whatever :meth:`Loader.read` understands (a path, a row).
    """

    class_names: tuple[str, ...]
    labels: np.ndarray
    refs: Sequence[Any]
    where: str
    # the dataset's own split, when it publishes one: int8 (N,) of SPLIT_CODES (MedMNIST)
    splits: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Refuse labels that do not index ``class_names`` (a card listing too few classes)."""
        n, k = len(self.labels), len(self.class_names)
        if n != len(self.refs):
            raise DatasetFormatError(f"{self.where}: {n} labels for {len(self.refs)} samples.",
                                     "Check that the data files belong together.")
        if self.labels.ndim == 2 and self.labels.shape[1] != k:
            raise DatasetFormatError(
                f"Labels in {self.where} have {self.labels.shape[1]} columns, the card "
                f"{k} classes.", "Fix the card's classes (one per label column, in order).")
        if self.labels.ndim == 1 and n and (self.labels.min() < 0 or self.labels.max() >= k):
            raise DatasetFormatError(
                f"Labels in {self.where} run {self.labels.min()}..{self.labels.max()}, "
                f"outside the card's {k} classes {list(self.class_names)}.",
                "Fix the card's classes (one name per label, in label order).")

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def class_counts(self) -> dict[str, int]:
        """Samples per class (positives per label for multilabel data)."""
        if self.multilabel:
            counts = self.labels.sum(axis=0)
        else:
            counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}


class Loader(ABC):
    """Base class of the registered on-disk formats."""

    name: ClassVar[str]
    Options: ClassVar[type[LoaderOptions]] = LoaderOptions
    needs_path: ClassVar[bool] = True
    parallel_read: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any], context: LoaderContext) -> None:
        self.opts = validate_options(self.Options, options, f"loader '{self.name}'",
                                     f"Fix format.options in the card of '{context.dataset}'.")
        self.context = context

    @abstractmethod
    def scan(self, root: Path | None) -> SampleTable:
        """Walk the data below ``root``, validate the layout, return the sample table."""

    @abstractmethod
    def read(self, table: SampleTable, index: int) -> np.ndarray:
        """Decode sample ``index`` into uint8 (H, W) or (H, W, C)."""

    def read_sized(self, table: SampleTable, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Sample ``index`` and its native (height, width) (formats that decode at a reduced
        scale override this to report the stored size)."""
        img = self.read(table, index)
        return img, (int(img.shape[0]), int(img.shape[1]))

    def iter_images(self, table: SampleTable) -> Iterator[np.ndarray]:
        """Decoded samples in table order (array formats override this to read in chunks)."""
        for i in range(len(table)):
            yield self.read(table, i)

    def extra_meta_features(self) -> dict[str, float]:
        """Meta-features the source itself provides (OpenML qualities); none by default."""
        return {}

    def source_files(self, root: Path | None, table: SampleTable) -> list[Path]:
        """Files whose size and modification time fingerprint the source."""
        return [r for r in table.refs if isinstance(r, Path)]


# What the registry (registry/register.py) and the cache builder (registry/cache.py) read off a
# loader class, beside the abstract methods (scan, read; rows for an ArrayLoader)
LOADER_GUIDE = 'the loader contract: docs/contributing.md, "A dataset loader"'
LOADER_CONTRACT = (
    Requirement("name", is_name, 'set name = "my-format" in the class body (lowercase words '
                "joined by dashes; cards name it as format.loader)", own=True),
    Requirement("Options", subclass_of(LoaderOptions),
                "make Options a subclass of registry.loaders.base.LoaderOptions"),
    Requirement("needs_path", is_flag,
                "set needs_path = True (it reads --path) or False (it builds or fetches its data)"),
    Requirement("parallel_read", is_flag,
                "set parallel_read = True only when read() decodes one file per sample in a "
                "thread (as FileLoader does), else False"),
    Requirement("__init__", takes("self", "options", "context"),
                "keep the constructor's (options, context) arguments"),
    Requirement("scan", takes("self", "root"), "scan(self, root) -> SampleTable"),
    Requirement("read", takes("self", "table", "index"), "read(self, table, index) -> uint8 array"),
    Requirement("read_sized", takes("self", "table", "index"),
                "read_sized(self, table, index) -> (image, (height, width))"),
    Requirement("iter_images", takes("self", "table"), "iter_images(self, table) -> images"),
    Requirement("source_files", takes("self", "root", "table"),
                "source_files(self, root, table) -> list of paths"),
    Requirement("extra_meta_features", takes("self"), "extra_meta_features(self) -> dict"),
)


def check_loader(name: str, cls: type[Loader]) -> None:
    """Refuse ``cls`` (a ContractError naming each problem and its fix) unless it is a
    :class:`Loader` meeting :data:`LOADER_CONTRACT`, registered under its own ``name``."""
    check_extension(cls, "loader", Loader, LOADER_CONTRACT, LOADER_GUIDE, name)


# every @register_loader class of this package, found by name without importing it; installed
# plugins add theirs by entry point, held to the same contract
LOADERS: LazyRegistry[type[Loader]] = LazyRegistry("loader", "registry.loaders", "register_loader",
                                                   entry_points="transfer_bench.loaders",
                                                   check=check_loader)


def register_loader(cls: type[Loader]) -> type[Loader]:
    """Class decorator: register ``cls`` under ``cls.name`` once it meets
    :data:`LOADER_CONTRACT` (else a ContractError naming what is missing and the fix)."""
    return LOADERS.add_class(cls)


# Helpers shared by the file-based loaders -------------------------------------------------


def require_dir(path: Path | None, what: str, hint: str) -> Path:
    """``path`` if it is a folder, else a DatasetFormatError naming it."""
    if path is None:
        raise DatasetFormatError(f"No folder given for {what}.", hint)
    if not path.exists():
        raise DatasetFormatError(f"Folder {path} ({what}) does not exist.", hint)
    if not path.is_dir():
        raise DatasetFormatError(f"{path} ({what}) is not a folder.", hint)
    return path


def is_junk(path: Path) -> bool:
    """Archive debris: macOS resource forks, Finder/Explorer metadata, hidden files."""
    return any(p in JUNK_NAMES or p.startswith("._") for p in path.parts) or path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted; junk and non-image files skipped)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not is_junk(p))


def decode_image(path: Path, draft: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to uint8 (H, W) or (H, W, 3); 16-bit grayscale is rescaled."""
    return decode_image_sized(path, draft)[0]


def decode_image_sized(path: Path, draft: tuple[int, int] | None = None
                       ) -> tuple[np.ndarray, tuple[int, int]]:
    """The decoded image and its native (height, width) as stored in the file.

    With ``draft`` (height, width), JPEGs are decoded at the smallest DCT scale that keeps
    both sides at least that large (the native size is still the file's).
    """
    try:
        with Image.open(path) as img:
            native = (img.size[1], img.size[0])
            if draft is not None and img.format == "JPEG":
                img.draft(img.mode, (draft[1], draft[0]))
            img.load()
            return pil_to_array(img), native
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DatasetFormatError(
            f"Image {path} does not decode ({type(err).__name__}: {err}).",
            "Replace or delete the file (a truncated download?) and run add-dataset again.",
        ) from None


def pil_to_array(img: Image.Image) -> np.ndarray:
    """A PIL image as uint8 (H, W) for grayscale or (H, W, 3) for anything else."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return scaled.round().astype(np.uint8)
    if img.mode in ("L", "1"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if img.mode == "LA":
        return np.asarray(img.convert("L"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def class_index(names: Sequence[str], expected: Sequence[str] | None, where: str) -> dict[str, int]:
    """Map class names found on disk to label indices, in the card's order when it has one."""
    found = list(names)
    if expected:
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        if missing or extra:
            raise DatasetFormatError(
                f"Classes in {where} do not match the card: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}.",
                "Point --path at the right folder, or fix the card's classes.")
        return {c: i for i, c in enumerate(expected)}
    return {c: i for i, c in enumerate(sorted(found))}
