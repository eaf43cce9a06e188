"""The library entry point: what a notebook, the CLI and every executor call.

>>> from benchmark import api
>>> paths = api.BenchPaths(api.resolve_home())
>>> plan = api.plan_suite("mnist", paths)
>>> result = api.run_suite(plan, paths, api.RunOptions(executor="ray"))
>>> result.report.table            # one row per source -> target pair

``plan_suite`` validates a suite against the registry (registering embedded datasets it needs);
``run_suite`` runs its jobs on an executor (pretraining, folds, probes), closes the pairs and
writes the report; ``run_probes`` runs only the probes; ``build_report`` reads finished runs;
``probe_datasets`` and ``recommend_sources`` are the ``bench probe`` / ``bench recommend``
workflows. Nothing here reads flags or the environment: callers pass the tracking URI.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from bench_core.stores import ResumePolicy, tracking_target
from benchmark.config import DEFAULT_SUITE, check_dataset_names, resolve_suite
from benchmark.executors.base import JobOutcome
from benchmark.plan import Plan, make_plan
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths, resolve_home
from registry.progress import ProgressFactory, no_progress
from registry.store import RegistryStore

if TYPE_CHECKING:
    from bench_core.tracking import Tracker

__all__ = ["BenchPaths", "JobsFailed", "RunOptions", "SuiteRun", "build_report", "open_tracker",
           "plan_suite", "probe_datasets", "recommend_sources", "resolve_home", "run_probes",
           "run_suite", "publish_model", "published_models"]
log = logging.getLogger(__name__)


class JobsFailed(BenchError):
    """Some jobs of a suite failed; the rest finished and are kept."""


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan. ``executor_options`` are the engine's (``address`` for Ray;
    ``partition``, ``gpus_per_job``, ``array_parallelism`` for Slurm)."""

    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    tracking_uri: str | None = None
    out: Path | None = None
    progress: ProgressFactory = no_progress
    policy: ResumePolicy = ResumePolicy()
    system_metrics: bool = True


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    tracking_uri: str
    experiment_id: str
    executor: str
    device: str
    outcomes: list[JobOutcome]
    reused: int
    seconds: float
    report: Any  # benchmark.report.Report

    @property
    def pairs(self) -> list[Any]:
        return [o.value for o in self.outcomes if o.kind == "pair" and o.ok]


def open_tracker(paths: BenchPaths, experiment: str, tracking_uri: str | None = None,
                 session: str = "", policy: ResumePolicy = ResumePolicy()) -> Tracker:
    """The experiment in ``tracking_uri``, or in the SQLite store of BENCH_HOME (artifacts in
    ``BENCH_HOME/mlartifacts``)."""
    from bench_core.logs import quiet_libraries
    from bench_core.tracking import Tracker

    target = tracking_target(paths.home, tracking_uri, experiment)
    if tracking_uri is None:
        paths.home.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(target, session, policy)
    quiet_libraries(logging.getLogger().level <= logging.DEBUG)  # mlflow resets its loggers
    return tracker


def store_uri(paths: BenchPaths, tracking_uri: str | None) -> str:
    """``tracking_uri``, else BENCH_HOME's SQLite store: where ``models:/`` weights are looked
    up. Never None, which MLflow would read as its own default store (``./mlflow.db`` of the
    current folder, or whatever store this process opened last)."""
    return tracking_target(paths.home, tracking_uri, "").uri


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
                     where=where,
                     known=tuple(catalog.cards) + tuple(catalog.aliases))


def plan_status(plan: Plan, paths: BenchPaths, tracking_uri: str | None = None
                ) -> dict[str, Any]:
    """``plan.summary()`` with what is finished already (would be skipped by a run): cached
    pretrained weights, FINISHED pair runs. Reads the store without writing to it."""
    summary = plan.summary()
    models = paths.home / "models"
    summary["pretrain_finished"] = [j.source for j in plan.pretrain
                                    if (models / f"{j.config_hash}.safetensors").is_file()]
    done: set[str] = set()
    target = tracking_target(paths.home, tracking_uri, f"transfer-bench/{plan.suite.name}")
    if tracking_uri or (paths.home / "mlflow.db").is_file():
        from bench_core.tracking import open_client

        client = open_client(target)
        exp = client.get_experiment_by_name(target.experiment)
        if exp is not None:
            runs = client.search_runs([exp.experiment_id], "tags.level = 'pair' and "
                                      "attributes.status = 'FINISHED'", max_results=50000)
            done = {r.data.tags.get("config_hash") for r in runs}
    for row, pair in zip(summary["pairs"], plan.pairs):
        row["finished"] = pair.config_hash in done
    summary["runs_to_do"] = len(plan.pretrain) - len(summary["pretrain_finished"]) + sum(
        row["folds"] * row["repeats"] for row in summary["pairs"] if not row["finished"])
    return summary


