"""From a suite name or file to a checked :class:`~benchmark.suite.plan.Plan`: overrides and
selections applied, dataset names checked (a typo fails before anything is registered),
embedded datasets registered, the plan validated against the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_core.stores import store_uri
from benchmark.suite.files import resolve_suite
from benchmark.suite.plan import Plan, make_plan
from benchmark.suite.spec import check_dataset_names
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore


def plan_suite(suite: str | Path, paths: BenchPaths, *, overrides: list[tuple[str, Any]] = (),
               sources: list[str] | None = None, targets: list[str] | None = None,
               catalog: Catalog | None = None, progress: ProgressFactory = no_progress,
               tracking_uri: str | None = None) -> Plan:
    """Resolve ``suite`` (a built-in name or a YAML file) with overrides and selections,
    check its dataset names (a typo fails before anything is registered or loaded), register
    the embedded datasets it needs, and validate it into a :class:`Plan`
    (``tracking_uri``: where ``models:/`` source weights are registered)."""
    catalog = catalog or Catalog.load()
    resolved = resolve_suite(str(suite), list(overrides), sources, targets)
    where = (f"Suite file {Path(suite).expanduser()}" if Path(suite).expanduser().is_file()
             else f"Suite '{resolved.name}'")
    registered = RegistryStore(paths.registry_db).names() if paths.registry_db.is_file() else []
    check_dataset_names(resolved, {*catalog.cards, *catalog.aliases, *registered}, where)
    register_embedded(resolved.dataset_names(), paths, catalog, progress)  # typos caught first
    return make_plan(resolved, RegistryStore(paths.registry_db), store_uri(paths, tracking_uri),
                     where=where, known=tuple(catalog.cards) + tuple(catalog.aliases))


def register_embedded(names: list[str], paths: BenchPaths, catalog: Catalog,
                      progress: ProgressFactory = no_progress) -> None:
    """Register the embedded (offline) datasets among ``names`` that are not registered yet."""
    store = RegistryStore(paths.registry_db)
    for name in names:
        if name in catalog.cards and catalog.cards[name].obtain.kind == "embedded" \
                and store.get(name) is None:
            add_dataset(AddRequest(name), paths, catalog, progress=progress)


def suite_dataset_names(suite: str) -> list[str] | None:
    """The suite's sources, targets and shifted sets in suite order; None when the suite's
    file is not at hand (a report of runs logged from elsewhere: the table's names are used)."""
    try:
        resolved = resolve_suite(suite)
    except BenchError:
        return None
    names = [s.name for s in resolved.sources] + [t.name for t in resolved.targets] + \
        [s.dataset for t in resolved.targets for s in t.shifts if s.dataset]
    return list(dict.fromkeys(names))
