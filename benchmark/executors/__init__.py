"""Executors: one module per engine, all behind :class:`~benchmark.executors.base.Executor`.

``local`` (default) runs jobs one at a time in this process; ``ray`` runs them as Ray tasks on a
local or remote Ray cluster; ``slurm`` submits them through submitit as Slurm job arrays, and
``slurm-local`` runs the same submitit path with its local executor. The engines' own packages
are imported only when an engine is chosen.
"""

from __future__ import annotations

from benchmark.executors import local, ray, slurm  # noqa: F401  (registration)
from benchmark.executors.base import EXECUTORS, Executor, Job, JobOutcome

__all__ = ["EXECUTORS", "Executor", "Job", "JobOutcome", "make_executor"]


def make_executor(name: str, **options) -> Executor:
    """The executor registered as ``name``, built with ``options`` (engine flags)."""
    return EXECUTORS.get(name)(**options)