def register_embedded(names: list[str], paths: BenchPaths, catalog: Catalog,
                      progress: ProgressFactory = no_progress) -> None:
    """Register the embedded (offline) datasets among ``names`` that are not registered yet."""
    from registry.register import AddRequest, add_dataset

    store = RegistryStore(paths.registry_db)
    for name in names:
        if name in catalog.cards and catalog.cards[name].obtain.kind == "embedded" \
                and store.get(name) is None:
            add_dataset(AddRequest(name), paths, catalog, progress=progress)


def _executor(options: RunOptions, paths: BenchPaths, session: str, local_store: bool):
    from benchmark.executors import make_executor

    extra = {"local_store": local_store}
    if options.executor.startswith("slurm"):
        extra["folder"] = str(paths.home / "submitit" / session)
    return make_executor(options.executor, **extra, **options.executor_options)


def _env(plan: Plan, paths: BenchPaths, tracker: Tracker, options: RunOptions, threads):
    import yaml

    from benchmark.jobs import JobEnv

    suite = plan.suite
    return JobEnv(str(paths.home), tracker.target, tracker.session, options.device, suite.name,
                  yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False), suite.seed,
                  suite.architecture, suite.folds, suite.baseline, options.policy,
                  options.system_metrics, threads)


def _accelerated(device: str, executor: str) -> bool:
    """Whether jobs want a GPU: asked for, or ``auto`` where one may be (remote engines look
    at their cluster; locally, at this machine)."""
    if device == "cpu":
        return False
    if device.startswith("cuda") or executor not in ("local", "slurm-local"):
        return True
    import torch

    return torch.cuda.is_available()


@dataclass(frozen=True)
class _Session:
    tracker: Tracker
    executor: Any
    env: Any  # benchmark.jobs.JobEnv


def _session(plan: Plan, paths: BenchPaths, options: RunOptions) -> _Session:
    """One driver session: the suite's tracker, the executor, the jobs' environment. Fails
    before any work when the executor or the device cannot run here."""
    session = uuid.uuid4().hex[:12]
    tracker = open_tracker(paths, f"transfer-bench/{plan.suite.name}", options.tracking_uri,
                           session, options.policy)
    executor = _executor(options, paths, session, tracker.target.local_only)
    if options.executor == "local":
        from bench_core.devices import resolve_device

        resolve_device(options.device)  # a CUDA request without CUDA fails here
    env = _env(plan, paths, tracker, options, getattr(executor, "threads_per_job", None))
    return _Session(tracker, executor, env)


def _graph(plan: Plan, s: _Session, options: RunOptions, catalog: Catalog, **parts: bool):
    from benchmark.graph import build_graph

    local = options.executor == "local"  # progress bars only where the jobs run here
    return build_graph(plan, s.env, s.tracker, catalog,
                       accelerated=_accelerated(options.device, options.executor),
                       progress=options.progress if local else no_progress, **parts)


def run_suite(plan: Plan, paths: BenchPaths, options: RunOptions = RunOptions(), *,
              catalog: Catalog | None = None, with_probes: bool = True,
              with_report: bool = True) -> SuiteRun:
    """Run every unfinished job of ``plan`` on the chosen executor, close the pairs, write the
    report. Finished jobs are skipped; a failure of some jobs raises :class:`JobsFailed` after
    the others finished (and leaves no run RUNNING)."""
    s = _session(plan, paths, options)
    started = time.perf_counter()
    graph = _graph(plan, s, options, catalog or Catalog.load(), probes=with_probes)
    outcomes = _execute(s.executor, graph, s.tracker, options.progress)
    report = None
    if with_report:
        report = build_report(plan.suite.name, paths, options.tracking_uri, options.out,
                              hashes={p.config_hash for p in plan.pairs}, tracker=s.tracker)
    return SuiteRun(plan.suite.name, s.tracker.uri, s.tracker.experiment_id, options.executor,
                    options.device, outcomes, len(graph.done), time.perf_counter() - started,
                    report)


