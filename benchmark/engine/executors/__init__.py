"""Executors: one module per engine, each a ``@register_executor`` class behind the contract of
:mod:`.base` (``local``: this process; ``ray``: Ray tasks on a local or remote cluster;
``slurm``: Slurm job arrays through submitit; ``slurm-local``: the same submitit path with its
local executor). The engines' own packages are imported only when an engine is chosen."""

from benchmark.engine.executors.base import (EXECUTORS, Executor, ExecutorContext, Job,
                                             JobOutcome, check_installed, executor_options,
                                             import_extra, make_executor)

__all__ = ["EXECUTORS", "Executor", "ExecutorContext", "Job", "JobOutcome", "check_installed",
           "executor_options", "import_extra", "make_executor"]
