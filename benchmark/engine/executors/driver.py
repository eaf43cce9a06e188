"""The driver every engine shares: :func:`drive` runs a graph of jobs on an
:class:`~benchmark.engine.executors.base.Engine`, submitting each job once its dependencies
allow and collecting outcomes as they land; :func:`run_here` is what runs one job, wherever
the engine put it (a BenchError and a failed dependency become a :class:`Failed` value)."""

from __future__ import annotations

import graphlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.engine.executors.base import (Engine, ExecutorError, Failed, Job, JobOutcome,
                                             OutcomeCallback, Ran)
from registry.errors import BenchError
from registry.names import ContractError

log = logging.getLogger(__name__)


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


def drive(engine: Engine, jobs: Sequence[Job], done: Mapping[str, Any],
          on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
    """Run the graph on ``engine``: submit jobs as their dependencies allow (inline ones here,
    once their dependencies have outcomes), in plan order among those ready, and collect
    outcomes as they land. A job counts as done for the graph when it finishes, or, on an
    engine that ``chains``, once it is submitted (its handle stands for its result)."""
    if not isinstance(engine, Engine):
        raise ContractError(f"drive() was given {type(engine).__qualname__!r}, not an "
                                    "Engine.", "Subclass benchmark.engine.executors.base.Engine.")
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


