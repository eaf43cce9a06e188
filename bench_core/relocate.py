"""A BENCH_HOME that was copied or moved: its stores brought to where it is now.

Two stores in a home record locations, and each is handled by what it can take:

- The registry (``registry.db``) is ours, so it stores paths inside the home relative to the
  home (:mod:`registry.store`): a copy reads its own caches and nothing is rewritten. Rows an
  older version wrote hold absolute paths; the home they were written in is read off their
  cache folder and their paths are read below the current home.
- MLflow's SQLite store (``mlflow.db``) records absolute locations and MLflow takes no
  relative ones: experiments' ``artifact_location``, runs' ``artifact_uri``, logged models'
  ``artifact_location`` and model versions' ``storage_location`` (MLflow 3), and values we
  log (a probe's ``options.weights``, a model version's ``folder`` tag). Used in a copy as
  they are, MLflow writes the copy's new artifacts into the original folder. So whenever
  BENCH_HOME's own store is about to be used (:func:`relocate_tracking_store`, called by
  :func:`bench_core.stores.tracking_target`, the one place that turns a home into its store's
  URI) and it recorded another home, every value of every text column that begins with that
  home (as a ``file://`` URI, a ``file:`` spec or a plain path) is made to begin with this
  one, in one SQLite transaction, before MLflow reads or writes anything, and a line is
  logged. MLflow's schema is kept: nothing of ours goes into its database. Rewriting rather
  than translating on every read is what MLflow allows: its clients, the `mlflow ui` server
  and worker processes all read the locations straight from the database.

Where the store was is read off the store itself rather than off a marker that could disagree
with it: the Default experiment's location is ``HOME/mlartifacts/0``, every other experiment's
``HOME/mlartifacts`` or ``HOME/mlartifacts/ID`` (``tracking_target`` gives MLflow that root).
A store opened in place is only read, through a read-only connection. Two processes opening
a moved store at once: the rewrite runs under the store's file lock and re-reads the old
homes inside its transaction, so the second finds nothing left to do; a failure rolls the
whole rewrite back and stops the command (:class:`StoreMoveError`). A store in a folder this
process cannot write is used as it is, with a warning (it reads from the old folder while that
exists). With ``MLFLOW_TRACKING_URI`` set the tracking store is elsewhere and may be shared:
nothing of MLflow is rewritten (a ``mlflow.db`` left in the home is updated when next opened
without the URI). Artifact files (report pages, ``MLmodel``) are records and keep their text.

Config hashes do not change. One hash input names a file in the home: a probe network the
suite pretrains (``file:HOME/models/HASH.safetensors``), hashed with the home's absolute path
since before this module. A moved home writes such a path as it was where the home was first
used (:func:`hashed_options`), so a moved store resumes with nothing redone. That place, the
origin, is kept in ``origin.json`` (:attr:`BenchPaths.origin_marker`) just before a store's
first rewrite, or when such a path is first hashed in a home without a local MLflow store;
without that file it is read off the stores (the root the tracking store records, the home
of the registry's older rows), else it is the home itself.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from filelock import FileLock

from registry.errors import BenchError
from registry.files import atomic_write
from registry.paths import BenchPaths
from registry.store import RegistryStore

log = logging.getLogger(__name__)

_TEXT_TYPES = ("CHAR", "CLOB", "TEXT")  # SQLite's TEXT affinity, by declared type


class StoreMoveError(BenchError):
    """A moved store whose recorded locations could not be rewritten."""


def relocate_tracking_store(paths: BenchPaths) -> int:
    """Rewrite the locations BENCH_HOME's SQLite MLflow store recorded under an earlier home to
    this one; return how many values changed (0 in place, or with no store). Side effects:
    writes ``mlflow.db`` (one transaction) and ``origin.json`` only when the home has moved."""
    paths = BenchPaths(paths.home.absolute())
    db = paths.mlflow_db
    if not db.is_file() or not (old := _stale_roots(db, paths)):
        return 0
    if not os.access(paths.home, os.W_OK) or not os.access(db, os.W_OK):
        log.warning("BENCH_HOME %s was moved from %s but cannot be written here: its MLflow "
                    "store still points there (artifacts are read from there while it exists)",
                    paths.home, ", ".join(map(str, old)))
        return 0
    with FileLock(f"{db}.lock", timeout=300):  # the lock under which the store is opened
        if not paths.origin_marker.is_file():  # before the store forgets where it was
            _keep_origin(paths, home_origin(paths))
        return _rewrite(db, paths)


def hashed_options(paths: BenchPaths, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as they enter a config hash: a ``file:`` location inside BENCH_HOME written
    under the place the home was first used (as given in a home that never moved). Side
    effect: where nothing in the home would remember that place once it moves (no local
    MLflow store), ``origin.json`` is written the first time such a location is hashed."""
    paths = BenchPaths(paths.home.absolute())
    here = f"file:{paths.home}/"
    inside = [k for k, v in options.items() if isinstance(v, str) and v.startswith(here)]
    if not inside:
        return dict(options)
    origin = home_origin(paths)
    if not paths.origin_marker.is_file() and not _recorded_roots(paths.mlflow_db, paths):
        _keep_origin(paths, origin)
    return {**options, **{k: f"file:{origin}/{options[k][len(here):]}" for k in inside}}


