"""A driver session: open the suite's experiment, build the executor, turn the plan into a
graph of jobs and run it, with the driver's heartbeat on the open parent runs, a progress bar
over the jobs, and no run left RUNNING when jobs fail or the user presses Ctrl-C."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch
import yaml

from bench_core.devices import resolve_device
from bench_core.stores import ResumePolicy, tracking_target
from bench_core.tracking import Tracker, open_client, open_tracker
from benchmark.engine.executors import Executor, ExecutorContext, JobOutcome, make_executor
from benchmark.engine.graph import SuiteGraph, build_graph
from benchmark.engine.tasks import JobEnv
from benchmark.suite.plan import Plan
from benchmark.suite.probe_checks import check_probes
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress

log = logging.getLogger(__name__)


class JobsFailed(BenchError):
    """Some jobs of a suite failed; the rest finished and are kept."""


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How to run a plan. ``executor_options`` are the engine's (``address`` for Ray;
    ``partition``, ``gpus_per_job``, ``array_parallelism`` for Slurm)."""

    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    tracking_uri: str | None = None
    out: Any = None  # the report folder (a Path), default BENCH_HOME/reports/SUITE
    progress: ProgressFactory = no_progress
    policy: ResumePolicy = ResumePolicy()
    system_metrics: bool = True


@dataclass(frozen=True, kw_only=True)
class SuiteRun:
    """What a run of a suite did: where it logged, its outcomes, what it reused, its report."""

    suite: str
    tracking_uri: str
    experiment_id: str
    executor: str
    device: str
    outcomes: list[JobOutcome]
    reused: int
    seconds: float
    tracker: Tracker = field(repr=False)
    report: Any = None  # benchmark.report.writer.Report, once written

    @property
    def pairs(self) -> list[Any]:
        return [o.value for o in self.outcomes if o.kind == "pair" and o.ok]


@dataclass(frozen=True)
class _Session:
    tracker: Tracker
    executor: Executor
    env: JobEnv


def run_jobs(plan: Plan, paths: BenchPaths, options: RunOptions = RunOptions(), *,
             catalog: Catalog | None = None, with_probes: bool = True) -> SuiteRun:
    """Run every unfinished job of ``plan`` on the chosen executor and close the pairs.
    Finished jobs are skipped; a failure of some jobs raises :class:`JobsFailed` after the
    others finished (and leaves no run RUNNING)."""
    s = _session(plan, paths, options)
    started = time.perf_counter()
    graph = _graph(plan, s, options, catalog or Catalog.load(), probes=with_probes)
    outcomes = execute(s.executor, graph, s.tracker, options.progress)
    return SuiteRun(suite=plan.suite.name, tracking_uri=s.tracker.uri,
                    experiment_id=s.tracker.experiment_id, executor=options.executor,
                    device=options.device, outcomes=outcomes, reused=len(graph.done),
                    seconds=time.perf_counter() - started, tracker=s.tracker)


def run_probes(plan: Plan, paths: BenchPaths, options: RunOptions = RunOptions(), *,
               catalog: Catalog | None = None) -> list[JobOutcome]:
    """Only the suite's probes (those scoring source models need its pretraining done)."""
    s = _session(plan, paths, options)
    graph = _graph(plan, s, options, catalog or Catalog.load(), grid=False)
    if any(d not in graph.done for j in graph.jobs for d in j.deps):
        raise BenchError(f"Probes of suite '{plan.suite.name}' score its pretrained models, "
                         "and some are not trained yet.",
                         f"Run `bench run --suite {plan.suite.name}` first.")
    return execute(s.executor, graph, s.tracker, options.progress)


def plan_status(plan: Plan, paths: BenchPaths, tracking_uri: str | None = None
                ) -> dict[str, Any]:
    """``plan.summary()`` with what is finished already (would be skipped by a run): cached
    pretrained weights, FINISHED pair runs. Reads the store without writing to it."""
    check_probes(plan, paths, Catalog.load())
    summary = plan.summary()
    summary["pretrain_finished"] = [j.source for j in plan.pretrain
                                    if paths.pretrained_weights(j.config_hash).is_file()]
    done: set[str] = set()
    target = tracking_target(paths, tracking_uri, f"transfer-bench/{plan.suite.name}")
    if tracking_uri or paths.mlflow_db.is_file():
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


def _executor(options: RunOptions, paths: BenchPaths, session: str,
              local_store: bool) -> Executor:
    context = ExecutorContext(local_store=local_store, folder=paths.submitit(session))
    return make_executor(options.executor, context, **options.executor_options)


def job_env(plan: Plan, paths: BenchPaths, tracker: Tracker, options: RunOptions,
         threads: int | None) -> JobEnv:
    suite = plan.suite
    return JobEnv(paths=paths, tracking=tracker.target, session=tracker.session,
                  device=options.device, suite=suite.name,
                  suite_yaml=yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False),
                  seed=suite.seed, arch=suite.architecture, folds=suite.folds,
                  baseline=suite.baseline, policy=options.policy,
                  system_metrics=options.system_metrics, threads=threads)


def _accelerated(device: str, executor: Executor) -> bool:
    """Whether jobs want a GPU: asked for, or ``auto`` where one may be (engines whose jobs
    may run elsewhere look at their cluster; on this machine, at its CUDA)."""
    if device == "cpu":
        return False
    if device.startswith("cuda") or executor.placement == "cluster":
        return True
    return torch.cuda.is_available()


def _session(plan: Plan, paths: BenchPaths, options: RunOptions) -> _Session:
    """One driver session: the suite's tracker, the executor, the jobs' environment. Fails
    before any work when the executor or the device cannot run here."""
    session = uuid.uuid4().hex[:12]
    tracker = open_tracker(paths, f"transfer-bench/{plan.suite.name}", options.tracking_uri,
                           session, options.policy)
    executor = _executor(options, paths, session, tracker.target.local_only)
    if executor.placement == "process":
        resolve_device(options.device)  # a CUDA request without CUDA fails here
    env = job_env(plan, paths, tracker, options, executor.threads_per_job)
    return _Session(tracker, executor, env)


def _graph(plan: Plan, s: _Session, options: RunOptions, catalog: Catalog,
           **parts: bool) -> SuiteGraph:
    here = s.executor.placement == "process"  # progress bars only where the jobs run here
    return build_graph(plan, s.env, s.tracker, catalog,
                       accelerated=_accelerated(options.device, s.executor),
                       progress=options.progress if here else no_progress, **parts)


def execute(executor: Executor, graph: SuiteGraph, tracker: Tracker,
            progress: ProgressFactory = no_progress) -> list[JobOutcome]:
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
