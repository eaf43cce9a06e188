"""``slurm-local``: the Slurm executor's code path on submitit's local executor (one
subprocess per job on this machine): how it is tested here, and a way to run jobs in separate
processes without Ray."""

from __future__ import annotations

from benchmark.engine.executors.base import ExecutorContext, Needs, register_executor
from benchmark.engine.executors.slurm import SlurmExecutor


@register_executor
class SlurmLocalExecutor(SlurmExecutor):
    """The Slurm path with jobs as processes on this machine (a local store is fine).

    submitit's local executor starts every job it is given at once and knows no array
    parallelism, so for it the driver keeps at most ``array_parallelism`` jobs in flight."""

    name = "slurm-local"
    placement = "machine"  # subprocesses here: with --device auto, a GPU if this machine has one
    needs = Needs(module="submitit", extra="slurm")  # no cluster's tools
    submitit_cluster = "local"

    def __init__(self, context: ExecutorContext, *, gpus_per_job: int = 0,
                 cpus_per_job: int = 1, array_parallelism: int = 2, poll_s: float = 1.0) -> None:
        super().__init__(context, gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
                         array_parallelism=array_parallelism, poll_s=poll_s)

    @property
    def slots(self) -> int | None:
        return self.array_parallelism

    def _check_cluster(self) -> None:
        """Nothing to check: jobs are processes on this machine, which holds the store."""
