"""The Slurm executor, through submitit: every job whose dependencies are done is submitted in
one go, as one Slurm job array (two when some of them need no GPU: card-only probes ask for
none), and Slurm runs at most ``--array-parallelism`` tasks of each array at once
(``#SBATCH --array=0-N%P``). Results come back through submitit's pickles in a shared folder; a
job that is preempted or times out is requeued by submitit (every job is checkpointable: it
resumes from what the tracking store holds). Any other exception fails the job, unretried.

``slurm-local`` is the same code path on submitit's local executor (one subprocess per job on
this machine): how it is tested here, and a way to run jobs in separate processes without Ray.
The local executor starts every job of a batch at once and knows no array parallelism, so for
it alone the driver keeps at most ``--array-parallelism`` jobs in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.engine.executors.base import (Engine, Executor, ExecutorContext, ExecutorError,
                                             Job, JobOutcome, Needs, OutcomeCallback, Ran,
                                             register_executor)
from benchmark.engine.executors.driver import drive, run_here

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


@register_executor
class SlurmExecutor(Executor):
    """Slurm job arrays through submitit (from a login node; the store must be a server).

    Results come back through submitit's pickles in the session's folder; ``slurm-local``
    (:mod:`.slurm_local`) is this class on submitit's local executor."""

    name = "slurm"
    placement = "cluster"  # compute nodes; with --device auto, jobs ask for a GPU
    needs = Needs(module="submitit", extra="slurm", commands=("sbatch", "srun"))
    submitit_cluster = "slurm"  # submitit's AutoExecutor(cluster=...)

    def __init__(self, context: ExecutorContext, *, partition: str | None = None,
                 gpus_per_job: int = 0, cpus_per_job: int = 1, array_parallelism: int = 2,
                 timeout_min: int = 24 * 60, mem_gb: float | None = None,
                 poll_s: float = 1.0) -> None:
        super().__init__(context)
        if context.folder is None:
            raise ExecutorError(f"--executor {self.name} needs a folder for submitit's jobs.",
                                "This is a bug: the driver gives one; please report it.")
        self.folder, self.partition, self.gpus_per_job = context.folder, partition, gpus_per_job
        self.cpus_per_job, self.array_parallelism = cpus_per_job, array_parallelism
        self.timeout_min, self.mem_gb, self.local_store = timeout_min, mem_gb, context.local_store
        self.poll_s = poll_s
        self._check()  # before any work: a plan that cannot run here fails at once

    @property
    def threads_per_job(self) -> int:
        return self.cpus_per_job

    @property
    def slots(self) -> int | None:
        """Jobs the driver keeps in flight at most: none, Slurm throttles each array itself."""
        return None

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        self._warn_without_gpus(jobs)
        return drive(_SubmititEngine(self), jobs, done, on_outcome)

    def _warn_without_gpus(self, jobs: Sequence[Job]) -> None:
        wanting = sum(1 for j in jobs if j.gpus and not j.inline)
        if wanting and not self.gpus_per_job:
            log.warning("--executor %s without --gpus-per-job: %d job(s) that would use a GPU "
                        "get none and train on CPU (slowly). Pass --gpus-per-job 1 to give each "
                        "a GPU, or --device cpu to mean it.", self.name, wanting)

    def executor(self, gpus: int):
        """A submitit executor whose jobs get ``gpus`` GPUs each (none asked for when 0)."""
        submitit = self.needs.load()
        ex = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.submitit_cluster)
        params: dict[str, Any] = {"timeout_min": self.timeout_min, "cpus_per_task": self.cpus_per_job,
                                  "name": "transfer-bench",
                                  "slurm_array_parallelism": self.array_parallelism}
        if gpus:
            params["gpus_per_node"] = gpus
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        ex.update_parameters(**params)
        return ex

    def _check(self) -> None:
        self.needs.load()
        if self.array_parallelism < 1:
            raise ExecutorError(f"--array-parallelism must be at least 1, got "
                                f"{self.array_parallelism}.", "Pass how many jobs may run at once.")
        self._check_cluster()

    def _check_cluster(self) -> None:
        """Slurm's tools are here, and the compute nodes can reach the tracking store."""
        missing = self.needs.absent_commands()
        if missing:
            raise ExecutorError(f"--executor slurm needs Slurm's {' and '.join(missing)}, "
                                f"which {'is' if len(missing) == 1 else 'are'} not on PATH.",
                                "Run on the cluster's login node, or use --executor slurm-local "
                                "(same code path, jobs as local processes) or ray.")
        if self.local_store:
            raise ExecutorError(
                "Slurm jobs run on compute nodes, and the tracking store is a local SQLite file "
                "they cannot reach.", "Start the team server (mlflow/team, see mlflow/README.md) "
                "and set MLFLOW_TRACKING_URI=http://HOST:5000.")


class _SubmititEngine(Engine):
    chains = False  # submitit passes values, not handles: submit once dependencies are done

    def __init__(self, owner: SlurmExecutor) -> None:
        self.owner = owner
        self._executors: dict[int, Any] = {}  # GPUs per job -> submitit executor

    @property
    def slots(self) -> int | None:
        return self.owner.slots

    def submit(self, batch: list[tuple[Job, list[Any]]]) -> list[Any]:
        """The batch as one job array per GPU request (jobs needing a GPU, jobs needing none)."""
        groups: dict[int, list[int]] = {}
        for i, (job, _) in enumerate(batch):
            groups.setdefault(self.owner.gpus_per_job if job.gpus else 0, []).append(i)
        handles: list[Any] = [None] * len(batch)
        for gpus, indices in groups.items():
            if gpus not in self._executors:
                self._executors[gpus] = self.owner.executor(gpus)
            ex = self._executors[gpus]
            with ex.batch():  # one job array
                for i in indices:
                    job, deps = batch[i]
                    handles[i] = ex.submit(SubmititCall(job, dict(zip(job.deps, deps))))
            log.info("%d job(s) submitted together (%d GPU each): %s", len(indices), gpus,
                     ", ".join(f"{batch[i][0].label} as {handles[i].job_id}" for i in indices))
        return handles

    def wait(self, handles: list[Any]) -> list[tuple[int, Ran | BaseException]]:
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
