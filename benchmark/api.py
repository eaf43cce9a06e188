"""The library entry point: what a notebook, the CLI and every executor call.

>>> from benchmark import api
>>> paths = api.BenchPaths(api.resolve_home())
>>> plan = api.plan_suite("mnist", paths)
>>> result = api.run_suite(plan, paths, api.RunOptions(executor="ray"))
>>> result.report.table            # one row per source -> target pair

``plan_suite`` validates a suite against the registry (registering embedded datasets it needs);
``run_suite`` runs its jobs on an executor (pretraining, folds, probes), closes the pairs and
writes the report; ``run_probes`` runs only the probes; ``build_report`` reads finished runs,
``build_results_report`` a result set (an imported transfer table);
``probe_datasets``, ``recommend_sources`` and ``publish_model`` are ``bench probe``, ``bench
recommend`` and ``bench publish``. Nothing here reads flags or the environment: callers pass the
tracking URI. Each workflow lives in the sub-package it belongs to; this module only joins them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time

from bench_core.tracking import open_tracker
from benchmark.analysis.evaluation import Evaluation
from benchmark.analysis.export import DEFAULT_LICENSE, export_suite
from benchmark.analysis.scoring import read_scores, score_methods
from benchmark.analysis.transfer_data import AnalysisInputs
from benchmark.analysis.recommend import (Recommendation, recommend_from_store,
                                          recommend_from_tables)
from benchmark.engine.probing import ProbeRun, probe_datasets
from benchmark.engine.session import (JobsFailed, RunOptions, SuiteRun, plan_status, run_jobs,
                                      run_probes)
from benchmark.publishing.publish import Published, publish_model, published_models
from benchmark.publishing.results_share import PublishedResults, publish_results
from benchmark.publishing.zoo import check_estimator, rank_models
from benchmark.report.build import build_report
from benchmark.report.markdown import per_target_rows, summary_rows
from benchmark.analysis.tables import result_set_inputs
from benchmark.report.result_sets import build_results_report
from benchmark.report.writer import store_inputs
from benchmark.suite.files import DEFAULT_SUITE
from benchmark.suite.plan import Plan
from benchmark.suite.prepare import plan_suite
from registry.catalog import Catalog
from registry.paths import BenchPaths, resolve_home
from registry.result_readers import read_any
from registry.result_store import ImportOutcome, ResultSetRecord, ResultStore
from registry.transfer_table import write_table
from registry.views import dataset_sizes

__all__ = ["BenchPaths", "JobsFailed", "Plan", "ProbeRun", "Published", "Recommendation",
           "RunOptions", "SuiteRun", "build_report", "build_results_report", "export_results",
           "import_results", "open_tracker", "plan_status", "remove_result_set",
           "result_set", "result_sets", "score_file", "publish_results", "PublishedResults",
           "plan_suite", "probe_datasets", "publish_model", "published_models", "rank_models",
           "recommend_sources", "resolve_home", "run_probes", "run_suite"]


def run_suite(plan: Plan, paths: BenchPaths, options: RunOptions = RunOptions(), *,
              catalog: Catalog | None = None, with_probes: bool = True,
              with_report: bool = True) -> SuiteRun:
    """Run every unfinished job of ``plan`` on the chosen executor, close the pairs, write the
    report. Finished jobs are skipped; a failure of some jobs raises :class:`JobsFailed` after
    the others finished (and leaves no run RUNNING)."""
    started = time.perf_counter()
    run = run_jobs(plan, paths, options, catalog=catalog, with_probes=with_probes)
    report = None
    if with_report:
        report = build_report(plan.suite.name, paths, options.tracking_uri, options.out,
                              hashes={p.config_hash for p in plan.pairs}, tracker=run.tracker)
    return dataclasses.replace(run, report=report, seconds=time.perf_counter() - started)


def recommend_sources(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                      method: str = "auto", estimator: str = "logme",
                      tracking_uri: str | None = None, catalog: Catalog | None = None,
                      device: str = "auto", include_self: bool = False,
                      results: list[str] | None = None) -> Recommendation:
    """Rank ``suite``'s sources for ``target`` by the method with the best figure on the
    suite's other targets (``auto``) or the one named, with every method's figures there and
    their intervals and each source's predicted gain; and rank the suite's pretrained models
    beside every published model by ``estimator`` (LogME ...) on the target's data. With
    ``results`` (result set names) the evidence is those tables instead of the suite's store
    (no model ranking then: a table holds no models of this store)."""
    if results:
        return recommend_from_tables(target, results, paths, method=method, catalog=catalog,
                                     include_self=include_self)
    check_estimator(estimator)
    rec = recommend_from_store(target, paths, suite=suite, method=method,
                               tracking_uri=tracking_uri, catalog=catalog,
                               include_self=include_self)
    models = rank_models(rec.target, paths, suite=suite, estimator=estimator,
                         tracking_uri=tracking_uri, device=device, include_self=include_self)
    return dataclasses.replace(rec, models=models)


# --- result sets (transfer tables) ----------------------------------------------------------


def export_results(paths: BenchPaths, suite: str, *, tracking_uri: str | None = None,
                   out=None, license: str = "CC-BY-4.0", citation: str | None = None):
    """`bench results export`: the suite's transfer table, written to ``out`` (default
    BENCH_HOME/exports/SUITE). Returns (folder, table)."""
    lic = DEFAULT_LICENSE if license == DEFAULT_LICENSE["name"] else {"name": license}
    table = export_suite(paths, suite, tracking_uri=tracking_uri, license=lic,
                         citation=citation)
    return write_table(table, out or paths.home / "exports" / suite), table


def import_results(paths: BenchPaths, path, name: str, *, fmt: str = "auto",
                   metric: str | None = None, scores=(), attributes=None,
                   replace: bool = False) -> ImportOutcome:
    """`bench results import`: a transfer table from ``path`` into the registry."""
    table = read_any(path, fmt=fmt, metric=metric, scores=scores, attributes=attributes)
    return ResultStore(paths).import_table(table, name, replace=replace)


def result_sets(paths: BenchPaths) -> list[ResultSetRecord]:
    return ResultStore(paths).records()


def result_set(paths: BenchPaths, name: str) -> ResultSetRecord:
    return ResultStore(paths).get(name)


def remove_result_set(paths: BenchPaths, name: str) -> ResultSetRecord:
    return ResultStore(paths).remove(name)


def score_file(paths: BenchPaths, scores_path, *, results: str | None = None,
               suite: str | None = None, tracking_uri: str | None = None,
               include_self: bool = False) -> ScoreOutcome:
    """`bench score`: the methods of a scores CSV judged against result set ``results`` or the
    store of ``suite``."""
    if results is not None:
        inputs = result_set_inputs(results, paths)
    else:
        tracker = open_tracker(paths, f"transfer-bench/{suite}", tracking_uri)
        with contextlib.redirect_stdout(sys.stderr):
            inputs = store_inputs(tracker, suite, sizes=dataset_sizes(paths))
    submitted = read_scores(scores_path)
    ev, ceiling = score_methods(inputs, submitted, include_self=include_self)
    methods = sorted(submitted)
    return ScoreOutcome(inputs=inputs, submitted=methods, evaluation=ev, ceiling=ceiling,
                        text=summary_rows(ev.summary, first=methods)
                        + per_target_rows(ev.per_target, methods))


@dataclasses.dataclass(frozen=True)
class ScoreOutcome:
    inputs: AnalysisInputs
    submitted: list[str]
    evaluation: Evaluation
    ceiling: object
    text: str
