"""Executors: one module per engine, each a ``@register_executor`` subclass of
:class:`~.base.Executor`, the written contract checked at registration (``local``: this
process; ``ray``: Ray tasks on a local or remote cluster; ``slurm``: Slurm job arrays through
submitit; ``slurm-local``: the same submitit path with its local executor). The engines' own
packages are imported only when an engine is chosen."""

from benchmark.engine.executors.base import (EXECUTOR_CONTRACT, EXECUTORS, Engine, Executor,
                                             ExecutorContext, Job, JobOutcome, Needs,
                                             check_installed, executor_options, import_extra,
                                             make_executor, register_executor)

__all__ = ["EXECUTORS", "EXECUTOR_CONTRACT", "Engine", "Executor", "ExecutorContext", "Job",
           "JobOutcome", "Needs", "check_installed", "executor_options", "import_extra",
           "make_executor", "register_executor"]
