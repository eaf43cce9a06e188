"""A suite's report assembled with its context, for ``bench report --suite`` and ``bench run``:
the suite's name resolved, the learned ranker's scores (learned from every finished pair in
the store but the target's own) and what the HTML page shows besides the runs (the suite's
datasets, the published models, the MLflow UI's address); the files themselves are composed
by :mod:`benchmark.report.writer`."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException

from bench_core.tracking import Tracker, open_tracker
from benchmark.analysis.evaluation import LEARNED
from benchmark.analysis.meta_dataset import learned_scores, store_pairs
from benchmark.publishing.model_registry import list_models
from benchmark.report.html import HtmlContext
from benchmark.report.writer import Report, write_report
from benchmark.suite.files import resolve_suite
from benchmark.suite.prepare import suite_dataset_names
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.store import RegistryStore
from registry.views import dataset_sizes

log = logging.getLogger(__name__)
LOCAL_UI = "http://127.0.0.1:5000"  # where `bench ui` serves the local store by default


def build_report(suite: str, paths: BenchPaths, tracking_uri: str | None = None,
                 out: Path | None = None, *, hashes: set[str] | None = None,
                 tracker: Tracker | None = None, include_self: bool = False,
                 html: bool = True, mlflow_url: str | None = None) -> Report:
    """The results table, correlations and figures of ``suite`` from its finished runs,
    written to ``out`` (default ``BENCH_HOME/reports/SUITE``) and logged as a report run;
    with ``html`` also the self-contained page ``report.html`` (its MLflow links point at
    ``mlflow_url``, default the tracking server, or the local `bench ui` address)."""
    if suite.endswith((".yaml", ".yml")) and Path(suite).expanduser().is_file():
        suite = resolve_suite(suite).name  # a suite file names its suite
    tracker = tracker or open_tracker(paths, f"transfer-bench/{suite}", tracking_uri)
    context = html_context(suite, paths, tracker, mlflow_url) if html else None
    sizes = dataset_sizes(paths)
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints run links on stdout
        learned = learned_scores(store_pairs(paths, tracking_uri, sizes), suite)
        return write_report(tracker, suite, out or paths.report(suite), hashes, sizes=sizes,
                            include_self=include_self, html=context,
                            extra_scores={LEARNED: learned})


def html_context(suite: str, paths: BenchPaths, tracker: Tracker, mlflow_url: str | None
                 ) -> HtmlContext:
    """What the HTML page shows besides the runs: the suite's datasets (registered records,
    catalog cards), the published models, the MLflow UI's address."""
    catalog = Catalog.load()
    store = RegistryStore(paths.registry_db) if paths.registry_db.is_file() else None
    names = suite_dataset_names(suite)
    wanted = names if names is not None else (store.names() if store else [])
    records = {n: r for n in wanted if store and (r := store.get(n)) is not None}
    url = mlflow_url or (tracker.uri if tracker.uri.startswith(("http://", "https://"))
                         else LOCAL_UI)
    cards = {n: c.model_dump(mode="json") for n, c in catalog.cards.items()}
    try:
        models = list_models(tracker)
    except MlflowException as err:  # a store without a model registry
        log.warning("published models not listed in the HTML report: %s", err)
        models = []
    return HtmlContext(records=records, cards=cards, models=models, mlflow_url=url,
                       experiment_id=tracker.experiment_id, tracking_uri=tracker.uri,
                       commit=tracker.commit, datasets=names)
