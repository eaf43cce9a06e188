"""The executor contract: run a graph of jobs honouring their dependencies, report outcomes.

A :class:`Job` is a picklable callable plus the keys of the jobs whose results it takes. An
executor runs every job once its dependencies have results (``call(results_of_deps)``),
reports each :class:`JobOutcome` through ``on_outcome`` as it lands, and returns them all. Jobs
whose results exist already (finished in an earlier run) come in ``done`` and are not run.
``inline`` jobs are cheap bookkeeping the driver runs itself, whatever the engine.

Failure rules, the same for every engine: a :class:`~registry.errors.BenchError` raised by a job
is a deterministic user-facing failure and is never retried; a job whose dependency failed is
not run and fails with that reason. What else is retried is the engine's: Ray retries a task
that raises any other exception or whose worker dies (``max_retries``); submitit requeues a
Slurm job only when it is preempted or times out, and any other exception fails the job.

Engines are registered by name (:data:`EXECUTORS`): a new engine is one new module in this
folder with a ``@register_executor`` class (``name = "..."``) whose constructor takes the
:class:`ExecutorContext` and its own options as keywords; those keywords are the options the
CLI accepts for it (``inspect.signature``), so nothing else lists them.
"""

from __future__ import annotations

import graphlib
import importlib
import inspect
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from registry.errors import BenchError
from registry.names import LazyRegistry

log = logging.getLogger(__name__)
OutcomeCallback = Callable[["JobOutcome"], None]


@dataclass(frozen=True)
class Job:
    key: str
    label: str
    kind: str  # pretrain | fold | pair | probe
    call: Callable[[dict[str, Any]], Any]
    deps: tuple[str, ...] = ()
    gpus: float = 0.0
    inline: bool = False


@dataclass(frozen=True)
class JobOutcome:
    key: str
    label: str
    kind: str
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    host: str = ""


@dataclass(frozen=True)
class Failed:
    """A job's deterministic failure, carried as a value (so engines do not retry it)."""

    message: str


class ExecutorError(BenchError):
    """An engine that cannot start or cannot run this plan."""


@dataclass(frozen=True)
class ExecutorContext:
    """What the driver tells every engine: whether the tracking store is a local file that
    only this machine reaches, and a folder of this session the engine may keep files in."""

    local_store: bool = False
    folder: Path | None = None


class Executor(Protocol):
    name: str
    threads_per_job: int | None  # torch threads in each job (None: torch's default)

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        """Run ``jobs`` (dependencies first); ``done`` holds results that exist already."""


EXECUTORS: LazyRegistry[Callable[..., Executor]] = LazyRegistry(
    "executor", "benchmark.engine.executors", "register_executor",
    entry_points="transfer_bench.executors")


def register_executor(cls: type) -> type:
    """Class decorator: register ``cls`` under ``cls.name``."""
    EXECUTORS.add(cls.name, cls)
    return cls


