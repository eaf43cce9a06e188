"""Executors: one module per engine, all behind :class:`~benchmark.executors.base.Executor`.

``local`` (default) runs jobs one at a time in this process; ``ray`` runs them as Ray tasks on a
local or remote Ray cluster; ``slurm`` submits them through submitit as Slurm job arrays, and
``slurm-local`` runs the same submitit path with its local executor. The engines' own packages
are imported only when an engine is chosen.
"""

from __future__ import annotations

from benchmark.executors import local, ray, slurm  # noqa: F401  (registration)
from benchmark.executors.base import EXECUTORS, Executor, Job, JobOutcome, import_extra

__all__ = ["EXECUTORS", "Executor", "Job", "JobOutcome", "check_installed", "make_executor"]


def make_executor(name: str, **options) -> Executor:
    """The executor registered as ``name``, built with ``options`` (engine flags)."""
    return EXECUTORS.get(name)(**options)


def check_installed(name: str) -> None:
    """Fail at once, naming the extra to install, if engine ``name`` (unknown names fail too)
    needs a package that is not installed: before a plan registers or downloads anything."""
    module_extra = getattr(EXECUTORS.get(name), "requires", None)
    if module_extra:
        import_extra(*module_extra)