def _execute(executor, graph, tracker: Tracker, progress: ProgressFactory = no_progress
             ) -> list[JobOutcome]:
    """Run the graph with the driver's heartbeat on the open parent runs and a bar over its
    jobs; parents of pairs that could not finish end FAILED (KILLED on Ctrl-C), never RUNNING."""
    total, finished = len(graph.jobs), []
    log.info("%d jobs to run with the %s executor (%d finished earlier)", total,
             executor.name, len(graph.done))

    def on_outcome(o: JobOutcome) -> None:
        finished.append(o)
        advance(1)
        state = "done" if o.ok else f"FAILED: {o.error}"
        where = f" on {o.host}" if o.host else ""
        log.info("[%d/%d] %s %s (%.1f s%s)", len(finished), total, o.label, state, o.seconds,
                 where)

    outcomes: dict[str, JobOutcome] = {}
    status = "FAILED"
    try:
        with tracker.heartbeat(lambda: graph.parents.values()), \
                progress(f"jobs ({executor.name})", total) as advance:
            outcomes = executor.run(graph.jobs, graph.done, on_outcome)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        for key, run_id in graph.parents.items():
            if key not in outcomes or not outcomes[key].ok:
                tracker.set_terminated(run_id, status)
    failed = [o for o in outcomes.values() if not o.ok]
    if failed:
        lines = "; ".join(f"{o.label}: {o.error}" for o in failed[:8])
        more = f" (and {len(failed) - 8} more)" if len(failed) > 8 else ""
        raise JobsFailed(f"{len(failed)} of {total} jobs failed: {lines}{more}.",
                         "Fix the cause and run the same command again: finished jobs are "
                         "skipped, failed ones are redone.")
    return list(outcomes.values())


def run_probes(plan: Plan, paths: BenchPaths, options: RunOptions = RunOptions(), *,
               catalog: Catalog | None = None) -> list[JobOutcome]:
    """Only the suite's probes (those scoring source models need its pretraining done)."""
    s = _session(plan, paths, options)
    graph = _graph(plan, s, options, catalog or Catalog.load(), grid=False)
    if any(d not in graph.done for j in graph.jobs for d in j.deps):
        raise BenchError(f"Probes of suite '{plan.suite.name}' score its pretrained models, "
                         "and some are not trained yet.",
                         f"Run `bench run --suite {plan.suite.name}` first.")
    return _execute(s.executor, graph, s.tracker, options.progress)


def build_report(suite: str, paths: BenchPaths, tracking_uri: str | None = None,
                 out: Path | None = None, *, hashes: set[str] | None = None,
                 tracker: Tracker | None = None, include_self: bool = False,
                 html: bool = True, mlflow_url: str | None = None):
    """The results table, correlations and figures of ``suite`` from its finished runs,
    written to ``out`` (default ``BENCH_HOME/reports/SUITE``) and logged as a report run;
    with ``html`` also the self-contained page ``report.html`` (its MLflow links point at
    ``mlflow_url``, default the tracking server, or the local `bench ui` address)."""
    import contextlib
    import sys

    from benchmark.report import write_report

    if suite.endswith((".yaml", ".yml")) and Path(suite).expanduser().is_file():
        suite = resolve_suite(suite).name  # a suite file names its suite
    tracker = tracker or open_tracker(paths, f"transfer-bench/{suite}", tracking_uri)
    context = html_context(suite, paths, tracker, mlflow_url) if html else None
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints run links on stdout
        return write_report(tracker, suite, out or paths.home / "reports" / suite, hashes,
                            sizes=dataset_sizes(paths), include_self=include_self,
                            html=context)


LOCAL_UI = "http://127.0.0.1:5000"  # where `bench ui` serves the local store by default


