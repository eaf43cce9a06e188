"""The Ray executor: each job is a Ray task with its resources; dependencies are Ray object
refs, so fine-tuning starts on whichever worker is free as soon as its source's pretraining
is done. A task whose worker dies, or that raises anything but a BenchError, is retried by Ray
(``max_retries``). Workers log to the tracking server themselves.

``address=None`` starts a local Ray instance (``num_cpus`` of this machine); ``auto`` or
``ray://HOST:10001`` joins a running cluster. Jobs that want an accelerator ask for
``num_gpus=1`` when the cluster has GPUs (``gpus_per_job`` overrides).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.executors.base import (ExecutorError, Job, JobOutcome, OutcomeCallback, Ran,
                                      drive, import_extra, register_executor, run_here)

log = logging.getLogger(__name__)


def _task(job: Job, keys: tuple[str, ...], *values: Any) -> Ran:
    """The Ray task body: Ray has resolved the dependency refs into ``values``."""
    return run_here(job, dict(zip(keys, values)))


@register_executor("ray")
class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_job: float = 1.0, gpus_per_job: float | None = None,
                 max_retries: int = 2, local_store: bool = False, **_: Any) -> None:
        self.address, self.num_cpus, self.cpus_per_job = address, num_cpus, cpus_per_job
        self.gpus_per_job, self.max_retries, self.local_store = gpus_per_job, max_retries, local_store
        self.threads_per_job = max(1, int(cpus_per_job))  # torch threads in each task
        import_extra("ray", "ray")  # a missing extra fails before any work

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        ray = import_extra("ray", "ray")
        started_here = not ray.is_initialized()
        if started_here:
            self._init(ray)
        try:
            self._check_cluster(ray)
            return self._drive(ray, jobs, done, on_outcome)
        finally:
            if started_here:
                ray.shutdown()

    def _init(self, ray) -> None:
        try:
            ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                     include_dashboard=False, log_to_driver=True, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ExecutorError(f"Could not start or reach Ray at {self.address or 'a local instance'}: "
                                f"{err}", "Start the cluster first (`ray start --head` on the head "
                                "node) and pass --address auto or ray://HEAD:10001.") from None

    def _check_cluster(self, ray) -> None:
        hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
        if self.local_store and len(hosts) > 1:
            raise ExecutorError(
                f"The Ray cluster spans {len(hosts)} machines, and the tracking store is a local "
                "SQLite file the other machines cannot reach.",
                "Start the team server (mlflow/team, see mlflow/README.md) and set "
                "MLFLOW_TRACKING_URI=http://HOST:5000, or run on one machine.")
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus_per_job is None:
            self.gpus_per_job = 1.0 if gpus else 0.0
        elif self.gpus_per_job > gpus:
            raise ExecutorError(f"Jobs ask for {self.gpus_per_job:g} GPU each; the Ray cluster "
                                f"has {gpus:g}.", "Use --device cpu, or add GPU nodes.")

    def _drive(self, ray, jobs: Sequence[Job], done: Mapping[str, Any],
               on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        return drive(_RayEngine(ray, self), jobs, done, on_outcome)


class _RayEngine:
    chains, slots = True, None  # Ray resolves refs and queues tasks by their resources

    def __init__(self, ray, ex: RayExecutor) -> None:
        self.ray, self.ex = ray, ex

    def submit(self, batch: list[tuple[Job, list[Any]]]) -> list[Any]:
        refs = []
        for job, deps in batch:
            remote = self.ray.remote(_task).options(
                num_cpus=self.ex.cpus_per_job, num_gpus=self.ex.gpus_per_job if job.gpus else 0,
                max_retries=self.ex.max_retries, retry_exceptions=True, name=job.label[:100])
            refs.append(remote.remote(job, job.deps, *deps))
        return refs

    def wait(self, handles: list[Any]) -> list[tuple[int, Ran | BaseException]]:
        ready, _ = self.ray.wait(handles, num_returns=1)
        out: list[tuple[int, Ran | BaseException]] = []
        for ref in ready:
            try:
                out.append((handles.index(ref), self.ray.get(ref)))
            except Exception as err:  # noqa: BLE001 - retries exhausted or dependency lost
                out.append((handles.index(ref), err))
        return out
