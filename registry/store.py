"""The registry store: an SQLite database in ``BENCH_HOME`` of registered datasets.

One row per dataset (card, where the data is, counts, meta-features, fingerprint) and one row per
file (cache arrays and verified source files) with its sha256. A registration is written in one
transaction, so a reader never sees a half-registered dataset.

Locations inside BENCH_HOME (the cache, downloaded data) are stored relative to the home, the
database's folder, so a copied or moved home reads its own files; locations outside it (a
user's ``--path``) stay absolute. Rows written before this rule hold absolute paths: their home
is read off their cache folder (``HOME/cache/NAME/FINGERPRINT``), and where that is not this
home their paths under it are read below this one. Nothing is rewritten: reading a copy never
writes, the copy and the original stay independent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.paths import BenchPaths

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    card TEXT NOT NULL,
    root TEXT,
    loader TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    n_samples INTEGER NOT NULL,
    classes TEXT NOT NULL,
    class_counts TEXT NOT NULL,
    meta_features TEXT NOT NULL,
    cache_dir TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE,
    role TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    shape TEXT,
    PRIMARY KEY (dataset, path)
);
"""


@dataclass(frozen=True)
class FileRecord:
    role: str  # "images 32x32", "labels", "source"
    path: str
    sha256: str
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DatasetRecord:
    """What the store holds about one registered dataset."""

    name: str
    card: dict[str, Any]
    root: str | None
    loader: str
    fingerprint: str
    n_samples: int
    classes: list[str]
    class_counts: dict[str, int]
    meta_features: dict[str, float]
    cache_dir: str
    registered_at: str = ""
    files: list[FileRecord] = field(default_factory=list)

    def file_path(self, role: str) -> str | None:
        """The path of the cache file with ``role`` ("labels", "split", ...), None if absent."""
        return next((f.path for f in self.files if f.role == role), None)


@contextmanager
def connect(path: Path, schema: str, *, write: bool, timeout: float = 60.0
            ) -> Iterator[sqlite3.Connection]:
    """A connection to the registry database ``path`` with ``schema`` created, closed after
    use, in autocommit mode (writers open their own ``BEGIN IMMEDIATE``); a read of a database
    that does not exist yet sees an empty one in memory. Database errors become a
    RegistryError."""
    if not write and not path.exists():
        conn = sqlite3.connect(":memory:")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(schema)
        yield conn
    except sqlite3.DatabaseError as err:
        raise RegistryError(f"Registry database {path} failed: {err}.",
                            "If it is corrupt, move it away and register the datasets again."
                            ) from None
    finally:
        conn.close()


class RegistryStore:
    """Access to the SQLite registry; connections are opened per operation."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self.home = path.absolute().parent  # BENCH_HOME: registry_db is HOME/registry.db

    def _connect(self, write: bool) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path, SCHEMA, write=write, timeout=self.timeout)

    def add(self, record: DatasetRecord) -> None:
        """Insert (or replace) ``record`` and its files in one transaction."""
        with self._connect(write=True) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM datasets WHERE name = ?", (record.name,))
                conn.execute(
                    "INSERT INTO datasets VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (record.name, json.dumps(record.card), self._stored(record.root),
                     record.loader, record.fingerprint, record.n_samples,
                     json.dumps(record.classes), json.dumps(record.class_counts),
                     json.dumps(record.meta_features), self._stored(record.cache_dir),
                     datetime.now(timezone.utc).isoformat(timespec="seconds")))
                conn.executemany(
                    "INSERT INTO files VALUES (?,?,?,?,?)",
                    [(record.name, f.role, self._stored(f.path), f.sha256,
                      json.dumps(f.shape) if f.shape else None) for f in record.files])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def remove(self, name: str) -> bool:
        """Delete ``name``; True if it was registered."""
        with self._connect(write=True) as conn:
            cur = conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
            return cur.rowcount > 0

    def get(self, name: str) -> DatasetRecord | None:
        with self._connect(write=False) as conn:
            row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            files = conn.execute("SELECT role, path, sha256, shape FROM files WHERE dataset = ? "
                                 "ORDER BY role, path", (name,)).fetchall()
        return _record(row, files, self.home)

    def _stored(self, path: str | None) -> str | None:
        """``path`` as written: relative to BENCH_HOME when inside it, else as given."""
        if path is None:
            return None
        try:
            return Path(path).absolute().relative_to(self.home).as_posix()
        except ValueError:
            return path

    def legacy_homes(self) -> set[Path]:
        """The homes rows with absolute cache paths were registered in (this one included):
        rows written before paths were stored relative to the home. Reads only."""
        with self._connect(write=False) as conn:
            rows = conn.execute("SELECT name, cache_dir FROM datasets").fetchall()
        return {h for h in (_registered_in(name, cache_dir) for name, cache_dir in rows) if h}

    def names(self) -> list[str]:
        with self._connect(write=False) as conn:
            return [r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY name")]

    def all(self) -> list[DatasetRecord]:
        return [r for r in (self.get(n) for n in self.names()) if r is not None]


def _registered_in(name: str, cache_dir: str) -> Path | None:
    """The BENCH_HOME an absolute cache folder ``HOME/cache/NAME/FINGERPRINT`` was made in;
    None for a relative one (or one laid out otherwise)."""
    path = Path(cache_dir)
    if not path.is_absolute() or len(path.parents) < 3:
        return None
    home = path.parents[2]
    return home if BenchPaths(home).dataset_cache(name) == path.parent else None


def _record(row: tuple, files: list[tuple], home: Path) -> DatasetRecord:
    """A row read back with its paths as absolute paths below ``home``: relative ones joined
    to it, absolute ones under the home the row was registered in (when not this one) moved
    below it, every other path as stored."""
    (name, card, root, loader, fingerprint, n, classes, counts, meta, cache_dir, at) = row
    then = _registered_in(name, cache_dir)

    def here(path: str) -> str:
        p = Path(path)
        if not p.is_absolute():
            return str(home / p)
        if then is not None and then != home and p.is_relative_to(then):
            return str(home / p.relative_to(then))
        return path

    return DatasetRecord(
        name=name, card=json.loads(card), root=here(root) if root else None, loader=loader,
        fingerprint=fingerprint, n_samples=n, classes=json.loads(classes),
        class_counts=json.loads(counts), meta_features=json.loads(meta),
        cache_dir=here(cache_dir), registered_at=at,
        files=[FileRecord(role, here(path), sha, tuple(json.loads(shape)) if shape else None)
               for role, path, sha, shape in files])
