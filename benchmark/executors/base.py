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
Slurm job only when it is preempted or times out, and any other exception fails the job. Engines are registered by name (:data:`EXECUTORS`); a new
engine is one new module in this folder with a ``register_executor`` decorator.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from registry.errors import BenchError
from registry.names import Registry

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


class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        """Run ``jobs`` (dependencies first); ``done`` holds results that exist already."""


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")


def register_executor(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        EXECUTORS.add(name, cls)
        return cls
    return add


def check_graph(jobs: Sequence[Job], done: Mapping[str, Any]) -> None:
    """Every dependency is a job of the graph or a finished result, and there is no cycle."""
    keys = {j.key for j in jobs}
    for job in jobs:
        unknown = [d for d in job.deps if d not in keys and d not in done]
        if unknown:
            raise ExecutorError(f"Job {job.label} depends on unknown jobs {unknown}.",
                                "This is a bug in the plan; please report it.")
    if len(topological(jobs)) != len(jobs):
        raise ExecutorError("The job graph has a cycle.", "This is a bug in the plan.")


def topological(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` in an order where every job follows its dependencies (stable otherwise)."""
    by_key = {j.key: j for j in jobs}
    order, placed = [], set()
    pending = list(jobs)
    while pending:
        rest = [j for j in pending if any(d in by_key and d not in placed for d in j.deps)]
        ready = [j for j in pending if j not in rest]
        if not ready:
            break
        order += ready
        placed |= {j.key for j in ready}
        pending = rest
    return order


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
    import os
    import socket

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
    """Run the graph on ``engine``: submit jobs as their dependencies allow (inline ones here),
    collect outcomes as they land."""
    check_graph(jobs, done)
    results: dict[str, Any] = dict(done)  # values, or handles of submitted jobs (chains)
    outcomes: dict[str, JobOutcome] = {}
    waiting, pending = topological(jobs), []  # pending: (handle, job, submitted at)

    def record(o: JobOutcome) -> None:
        results[o.key], outcomes[o.key] = failed_value(o), o
        on_outcome(o)

    while waiting or pending:
        before, batch = len(waiting), []
        for job in list(waiting):
            finished = all(d in outcomes or d in done for d in job.deps)
            if job.inline and finished:
                waiting.remove(job)
                record(outcome(job, run_here(job, {d: results[d] for d in job.deps})))
            elif not job.inline and (finished or engine.chains and all(d in results for d in job.deps)) \
                    and (engine.slots is None or len(pending) + len(batch) < engine.slots):
                waiting.remove(job)
                batch.append(job)
                if engine.chains:  # dependents may be submitted right behind it
                    _start(engine, [job], results, pending)
                    batch = []
        if batch:
            _start(engine, batch, results, pending)
        if not pending:
            if len(waiting) == before:
                raise ExecutorError("Jobs wait on results that never come: "
                                    f"{[j.label for j in waiting]}.", "This is a bug.")
            continue
        for index, got in sorted(engine.wait([p[0] for p in pending]), reverse=True):
            _, job, t0 = pending.pop(index)
            if isinstance(got, Ran):
                record(outcome(job, got))
            else:
                record(_lost(job, got, outcomes, time.perf_counter() - t0))
    return outcomes


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
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorError(f"The '{extra}' executor needs {module}, which is not installed.",
                            f'Install the extra: pip install -e ".[{extra}]" '
                            f'(or pip install "transfer-bench[{extra}]").') from None
