"""The local executor: every job in this process, one at a time, dependencies first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.engine.executors.base import (Engine, Executor, ExecutorContext, Job, JobOutcome,
                                             OutcomeCallback, Ran, register_executor)
from benchmark.engine.executors.driver import drive, run_here


@register_executor
class LocalExecutor(Executor):
    """Every job in this process, one at a time, dependencies first (the default).

    Runs the graph in topological order through the same driver as the remote engines;
    an exception fails that job (and its dependents) and the rest go on. Ctrl-C stops at once."""

    name = "local"
    placement = "process"

    def __init__(self, context: ExecutorContext, *, cpus_per_job: int | None = None) -> None:
        super().__init__(context)
        self.cpus_per_job = cpus_per_job

    @property
    def threads_per_job(self) -> int | None:
        return self.cpus_per_job  # None: torch's default (every core)

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        return drive(_HereEngine(), jobs, done, on_outcome)


class _HereEngine(Engine):
    """Runs a job when it is submitted, in this process; ``wait`` hands back what it gave."""

    chains, slots = False, 1

    def submit(self, batch: list[tuple[Job, list[Any]]]) -> list[Ran | Exception]:
        out: list[Ran | Exception] = []
        for job, deps in batch:
            try:
                out.append(run_here(job, dict(zip(job.deps, deps))))
            except Exception as err:  # noqa: BLE001 - one job's crash must not stop the grid
                out.append(err)
        return out

    def wait(self, handles: list[Any]) -> list[tuple[int, Any]]:
        return list(enumerate(handles))
