"""Registering a dataset: resolve its card, find or fetch its files, load and validate every
sample, decode once into the cache, compute meta-features, record it in the store.

A registration either completes or leaves nothing behind: the cache is written atomically, the
store row in one transaction, and a failure in between removes the cache it created.
Registrations of one name are serialised by a file lock; different names run concurrently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from registry.cache import CacheResult, build_cache
from registry.card import NAME_PATTERN, DatasetCard, card_from_dict, load_card
from registry.catalog import Catalog
from registry.download import FetchedFile, fetch, manual_steps
from registry.errors import CardError, DatasetFormatError, DownloadError, RegistryError, UnknownNameError
from registry.loaders import LOADERS, Loader, LoaderContext, SampleTable
from registry.metafeatures import image_features, label_features
from registry.names import unknown_name_message
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress
from registry.store import DatasetRecord, FileRecord, RegistryStore

log = logging.getLogger(__name__)
LOCK_TIMEOUT_S = 3600


@dataclass(frozen=True)
class AddRequest:
    """What `bench add-dataset` was asked to do."""

    name: str
    path: Path | None = None
    card_file: Path | None = None
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sizes: tuple[tuple[int, int], ...] | None = None
    origin: str = "medical"
    modality: str = "unknown"
    force: bool = False
    workers: int = 0


@dataclass(frozen=True)
class AddResult:
    record: DatasetRecord
    already_registered: bool


def _check_name(name: str) -> None:
    if not re.match(NAME_PATTERN, name):
        raise CardError(f"Dataset name '{name}' is not allowed.",
                        "Use lowercase letters and digits, words joined by dashes (e.g. my-xrays).")


Scanned = tuple[Loader, SampleTable]


def resolve_card(req: AddRequest, catalog: Catalog, paths: BenchPaths
                 ) -> tuple[DatasetCard, Scanned | None]:
    """The card for ``req``: from --card, from the catalog, or built for a user's folder (whose
    classes come from scanning it; that scan is returned so registration does not repeat it)."""
    scanned = None
    if req.card_file is not None:
        card = load_card(req.card_file)
        if card.name != req.name.strip().lower():
            raise CardError(f"Card {req.card_file} describes '{card.name}', not '{req.name}'.",
                            f"Run `bench add-dataset {card.name} --card {req.card_file}`.")
    elif req.name.strip().lower() in catalog:
        card = catalog.get(req.name)
        if req.format and req.format != card.format.loader:
            LOADERS.get(req.format)
            card = card.model_copy(update={"format": card.format.model_copy(
                update={"loader": req.format, "options": dict(req.options)})})
    elif req.path is not None and req.format is not None:
        _check_name(req.name)
        card, scanned = _user_card(req, paths)
    else:
        raise UnknownNameError(
            unknown_name_message("dataset", req.name, sorted([*catalog.cards, *catalog.aliases])),
            "To register your own data give both --path DIR and --format LOADER "
            f"(loaders: {', '.join(LOADERS.names())}), or a card with --card FILE.")
    if req.sizes:
        card = card.model_copy(update={"cache_sizes": tuple(req.sizes)})
    if req.path is not None and card.format.loader == "embedded":  # made by code, no files
        raise CardError(f"'{card.name}' is built into the package and reads no folder: --path "
                        f"{req.path} would be ignored; nothing was registered.",
                        f"Drop --path to register '{card.name}'; to register your folder, give "
                        f"it a name of its own: `bench add-dataset my-{card.name} --path "
                        f"{req.path} --format LOADER`.")
    return card, scanned


def _user_card(req: AddRequest, paths: BenchPaths) -> tuple[DatasetCard, Scanned]:
    loader = LOADERS.get(req.format)(dict(req.options), LoaderContext(paths, req.name))
    table = loader.scan(req.path.expanduser().absolute())
    channels = _probe_channels(loader, table)
    data = {
        "name": req.name, "description": f"User dataset registered from {req.path}.",
        "origin": req.origin, "modality": req.modality,
        "task": "binary" if len(table.class_names) == 2 else "multiclass",
        "classes": list(table.class_names), "channels": channels,
        "cache_sizes": [list(s) for s in (req.sizes or ((112, 112),))],
        "license": "unknown", "citation": "", "homepage": "",
        "obtain": {"kind": "manual", "steps": [f"Data provided by the user at {req.path}."]},
        "format": {"loader": req.format, "options": dict(req.options)},
    }
    return card_from_dict(data, f"the card built for '{req.name}'"), (loader, table)


def _probe_channels(loader: Loader, table: SampleTable) -> int:
    """3 if any of the first images is color, else 1."""
    for i in range(min(len(table), 16)):
        img = loader.read(table, i)
        if img.ndim == 3 and img.shape[2] >= 3:
            return 3
    return 1


def _locate(card: DatasetCard, req: AddRequest, paths: BenchPaths, needs_path: bool,
            progress: ProgressFactory) -> tuple[Path | None, list[FetchedFile]]:
    if req.path is not None:
        return req.path.expanduser().absolute(), []
    kind = card.obtain.kind
    if kind == "download":
        dest = paths.dataset_downloads(card.obtain.shared_as or card.name)
        return dest, fetch(card, dest, progress)
    if not needs_path:
        return None, []
    if kind == "manual":
        raise DownloadError(f"'{card.name}' cannot be downloaded automatically.",
                            manual_steps(card))
    raise DownloadError(f"'{card.name}' needs its source data on disk.", manual_steps(card))


def _fingerprint(card: DatasetCard, loader: Loader, root: Path | None, table: SampleTable) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(card.model_dump(mode="json"), sort_keys=True).encode())
    digest.update(str(root).encode())
    for path in loader.source_files(root, table):
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    digest.update(np.ascontiguousarray(table.labels).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(table.refs, dtype=object).astype(str)).tobytes())
    if table.splits is not None:
        digest.update(np.ascontiguousarray(table.splits).tobytes())
    return digest.hexdigest()


def _validate(card: DatasetCard, table: SampleTable) -> None:
    if tuple(table.class_names) != tuple(card.classes):
        raise DatasetFormatError(
            f"Classes found in {table.where} {list(table.class_names)} differ from the card's "
            f"{list(card.classes)}.", "Point --path at the right data, or fix the card.")
    empty = [c for c, n in table.class_counts().items() if n == 0]
    if empty:
        raise DatasetFormatError(f"Class(es) {empty} of '{card.name}' have no samples in "
                                 f"{table.where}.", "Provide data for every class of the card.")
    if card.n_samples is not None and card.n_samples != len(table):
        log.warning("'%s': the card expects %d samples, %s holds %d", card.name,
                    card.n_samples, table.where, len(table))


def _meta_features(table: SampleTable, cache: CacheResult, loader: Loader) -> dict[str, float]:
    """The loader's own qualities (an OpenML dataset's, under OpenML's names), then ours,
    which describe the data as registered and win where the names are shared."""
    first = next(f for f in cache.files if f.kind == "images")
    feats = dict(loader.extra_meta_features())
    feats.update(label_features(table.labels, len(table.class_names)))
    feats.update(image_features(np.load(first.path, mmap_mode="r")))
    feats.update({"native_height_min": cache.native_min[0], "native_width_min": cache.native_min[1],
                  "native_height_max": cache.native_max[0], "native_width_max": cache.native_max[1]})
    return {k: float(v) for k, v in feats.items()}


def _record(card: DatasetCard, root: Path | None, fingerprint: str, table: SampleTable,
            cache: CacheResult, cache_dir: Path, meta: dict[str, float],
            fetched: list[FetchedFile]) -> DatasetRecord:
    files = [FileRecord(f"images {f.size[0]}x{f.size[1]}" if f.size else f.kind, str(f.path),
                        f.sha256, f.shape) for f in cache.files]
    files += [FileRecord("source", str(f.path), f.sha256) for f in fetched]
    return DatasetRecord(
        name=card.name, card=card.model_dump(mode="json"), root=str(root) if root else None,
        loader=card.format.loader, fingerprint=fingerprint, n_samples=len(table),
        classes=list(table.class_names), class_counts=table.class_counts(),
        meta_features=meta, cache_dir=str(cache_dir), files=files)


def add_dataset(req: AddRequest, paths: BenchPaths, catalog: Catalog,
                progress: ProgressFactory = no_progress) -> AddResult:
    """Register ``req.name``; see the module docstring for the guarantees."""
    store = RegistryStore(paths.registry_db)
    if req.path is not None and not req.force and paths.registry_db.is_file():
        existing = store.get(catalog.key(req.name))  # refused before the folder is scanned
        if existing is not None:
            _check_same_folder(existing, req)
    card, scanned = resolve_card(req, catalog, paths)
    paths.locks_dir.mkdir(parents=True, exist_ok=True)
    lock, failed = paths.locks_dir / f"{card.name}.lock", False
    try:
        with FileLock(lock, timeout=LOCK_TIMEOUT_S):
            try:
                return _add_locked(card, scanned, req, paths, store, progress)
            except BaseException:
                _remove_empty_folders(card.name, paths, store)
                failed = store.get(card.name) is None
                raise
    except Timeout:
        raise RegistryError(f"Another registration of '{card.name}' holds its lock.",
                            "Wait for it to finish, then try again.") from None
    finally:
        if failed:  # our registration failed (not another's lock): its lock file goes too
            with contextlib.suppress(OSError):
                lock.unlink()
                paths.locks_dir.rmdir()


def _remove_empty_folders(name: str, paths: BenchPaths, store: RegistryStore) -> None:
    """After a failed registration of a name that is not registered: no empty cache folders."""
    if store.get(name) is None:
        for folder in (paths.dataset_cache(name), paths.cache_dir):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def _add_locked(card: DatasetCard, scanned, req: AddRequest, paths: BenchPaths,
                store: RegistryStore, progress: ProgressFactory) -> AddResult:
    existing = store.get(card.name)
    if existing is not None and not req.force:
        _check_same_source(existing, card, req)
        return AddResult(existing, already_registered=True)
    record = _register_locked(card, req, paths, store, progress, scanned)
    if existing is not None and existing.cache_dir != record.cache_dir:
        shutil.rmtree(existing.cache_dir, ignore_errors=True)
    return AddResult(record, already_registered=False)


def _check_same_folder(existing: DatasetRecord, req: AddRequest) -> None:
    """A registered name asked for again from a folder: the same folder (symlinks resolved)
    or a refusal that names both."""
    if req.path is None or existing.root is None:
        return
    new = req.path.expanduser().absolute()
    if Path(existing.root).resolve() != new.resolve():
        raise RegistryError(f"'{existing.name}' is registered from {existing.root}, not from "
                            f"{new}; nothing was changed.", f"To register it from {new} instead, "
                            "add --force (its cache is rebuilt); to keep it, drop --path.")


def _check_same_source(existing: DatasetRecord, card: DatasetCard, req: AddRequest) -> None:
    """Registering a registered name again is a no-op only if it asks for the same data."""
    _check_same_folder(existing, req)
    new = card.model_dump(mode="json")
    if req.card_file is not None and existing.card != new:
        fields = [k for k in sorted({*existing.card, *new}) if existing.card.get(k) != new.get(k)]
        source = f"from {existing.root}" if existing.root else "from its built-in data"
        raise RegistryError(f"'{card.name}' is registered ({source}) with a card that differs from "
                            f"{req.card_file} in {', '.join(fields)}; nothing was changed.",
                            f"To register it with {req.card_file} instead, add --force (its cache "
                            "is rebuilt); to keep the registered card (`bench datasets show "
                            f"{card.name}`), drop --card.")


def _register_locked(card: DatasetCard, req: AddRequest, paths: BenchPaths, store: RegistryStore,
                     progress: ProgressFactory, scanned: Scanned | None = None) -> DatasetRecord:
    if scanned is not None:  # a user's folder, already scanned to build its card
        (loader, table), root, fetched = scanned, req.path.expanduser().absolute(), []
    else:
        loader_cls = LOADERS.get(card.format.loader)
        loader = loader_cls(dict(card.format.options), LoaderContext(paths, card.name, card.classes))
        root, fetched = _locate(card, req, paths, loader_cls.needs_path, progress)
        table = loader.scan(root)
    _validate(card, table)
    fingerprint = _fingerprint(card, loader, root, table)
    cache_dir = paths.dataset_cache(card.name) / fingerprint[:16]
    created = not cache_dir.exists()
    try:
        with progress(f"decode {card.name}", len(table)) as advance:
            cache = build_cache(loader, table, cache_dir, card.cache_sizes, card.channels,
                                workers=req.workers, progress=advance)
        record = _record(card, root, fingerprint, table, cache, cache_dir,
                         _meta_features(table, cache, loader), fetched)
        store.add(record)
    except BaseException:
        if created:
            shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    log.info("registered '%s': %d samples, %d classes, cache %s", card.name, len(table),
             len(table.class_names), cache_dir)
    return store.get(card.name) or record


def remove_dataset(name: str, paths: BenchPaths) -> bool:
    """Unregister ``name`` and delete its cache; True if it was registered."""
    store = RegistryStore(paths.registry_db)
    paths.locks_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(paths.locks_dir / f"{name}.lock", timeout=LOCK_TIMEOUT_S):
        record = store.get(name)
        if record is None:
            return False
        store.remove(name)
        shutil.rmtree(record.cache_dir, ignore_errors=True)
        return True