def html_context(suite: str, paths: BenchPaths, tracker: Tracker, mlflow_url: str | None):
    """What the HTML page shows besides the runs: the suite's datasets (registered records,
    catalog cards), the published models, the MLflow UI's address."""
    from mlflow.exceptions import MlflowException

    from benchmark.publish import list_models
    from benchmark.report_html import HtmlContext

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
    return HtmlContext(records, cards, models, url, tracker.experiment_id, tracker.uri,
                       tracker.commit, names)


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


def dataset_sizes(paths: BenchPaths, catalog: Catalog | None = None) -> dict[str, int]:
    """Images per dataset: registered datasets as registered, the rest as their cards say
    (weight-only sources such as ImageNet), for the largest-source baseline."""
    catalog = catalog or Catalog.load()
    sizes = {name: card.n_samples for name, card in catalog.cards.items() if card.n_samples}
    if paths.registry_db.is_file():
        store = RegistryStore(paths.registry_db)
        for name in store.names():
            rec = store.get(name)
            if rec is not None:
                sizes[name] = rec.n_samples
    return sizes


@dataclass(frozen=True)
class ProbeRun:
    result: Any  # probes.base.ProbeResult
    run_id: str
    tracking_uri: str


def probe_datasets(method: str, names: list[str], paths: BenchPaths, *,
                   options: dict[str, Any] | None = None, device: str = "auto",
                   tracking_uri: str | None = None, catalog: Catalog | None = None,
                   progress: ProgressFactory = no_progress) -> ProbeRun:
    """One probe over registered datasets (catalog cards are enough for card-only probes),
    logged to the ``transfer-bench/probes`` experiment. Estimator probes score the models of
    the suite named by their ``suite`` option."""
    import contextlib
    import sys

    from bench_core.devices import resolve_device
    from probes.base import ProbeContext, ProbeError, card_only_record
    from probes.logging import log_probe
    from probes.registry import PROBES

    catalog = catalog or Catalog.load()
    options = dict(options or {})
    if len(names) < 2:
        raise ProbeError("A probe compares datasets: give at least two with --datasets a,b.")
    cls = PROBES.get(method)
    uri = store_uri(paths, tracking_uri)
    models = _source_models(options, paths, uri) if cls.uses_source_models else {}
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


def _source_models(options: dict[str, Any], paths: BenchPaths, tracking_uri: str | None
                   ) -> dict[str, Any]:
    """The models an estimator probe scores: published ones (``models`` option), each standing
    for the dataset it was pretrained on, or those the ``suite`` option's suite pretrained. A
    bare weights file (``SOURCE=PATH.safetensors``) takes that suite's architecture and
    pretraining image size. The probe's matrix has one row per dataset, so two models of one
    source cannot both be scored in one run (``bench recommend`` ranks them by name)."""
    from bench_core.weights import source_model
    from probes.base import ProbeError

    if not options.get("models"):
        return _suite_models(options.get("suite", DEFAULT_SUITE), paths)
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


def _suite_models(suite_name: str, paths: BenchPaths) -> dict[str, Any]:
    """The pretrained models of ``suite_name`` present in BENCH_HOME/models, by source."""
    from probes.base import ProbeError

    hint = f"Run `bench run --suite {suite_name}` first."
    try:
        plan = make_plan(resolve_suite(suite_name), RegistryStore(paths.registry_db))
    except BenchError:  # its datasets are not even registered: the suite never ran here
        raise ProbeError(f"Suite '{suite_name}' has no pretrained source models in "
                         f"{paths.home / 'models'}.", hint) from None
    from benchmark.graph import source_models

    found = {m.name: m for m in source_models(plan, paths.home) if Path(m.weights).is_file()}
    if not found:
        raise ProbeError(f"Suite '{suite_name}' has no pretrained source models in "
                         f"{paths.home / 'models'}.", hint)
    return found


@dataclass(frozen=True)
class Recommendation:
    target: str
    method: str
    ranking: Any  # DataFrame: source, score
    evaluation: Any  # DataFrame: leave-one-target-out regret per method and target
    models: Any = None  # DataFrame: suite-pretrained and published models by an estimator