def executor_options(name: str) -> list[str]:
    """The options engine ``name`` takes (its constructor's keywords after the context)."""
    params = inspect.signature(EXECUTORS.get(name)).parameters
    return [p.name for p in params.values() if p.name != "context"
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def make_executor(name: str, context: ExecutorContext, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options`` (engine flags); options it
    does not take are an error naming them and the ones it takes."""
    wrong = sorted(set(options) - set(executor_options(name)))
    if wrong:
        raise ExecutorError(f"Option(s) {wrong} do not apply to --executor {name}.",
                            f"It takes: {', '.join(executor_options(name)) or 'none'}.")
    return EXECUTORS.get(name)(context, **options)


def check_installed(name: str) -> None:
    """Fail at once, naming the extra to install, if engine ``name`` (unknown names fail too)
    needs a package that is not installed: before a plan registers or downloads anything."""
    module_extra = getattr(EXECUTORS.get(name), "requires", None)
    if module_extra:
        import_extra(*module_extra)


def _sorter(jobs: Sequence[Job], done: Mapping[str, Any]) -> graphlib.TopologicalSorter:
    """The jobs' dependency graph, prepared; every dependency must be a job of the graph or a
    finished result, and there must be no cycle."""
    keys = {j.key for j in jobs}
    for job in jobs:
        unknown = [d for d in job.deps if d not in keys and d not in done]
        if unknown:
            raise ExecutorError(f"Job {job.label} depends on unknown jobs {unknown}.",
                                "This is a bug in the plan; please report it.")
    sorter = graphlib.TopologicalSorter({j.key: [d for d in j.deps if d in keys] for j in jobs})
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        raise ExecutorError(f"The job graph has a cycle: {err.args[1]}.",
                            "This is a bug in the plan.") from None
    return sorter


@dataclass(frozen=True)
class Ran:
    """What running a job produced, wherever it ran: its value (or :class:`Failed`), the
    seconds it took there and the host and process that ran it."""

    value: Any
    seconds: float
    host: str
    pid: int


def run_here(job: Job, deps: Mapping[str, Any]) -> Ran:
    """Run ``job`` in this process with its dependencies' values (:class:`Ran` unwrapped). A
    dependency that failed, or a BenchError, becomes a :class:`Failed` value; other
    exceptions propagate (the engine may retry them)."""
    values = {k: v.value if isinstance(v, Ran) else v for k, v in deps.items()}
    started = time.perf_counter()
    failed = [k for k, v in values.items() if isinstance(v, Failed)]
    if failed:
        value: Any = Failed(_not_run(failed))
    else:
        try:
            value = job.call(values)
        except BenchError as err:
            value = Failed(str(err))
    return Ran(value, time.perf_counter() - started, socket.gethostname(), os.getpid())


def _not_run(failed: list[str]) -> str:
    return f"not run: a job it depends on failed ({', '.join(failed)})"


def outcome(job: Job, ran: Ran) -> JobOutcome:
    """The outcome of ``job`` from what it returned (a :class:`Failed` is a failure)."""
    if isinstance(ran.value, Failed):
        return JobOutcome(job.key, job.label, job.kind, False, error=ran.value.message,
                          seconds=ran.seconds, host=ran.host)
    return JobOutcome(job.key, job.label, job.kind, True, ran.value, seconds=ran.seconds,
                      host=ran.host)


def crashed(job: Job, err: BaseException, seconds: float = 0.0) -> JobOutcome:
    """The outcome of a job whose engine gave up on it (retries exhausted, worker lost)."""
    log.error("%s failed:\n%s", job.label,
              "".join(traceback.format_exception(err)).rstrip()[-4000:])
    last = str(err).strip().splitlines()
    return JobOutcome(job.key, job.label, job.kind, False, seconds=seconds,
                      error=f"{type(err).__name__}: {last[-1] if last else ''}")


def failed_value(o: JobOutcome) -> Any:
    """What dependents of ``o``'s job receive: its value, or a Failed naming it."""
    return o.value if o.ok else Failed(o.error or "failed")


class Engine(Protocol):
    """What :func:`drive` needs from a remote engine."""

    chains: bool  # a job may be submitted with handles of unfinished dependencies
    slots: int | None  # jobs in flight at most (None: no limit)

    def submit(self, batch: list[tuple[Job, list[Any]]]) -> list[Any]:
        """Start each job with its dependencies' values (or handles); one handle per job."""

    def wait(self, handles: list[Any]) -> list[tuple[int, Ran | BaseException]]:
        """Block until at least one handle is done; (index, what it produced) for each."""


def drive(engine: Engine, jobs: Sequence[Job], done: Mapping[str, Any],
          on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
    """Run the graph on ``engine``: submit jobs as their dependencies allow (inline ones here,
    once their dependencies have outcomes), in plan order among those ready, and collect
    outcomes as they land. A job counts as done for the graph when it finishes, or, on an
    engine that ``chains``, once it is submitted (its handle stands for its result)."""
    sorter, order = _sorter(jobs, done), {j.key: i for i, j in enumerate(jobs)}
    by_key = {j.key: j for j in jobs}
    results: dict[str, Any] = dict(done)  # values, or handles of submitted jobs (chains)
    outcomes: dict[str, JobOutcome] = {}
    held: list[Job] = []  # ready for the graph, not started: no slot, or inline and waiting
    pending: list = []  # (handle, job, submitted at)

    def record(o: JobOutcome) -> None:
        results[o.key], outcomes[o.key] = failed_value(o), o
        on_outcome(o)

    while sorter.is_active() or held or pending:
        held = sorted([*held, *(by_key[k] for k in sorter.get_ready())],
                      key=lambda j: order[j.key])
        started = _run_inline(held, outcomes, done, results, record, sorter)
        batch = []
        for job in [j for j in held if not j.inline]:
            if engine.slots is None or len(pending) + len(batch) < engine.slots:
                held.remove(job)
                batch.append(job)
        if batch:
            _start(engine, batch, results, pending)
            for job in batch if engine.chains else ():
                sorter.done(job.key)  # dependents may be submitted right behind it
        if not pending:
            if not (started or batch):
                raise ExecutorError("Jobs wait on results that never come: "
                                    f"{[j.label for j in held]}.", "This is a bug.")
            continue
        for index, got in sorted(engine.wait([p[0] for p in pending]), reverse=True):
            _, job, t0 = pending.pop(index)
            record(outcome(job, got) if isinstance(got, Ran)
                   else _lost(job, got, outcomes, time.perf_counter() - t0))
            if not engine.chains:
                sorter.done(job.key)
    return outcomes


def _run_inline(held: list[Job], outcomes: Mapping[str, JobOutcome], done: Mapping[str, Any],
                results: dict[str, Any], record: OutcomeCallback,
                sorter: graphlib.TopologicalSorter) -> int:
    """Run the held inline jobs whose dependencies all have outcomes, here; how many ran."""
    ran = 0
    for job in [j for j in held if j.inline]:
        if all(d in outcomes or d in done for d in job.deps):
            held.remove(job)
            record(outcome(job, run_here(job, {d: results[d] for d in job.deps})))
            sorter.done(job.key)
            ran += 1
    return ran


def _start(engine: Engine, batch: list[Job], results: dict[str, Any], pending: list) -> None:
    now = time.perf_counter()  # before submit: an engine may run the job right there
    handles = engine.submit([(j, [results[d] for d in j.deps]) for j in batch])
    for job, handle in zip(batch, handles):
        results[job.key] = handle
        pending.append((handle, job, now))


def _lost(job: Job, err: BaseException, outcomes: Mapping[str, JobOutcome],
          seconds: float) -> JobOutcome:
    failed = [d for d in job.deps if d in outcomes and not outcomes[d].ok]
    if failed:
        return JobOutcome(job.key, job.label, job.kind, False, seconds=seconds,
                          error=_not_run(failed))
    return crashed(job, err, seconds)


def import_extra(module: str, extra: str) -> Any:
    """``import module`` for an optional engine, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorError(f"The '{extra}' executor needs {module}, which is not installed.",
                            f'Install the extra: pip install -e ".[{extra}]" '
                            f'(or pip install "transfer-bench[{extra}]").') from None
