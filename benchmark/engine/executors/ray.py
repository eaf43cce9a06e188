"""The Ray executor: each job is a Ray task with its resources; dependencies are Ray object
refs, so fine-tuning starts on whichever worker is free as soon as its source's pretraining
is done. A task whose worker dies, or that raises anything but a BenchError, is retried by Ray
(``max_retries``). Workers log to the tracking server themselves.

``address=None`` starts a local Ray instance (``num_cpus`` CPUs, default every core of this
machine); ``auto``, ``HEAD:6379`` or ``ray://HEAD:10001`` joins a running cluster (``num_cpus``
is then the cluster's business and refused). Jobs that want an accelerator ask for
``num_gpus=1`` when the cluster has GPUs (``gpus_per_job`` overrides).

A local SQLite tracking store is refused, when the executor is built (before any run is
opened), if workers could run on another machine: ``--address`` names a ``ray://`` client URI
or a head that is not this host, or the cluster it joins has more than one alive node.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from benchmark.engine.executors.base import (Engine, Executor, ExecutorContext, ExecutorError,
                                             Job, JobOutcome, Needs, OutcomeCallback, Ran,
                                             register_executor)
from benchmark.engine.executors.driver import drive, run_here

log = logging.getLogger(__name__)
_TEAM_SERVER = ("Start the team server (mlflow/team, see mlflow/README.md) and set "
                "MLFLOW_TRACKING_URI=http://HOST:5000, or run on one machine.")


def _task(job: Job, keys: tuple[str, ...], *values: Any) -> Ran:
    """The Ray task body: Ray has resolved the dependency refs into ``values``."""
    return run_here(job, dict(zip(keys, values)))


def is_this_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP) is this machine: every address it resolves to can be
    bound here. A name that does not resolve is not this machine."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False
    for family, _, _, _, sockaddr in infos:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((sockaddr[0], 0))
            except OSError:
                return False
    return bool(infos)


def remote_address(address: str | None) -> str | None:
    """Why ``address`` means workers on other machines (None when it may all be this one):
    a ``ray://`` client URI of another host, or ``HEAD:PORT`` of another host. ``auto`` and
    no address stay on this host's cluster (whose nodes are counted once joined)."""
    if not address or address == "auto":
        return None
    client = address.startswith("ray://")
    host = urlsplit(address if "://" in address else f"//{address}").hostname
    if host and is_this_host(host):
        return None
    return (f"--address {address} is a Ray client URI of another machine" if client
            else f"--address {address} names a Ray head that is not this machine")


@register_executor
class RayExecutor(Executor):
    """Ray tasks on a local instance or a cluster (``--address``), one GPU each where the
    cluster has GPUs; dependencies as object refs."""

    name = "ray"
    placement = "cluster"  # with --device auto, jobs ask for a GPU where the cluster has one
    needs = Needs(module="ray", extra="ray")
    smoke_options = {"num_cpus": 2}

    def __init__(self, context: ExecutorContext, *, address: str | None = None,
                 num_cpus: int | None = None, cpus_per_job: float = 1.0,
                 gpus_per_job: float | None = None, max_retries: int = 2) -> None:
        super().__init__(context)
        self.address = address or os.environ.get("RAY_ADDRESS") or None  # as ray.init reads it
        self.num_cpus, self.cpus_per_job = num_cpus, cpus_per_job
        self.gpus_per_job, self.max_retries = gpus_per_job, max_retries
        self.local_store = context.local_store
        self._joined = False  # connected by the preflight: run() uses it and shuts it down
        self._preflight()

    @property
    def threads_per_job(self) -> int:
        return max(1, int(self.cpus_per_job))  # torch threads in each task

    def _preflight(self) -> None:
        """Before any work: the extra is installed, the flags fit, the store is reachable."""
        ray = self.needs.load()
        if self.num_cpus is not None and self.address:
            raise ExecutorError(f"--num-cpus sizes a Ray instance started here; joining the "
                                f"cluster at {self.address} (--address or RAY_ADDRESS), its "
                                "nodes decide their CPUs.",
                                "Drop --num-cpus (or --address to start a local instance).")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ExecutorError(f"--num-cpus must be at least 1, got {self.num_cpus}.",
                                "Pass a positive number of CPUs for the local Ray instance.")
        if not self.local_store:
            return
        remote = remote_address(self.address)
        if remote:
            raise ExecutorError(f"{remote}, and the tracking store is a local SQLite file "
                                "workers there cannot reach.", _TEAM_SERVER)
        if self.address and not ray.is_initialized():  # joins a cluster: count its machines
            self._init(ray)
            self._joined = True
            try:
                self._check_one_machine(ray)
            except ExecutorError:
                ray.shutdown()
                self._joined = False
                raise

    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        ray = self.needs.load()
        started_here = self._joined or not ray.is_initialized()
        if not ray.is_initialized():
            self._init(ray)
        self._joined = False
        try:
            self._check_cluster(ray)
            return drive(_RayEngine(ray, self), jobs, done, on_outcome)
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

    def _check_one_machine(self, ray) -> None:
        hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
        if self.local_store and len(hosts) > 1:
            raise ExecutorError(
                f"The Ray cluster spans {len(hosts)} machines, and the tracking store is a local "
                "SQLite file the other machines cannot reach.", _TEAM_SERVER)

    def _check_cluster(self, ray) -> None:
        self._check_one_machine(ray)  # again: a cluster may have grown since the preflight
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus_per_job is None:
            self.gpus_per_job = 1.0 if gpus else 0.0
        elif self.gpus_per_job > gpus:
            raise ExecutorError(f"Jobs ask for {self.gpus_per_job:g} GPU each; the Ray cluster "
                                f"has {gpus:g}.", "Use --device cpu, or add GPU nodes.")


class _RayEngine(Engine):
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
