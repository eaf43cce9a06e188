"""Result sets in the registry: transfer tables imported into BENCH_HOME, beside the datasets.

Each imported table is a folder ``BENCH_HOME/results/NAME/`` (the Data Package of
:mod:`registry.transfer_table`) and a row of the ``result_sets`` table of the registry's SQLite
store (name, version, metric, counts, protocol, the folder relative to BENCH_HOME). Imports are
idempotent by content hash: the same table under the same name is one table (nothing is
written), a changed one under the same name is refused unless ``replace``. A failed import
leaves neither a folder nor a row behind: the folder is written under a temporary name and
renamed, the row inserted in the same step, and both undone on error.

Built-in result sets ship inside the package (``registry/results_builtin/NAME/``): the tables
of the default and wide suites, so that a method can be judged on a fresh install
(``bench score my_scores.csv --results wide``). A name is looked up in BENCH_HOME first.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from registry.files import atomic_folder
from registry.names import unknown_name_message
from registry.paths import BenchPaths
from registry.store import connect
from registry.transfer_table import (DESCRIPTOR, TransferTable, TransferTableError, read_table,
                                     validate, write_files)

BUILTIN_DIR = Path(__file__).parent / "results_builtin"
SCHEMA = """
CREATE TABLE IF NOT EXISTS result_sets (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    metric TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    n_targets INTEGER NOT NULL,
    n_candidates INTEGER NOT NULL,
    protocol_id TEXT,
    path TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    descriptor TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ResultSetRecord:
    """What the registry holds about one result set (``builtin``: shipped in the package)."""

    name: str
    version: str
    metric: str
    n_rows: int
    n_targets: int
    n_candidates: int
    protocol_id: str | None
    path: Path
    imported_at: str
    descriptor: dict[str, Any]
    builtin: bool = False

    def summary(self) -> dict[str, Any]:
        meta = self.descriptor.get("transfer_bench", {})
        return {"name": self.name, "version": self.version, "metric": self.metric,
                "rows": self.n_rows, "targets": self.n_targets,
                "candidates": self.n_candidates, "protocol_id": self.protocol_id,
                "repeats_are": meta.get("repeats_are"), "builtin": self.builtin,
                "title": self.descriptor.get("title"), "imported_at": self.imported_at,
                "licenses": self.descriptor.get("licenses"),
                "citation": meta.get("citation"), "path": str(self.path)}


@dataclass(frozen=True)
class ImportOutcome:
    record: ResultSetRecord
    status: str  # "imported", "unchanged" (the same table was there), "replaced"


def _record(row: sqlite3.Row, home: Path) -> ResultSetRecord:
    return ResultSetRecord(row["name"], row["version"], row["metric"], row["n_rows"],
                           row["n_targets"], row["n_candidates"], row["protocol_id"],
                           home / row["path"], row["imported_at"], json.loads(row["descriptor"]))


def _builtin(name: str) -> ResultSetRecord | None:
    folder = BUILTIN_DIR / name
    if not (folder / DESCRIPTOR).is_file():
        return None
    doc = json.loads((folder / DESCRIPTOR).read_text())
    counts = doc.get("transfer_bench", {}).get("counts", {})
    return ResultSetRecord(name, doc.get("version", ""),
                           doc.get("transfer_bench", {}).get("metric", ""),
                           counts.get("rows", 0), counts.get("targets", 0),
                           counts.get("candidates", 0),
                           doc.get("transfer_bench", {}).get("protocol_id"), folder,
                           doc.get("created", ""), doc, builtin=True)


def builtin_names() -> list[str]:
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / DESCRIPTOR).is_file())


class ResultStore:
    """The result sets of one BENCH_HOME (and the built-in ones)."""

    def __init__(self, paths: BenchPaths) -> None:
        self.paths = paths
        self.db = paths.registry_db
        self.root = paths.home / "results"

    @contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        with connect(self.db, SCHEMA, write=write) as con:
            con.row_factory = sqlite3.Row
            yield con

    def records(self) -> list[ResultSetRecord]:
        """Every result set: the imported ones, then the built-in ones not shadowed by them."""
        with self._connect(write=False) as con:
            mine = [_record(r, self.paths.home) for r in
                    con.execute("SELECT * FROM result_sets ORDER BY name")]
        taken = {r.name for r in mine}
        return mine + [b for n in builtin_names() if n not in taken
                       and (b := _builtin(n)) is not None]

    def get(self, name: str) -> ResultSetRecord:
        """The record of result set ``name``; a clear error listing the known names."""
        for record in self.records():
            if record.name == name:
                return record
        known = [r.name for r in self.records()]
        raise TransferTableError(unknown_name_message("result set", name, known) +
                                 f" Known: {', '.join(known) or 'none'}.",
                                 "See `bench results list`; import one with `bench results "
                                 "import PATH --name NAME`.")

    def load(self, name: str) -> TransferTable:
        return read_table(self.get(name).path)

    def import_table(self, table: TransferTable, name: str, *, replace: bool = False
                     ) -> ImportOutcome:
        """Store ``table`` as result set ``name`` (see the module docstring)."""
        table = validate(_named(table, name))  # the version is that of the validated table
        version = table.version
        with self._connect(write=True) as con:
            con.execute("BEGIN IMMEDIATE")
            old = con.execute("SELECT * FROM result_sets WHERE name = ?", (name,)).fetchone()
            if old is not None and old["version"] == version:
                con.rollback()
                return ImportOutcome(_record(old, self.paths.home), "unchanged")
            if old is not None and not replace:
                con.rollback()
                raise TransferTableError(
                    f"Result set '{name}' exists with another content (version "
                    f"{old['version'][:19]}..., the new table is {version[:19]}...).",
                    "Import it under another --name, or pass --replace to replace it.")
            record = self._write(con, table, name)
        return ImportOutcome(record, "replaced" if old is not None else "imported")

    def _write(self, con: sqlite3.Connection, table: TransferTable, name: str
               ) -> ResultSetRecord:
        """Write the folder and its row inside ``con``'s open transaction: both or neither."""
        try:
            with atomic_folder(self.root / name) as tmp:
                doc = write_files(table, tmp)
                counts = doc["transfer_bench"]["counts"]
                con.execute("INSERT OR REPLACE INTO result_sets VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (name, doc["version"], table.metric, counts["rows"],
                             counts["targets"], counts["candidates"],
                             table.meta.get("protocol_id"), str(Path("results") / name),
                             doc["created"], json.dumps(doc, default=str)))
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return _record(con.execute("SELECT * FROM result_sets WHERE name = ?",
                                   (name,)).fetchone(), self.paths.home)

    def remove(self, name: str) -> ResultSetRecord:
        """Delete imported result set ``name`` (row and folder); built-in ones cannot be."""
        record = self.get(name)
        if record.builtin:
            raise TransferTableError(f"'{name}' is a built-in result set; it cannot be removed.",
                                     "Built-in result sets ship with the package.")
        with self._connect(write=True) as con:
            con.execute("DELETE FROM result_sets WHERE name = ?", (name,))
            shutil.rmtree(record.path, ignore_errors=True)
        return record


def _named(table: TransferTable, name: str) -> TransferTable:
    if not name or name != name.lower() or any(c in name for c in " /\\:"):
        raise TransferTableError(f"'{name}' is no valid result set name.",
                                 "Use lowercase letters, digits and dashes, e.g. cats-scans.")
    return replace(table, meta={**table.meta, "name": name})
