"""The local executor: every job in this process, one at a time, dependencies first."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.executors.base import (Job, JobOutcome, OutcomeCallback, check_graph, crashed,
                                      failed_value, outcome, register_executor, run_here,
                                      topological)


@register_executor("local")
class LocalExecutor:
    """Runs the graph in topological order; an exception fails that job (and its
    dependents) and the rest go on. Ctrl-C stops at once."""

    name = "local"

    def __init__(self, cpus_per_job: int | None = None, **_: Any) -> None:
        self.threads_per_job = cpus_per_job  # None: torch's default (every core)

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        check_graph(jobs, done)
        results: dict[str, Any] = dict(done)
        outcomes: dict[str, JobOutcome] = {}
        for job in topological(jobs):
            started = time.perf_counter()
            try:
                o = outcome(job, run_here(job, {d: results[d] for d in job.deps}))
            except Exception as err:  # noqa: BLE001 - one job's crash must not stop the grid
                o = crashed(job, err, time.perf_counter() - started)
            results[job.key] = failed_value(o)
            outcomes[job.key] = o
            on_outcome(o)
        return outcomes