def recommend_sources(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                      method: str = "learned", estimator: str = "logme",
                      tracking_uri: str | None = None, catalog: Catalog | None = None,
                      device: str = "auto", include_self: bool = False) -> Recommendation:
    """Rank ``suite``'s sources for ``target`` by a probe or the learned combination, with
    every method's leave-one-target-out regret; and rank the suite's pretrained models beside
    every published model by ``estimator`` (LogME ...) on the target's data."""
    import contextlib
    import sys

    from benchmark.recommend import recommend
    from benchmark.report import results_table
    from probes.logging import load_probe_matrices

    catalog = catalog or Catalog.load()
    name = catalog.key(target)
    resolved = resolve_suite(suite)
    tracker = open_tracker(paths, f"transfer-bench/{resolved.name}", tracking_uri)
    with contextlib.redirect_stdout(sys.stderr):
        results = results_table(tracker, resolved.name)
        probes = load_probe_matrices(tracker, resolved.name)
    rec = recommend(name, method, results, probes, [s.name for s in resolved.sources],
                    dataset_sizes(paths, catalog), include_self)
    models = rank_models(name, paths, suite=suite, estimator=estimator,
                         tracking_uri=tracking_uri, device=device)
    return Recommendation(name, method, rec.ranking, rec.evaluation, models)


def rank_models(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                estimator: str = "logme", tracking_uri: str | None = None,
                device: str = "auto"):
    """The suite's pretrained models and every published model, scored by ``estimator`` on
    ``target``'s data (best first); None when there is no published model or the target is
    not registered."""
    import pandas as pd

    from bench_core.devices import resolve_device
    from bench_core.weights import source_model
    from probes.base import ProbeContext
    from probes.registry import PROBES

    published = published_models(paths, tracking_uri)
    record = RegistryStore(paths.registry_db).get(target)
    if not published or record is None:
        return None
    candidates, rows = {}, {}
    try:
        for src, m in _suite_models(suite, paths).items():
            candidates[src] = m
            rows[src] = {"model": src, "kind": f"suite {resolve_suite(suite).name}",
                         "source": src}
    except BenchError:
        pass  # the suite has no pretrained models here: published ones only
    uri = store_uri(paths, tracking_uri)
    for p in published:
        candidates[p["name"]] = source_model(p["uri"], paths.registry_models_dir, uri)
        rows[p["name"]] = {"model": p["uri"], "kind": "published", "source": p["source"]}
    probe = PROBES.get(estimator)({}, ProbeContext(paths, resolve_device(device),
                                                   tracking_uri=uri))
    if not hasattr(probe, "score_models"):
        raise BenchError(f"'{estimator}' is not a transferability estimator.",
                         "Use logme, leep, nce, hscore or features.")
    scores = probe.score_models(candidates, record)
    frame = pd.DataFrame([{**rows[k], estimator: v} for k, v in scores.items()])
    return frame.sort_values(estimator, ascending=False).reset_index(drop=True)


def publish_model(source: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                  run_id: str | None = None, push: str | None = None, alias: str = "published",
                  out: Path | None = None, tracking_uri: str | None = None,
                  environ: dict[str, str] | None = None, catalog: Catalog | None = None):
    """Publish a suite's pretrained ``source`` (or the pretraining run ``run_id``): an MLflow
    registry version with ``alias``, the timm folder with its model card, and with ``push``
    (``hf:ORG/REPO``) the Hugging Face Hub. Returns a :class:`benchmark.publish.Published`."""
    from benchmark.publish import publish

    catalog = catalog or Catalog.load()
    name = catalog.key(source)
    if run_id:
        from mlflow.exceptions import MlflowException

        probe = open_tracker(paths, "transfer-bench/publish", tracking_uri)
        try:
            suite = probe.client.get_run(run_id).data.tags.get("suite", suite)
        except MlflowException:
            raise BenchError(f"No run {run_id} in {probe.uri}.",
                             "Copy the run id of a `pretrain: SOURCE` run from the MLflow UI.") from None
    else:
        suite = resolve_suite(suite).name  # a suite file names its suite
    tracker = open_tracker(paths, f"transfer-bench/{suite}", tracking_uri)
    return publish(name, paths, tracker, suite=suite, run_id=run_id, alias=alias, out=out,
                   push_to=push, environ=environ)


def published_models(paths: BenchPaths, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """The models ``bench publish`` registered in the store (newest version of each)."""
    from benchmark.publish import list_models

    return list_models(open_tracker(paths, "transfer-bench/publish", tracking_uri))
