"""``bench probe``: one probe over registered datasets outside a suite, logged to the
``transfer-bench/probes`` experiment (the source models an estimator scores are found by
:mod:`benchmark.suite.source_models`)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

from bench_core.devices import resolve_device
from bench_core.stores import store_uri
from bench_core.tracking import open_tracker
from benchmark.suite.prepare import register_embedded
from benchmark.suite.source_models import probe_models
from probes.base import PROBES, ProbeContext, ProbeError, ProbeResult, card_only_record
from probes.tracking import log_probe
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress
from registry.store import RegistryStore


@dataclass(frozen=True)
class ProbeRun:
    result: ProbeResult
    run_id: str
    tracking_uri: str


def probe_datasets(method: str, names: list[str], paths: BenchPaths, *,
                   options: dict[str, Any] | None = None, device: str = "auto",
                   tracking_uri: str | None = None, catalog: Catalog | None = None,
                   progress: ProgressFactory = no_progress) -> ProbeRun:
    """One probe over registered datasets (catalog cards are enough for card-only probes),
    logged to the ``transfer-bench/probes`` experiment. Estimator probes score the models of
    the suite named by their ``suite`` option."""
    catalog = catalog or Catalog.load()
    options = dict(options or {})
    if len(names) < 2:
        raise ProbeError("A probe compares datasets: give at least two with --datasets a,b.")
    keys = [catalog.key(n) for n in names]
    repeated = sorted({n for n, k in zip(names, keys) if keys.count(k) > 1})
    if repeated:
        raise ProbeError(f"--datasets names the same dataset more than once: {repeated}.",
                         "Give each dataset once.")
    cls = PROBES.get(method)
    uri = store_uri(paths, tracking_uri)
    models = probe_models(options, paths, uri) if cls.uses_source_models else {}
    probe = cls(options, ProbeContext(paths, resolve_device(device), progress, models, uri))
    if probe.needs_data:
        register_embedded(names, paths, catalog, progress)
    store = RegistryStore(paths.registry_db)
    records = []
    for name in names:
        rec = store.get(name)
        if rec is None and not probe.needs_data and name in catalog.cards:
            rec = card_only_record(catalog.cards[name].model_dump(mode="json"))
        if rec is None:
            raise ProbeError(f"Dataset '{name}' is not registered.",
                             f"Run `bench add-dataset {name}` first.")
        records.append(rec)
    result = probe.compute(records)
    tracker = open_tracker(paths, "transfer-bench/probes", tracking_uri)
    with contextlib.redirect_stdout(sys.stderr):
        run_id = log_probe(tracker, result, options)
    return ProbeRun(result, run_id, tracker.uri)
