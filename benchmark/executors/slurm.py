"""The Slurm executor, through submitit: jobs whose dependencies are done are submitted
together as one Slurm job array (``--array-parallelism`` at most in flight), results come back
through submitit's pickles in a shared folder, and a preempted or timed-out job is requeued by
submitit (every job is checkpointable: it resumes from what the tracking store holds).

``slurm-local`` is the same code path on submitit's local executor (one subprocess per job on
this machine): how it is tested here, and a way to run jobs in separate processes without Ray.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.executors.base import (ExecutorError, Job, JobOutcome, OutcomeCallback, Ran,
                                      drive, import_extra, register_executor, run_here)

log = logging.getLogger(__name__)


class SubmititCall:
    """A job as submitit runs it; ``checkpoint`` makes it requeue on preemption or timeout
    (it starts again and skips what the tracking store says is finished)."""

    def __init__(self, job: Job, deps: dict[str, Any]) -> None:
        self.job, self.deps = job, deps

    def __call__(self) -> Ran:
        return run_here(self.job, self.deps)

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        log.warning("%s: preempted or timed out; requeued", self.job.label)
        return submitit.helpers.DelayedSubmission(SubmititCall(self.job, self.deps))


class _SubmititExecutor:
    cluster = "slurm"

    def __init__(self, folder: str, partition: str | None = None, gpus_per_job: int = 0,
                 cpus_per_job: int = 1, array_parallelism: int = 2, timeout_min: int = 24 * 60,
                 mem_gb: float | None = None, local_store: bool = False, poll_s: float = 1.0,
                 **_: Any) -> None:
        self.folder, self.partition, self.gpus_per_job = Path(folder), partition, gpus_per_job
        self.cpus_per_job, self.array_parallelism = cpus_per_job, array_parallelism
        self.timeout_min, self.mem_gb, self.local_store = timeout_min, mem_gb, local_store
        self.poll_s = poll_s
        self.threads_per_job = cpus_per_job
        self._check()  # before any work: a plan that cannot run here fails at once

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        return drive(_SubmititEngine(self.executor(), self), jobs, done, on_outcome)

    def executor(self):
        submitit = import_extra("submitit", "slurm")
        ex = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        params: dict[str, Any] = {"timeout_min": self.timeout_min, "cpus_per_task": self.cpus_per_job,
                                  "gpus_per_node": self.gpus_per_job, "name": "transfer-bench",
                                  "slurm_array_parallelism": self.array_parallelism}
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        ex.update_parameters(**params)
        return ex

    def _check(self) -> None:
        import_extra("submitit", "slurm")
        if shutil.which("sbatch") is None:
            raise ExecutorError("--executor slurm needs Slurm's sbatch, which is not on PATH.",
                                "Run on the cluster's login node, or use --executor slurm-local "
                                "(same code path, jobs as local processes) or ray.")
        if self.local_store:
            raise ExecutorError(
                "Slurm jobs run on compute nodes, and the tracking store is a local SQLite file "
                "they cannot reach.", "Start the team server (mlflow/team, see mlflow/README.md) "
                "and set MLFLOW_TRACKING_URI=http://HOST:5000.")


@register_executor("slurm")
class SlurmExecutor(_SubmititExecutor):
    name = "slurm"


@register_executor("slurm-local")
class SlurmLocalExecutor(_SubmititExecutor):
    """submitit's local executor: the same path, jobs as processes on this machine (a local
    store is fine). Array parallelism bounds how many run at once."""

    name, cluster = "slurm-local", "local"

    def _check(self) -> None:
        import_extra("submitit", "slurm")


class _SubmititEngine:
    chains = False  # submitit passes values, not handles: submit once dependencies are done

    def __init__(self, executor, owner: _SubmititExecutor) -> None:
        self.executor, self.owner = executor, owner
        self.slots = owner.array_parallelism

    def submit(self, batch: list[tuple[Job, list[Any]]]) -> list[Any]:
        with self.executor.batch():  # one job array
            handles = [self.executor.submit(SubmititCall(job, dict(zip(job.deps, deps))))
                       for job, deps in batch]
        for job, handle in zip(batch, handles):
            log.debug("%s submitted as job %s", job[0].label, handle.job_id)
        return handles

    def wait(self, handles: list[Any]) -> list[tuple[int, Ran | BaseException]]:
        import time

        while True:
            finished = [i for i, h in enumerate(handles) if h.done()]
            if finished:
                break
            time.sleep(self.owner.poll_s)
        out: list[tuple[int, Ran | BaseException]] = []
        for i in finished:
            try:
                out.append((i, handles[i].result()))
            except Exception as err:  # noqa: BLE001 - the job failed past its requeues
                out.append((i, err))
        return out
