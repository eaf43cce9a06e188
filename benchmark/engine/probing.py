"""``bench probe``: one probe over registered datasets outside a suite, logged to the
``transfer-bench/probes`` experiment; and the source models an estimator probe scores
(published ones, bare weights files, or those a suite pretrained here)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_core.devices import resolve_device
from bench_core.sources import SourceModel
from bench_core.stores import store_uri
from bench_core.tracking import open_tracker
from bench_core.weights import source_model
from benchmark.engine.graph import source_models
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from benchmark.suite.plan import make_plan
from benchmark.suite.prepare import register_embedded
from probes.base import ProbeContext, ProbeError, ProbeResult, card_only_record
from probes.logging import log_probe
from probes.registry import PROBES
from registry.catalog import Catalog
from registry.errors import BenchError
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


def probe_models(options: dict[str, Any], paths: BenchPaths, tracking_uri: str | None
                 ) -> dict[str, SourceModel]:
    """The models an estimator probe scores: published ones (``models`` option), each standing
    for the dataset it was pretrained on, or those the ``suite`` option's suite pretrained. A
    bare weights file (``SOURCE=PATH.safetensors``) takes that suite's architecture and
    pretraining image size. The probe's matrix has one row per dataset, so two models of one
    source cannot both be scored in one run (``bench recommend`` ranks them by name)."""
    if not options.get("models"):
        return suite_models(options.get("suite", DEFAULT_SUITE), paths)
    try:
        suite = resolve_suite(options.get("suite", DEFAULT_SUITE))
        arch, size = suite.architecture.name, tuple(suite.pretrain_defaults.image_size)
    except BenchError:  # only a bare file needs them, and then says so
        arch, size = None, None
    found: dict[str, Any] = {}
    for spec in options["models"]:
        model = source_model(spec, paths.registry_models_dir, tracking_uri, size, arch)
        if model.name in found:
            raise ProbeError(f"Two models stand for '{model.name}' ({found[model.name][0]} and "
                             f"{spec}); an estimator probe scores one model per source dataset.",
                             "Score them in separate runs, or rank them with `bench recommend "
                             "--target T`.")
        found[model.name] = (spec, model)
    return {name: model for name, (_, model) in found.items()}


def suite_models(suite_name: str, paths: BenchPaths) -> dict[str, SourceModel]:
    """The pretrained models of ``suite_name`` present in BENCH_HOME/models, by source."""
    hint = f"Run `bench run --suite {suite_name}` first."
    missing = ProbeError(f"Suite '{suite_name}' has no pretrained source models in "
                         f"{paths.models_dir}.", hint)
    try:
        plan = make_plan(resolve_suite(suite_name), RegistryStore(paths.registry_db))
    except BenchError:  # its datasets are not even registered: the suite never ran here
        raise missing from None
    found = {m.name: m for m in source_models(plan, paths) if Path(m.weights).is_file()}
    if not found:
        raise missing
    return found