def home_origin(paths: BenchPaths) -> Path:
    """Where this home was first used: ``origin.json``, else the root its stores recorded
    (MLflow's Default experiment first, then the registry's older rows), else the home. Reads
    only."""
    marker = paths.origin_marker
    if marker.is_file():
        return Path(json.loads(marker.read_text())["origin"])
    roots = _recorded_roots(paths.mlflow_db, paths)
    if paths.registry_db.is_file():
        roots += sorted(RegistryStore(paths.registry_db).legacy_homes())
    return roots[0] if roots else paths.home


def _keep_origin(paths: BenchPaths, origin: Path) -> None:
    """Write ``origin.json`` (best effort: a home that cannot be written keeps none)."""
    try:
        atomic_write(paths.origin_marker,
                     lambda tmp: tmp.write_text(json.dumps({"origin": str(origin)}) + "\n"))
    except OSError as err:
        log.debug("origin of %s not kept: %s", paths.home, err)


def _stale_roots(db: Path, paths: BenchPaths) -> list[Path]:
    """The earlier homes ``db`` records, read through a read-only connection."""
    return [r for r in _recorded_roots(db, paths) if _elsewhere(r, paths.home)]


def _recorded_roots(db: Path, paths: BenchPaths) -> list[Path]:
    """The homes whose artifact root the experiments of ``db`` name, the Default experiment's
    first; empty for a store whose experiments were made otherwise (or not yet made)."""
    if not db.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            return _roots(conn, paths)
        finally:
            conn.close()
    except sqlite3.Error:  # no tables yet (being created): nothing recorded
        return []


def _roots(conn: sqlite3.Connection, paths: BenchPaths) -> list[Path]:
    folder = paths.mlartifacts_dir.name  # HOME/mlartifacts, the artifact root of local stores
    roots: list[Path] = []
    for exp_id, location in conn.execute("SELECT experiment_id, artifact_location FROM "
                                         "experiments ORDER BY experiment_id"):
        path = _local_path(location or "")
        if path is not None and path.name == str(exp_id):  # ROOT/ID: MLflow's default
            path = path.parent
        if path is not None and path.name == folder and path.parent not in roots:
            roots.append(path.parent)
    return roots


def _local_path(location: str) -> Path | None:
    """The absolute local path of a ``file:`` URI or a plain absolute path, else None."""
    if location.startswith("file:"):
        location = unquote(urlparse(location).path)
    path = Path(location)
    return path if path.is_absolute() else None


def _rewrite(db: Path, paths: BenchPaths) -> int:
    """One transaction: re-read the recorded roots (another process may have moved them
    meanwhile) and rewrite every text value under each; nothing changes on failure."""
    conn, old, changed = sqlite3.connect(db, timeout=60, isolation_level=None), [], 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            old = [r for r in _roots(conn, paths) if _elsewhere(r, paths.home)]
            changed = sum(_replace_prefix(conn, table, column, a, b)
                          for table, column in _text_columns(conn)
                          for a, b in _prefix_pairs(old, paths.home))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as err:
        raise StoreMoveError(
            f"BENCH_HOME {paths.home} was moved from {', '.join(map(str, old)) or 'elsewhere'}, "
            f"and rewriting the locations its MLflow store {db} recorded there failed ({err}); "
            "the store was left as it was.",
            "Check that the folder is writable and no other program holds the database, then "
            "run the command again.") from None
    finally:
        conn.close()
    if old:
        log.info("BENCH_HOME moved from %s to %s: %d locations its MLflow store recorded "
                 "there were rewritten", ", ".join(map(str, old)), paths.home, changed)
    return changed


def _elsewhere(root: Path, home: Path) -> bool:
    """Whether ``root`` is another folder than ``home`` (not another name of the same one)."""
    try:
        return root != home and not os.path.samefile(root, home)
    except OSError:  # the old folder is gone
        return True


def _prefix_pairs(old: Iterable[Path], new: Path) -> list[tuple[str, str]]:
    """(old prefix, new prefix) in the three forms a location is recorded in."""
    return [pair for root in old for pair in ((root.as_uri(), new.as_uri()),
                                              (f"file:{root}", f"file:{new}"),
                                              (str(root), str(new)))]


def _text_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%'")]
    return [(t, col[1]) for t in tables for col in conn.execute(f'PRAGMA table_info("{t}")')
            if any(k in (col[2] or "").upper() for k in _TEXT_TYPES)]


def _replace_prefix(conn: sqlite3.Connection, table: str, column: str, old: str,
                    new: str) -> int:
    """Values of ``table.column`` equal to ``old`` or beginning with ``old/`` (and not already
    under ``new``) begin with ``new`` instead; return how many changed."""
    c = f'"{column}"'
    cur = conn.execute(
        f'UPDATE "{table}" SET {c} = :new || substr({c}, :n + 1) '
        f"WHERE substr({c}, 1, :n) = :old AND (length({c}) = :n OR substr({c}, :n + 1, 1) = '/') "
        f"AND NOT ({c} = :new OR substr({c}, 1, :m + 1) = :new || '/')",
        {"old": old, "new": new, "n": len(old), "m": len(new)})
    return cur.rowcount
