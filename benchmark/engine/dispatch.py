"""Running one task in this process, whichever executor sent it here: the job body for its
kind, with its own tracker (stdout to stderr: MLflow prints run links there, and stdout
belongs to the driver's ``--json``)."""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Any

import torch

from bench_core.logs import quiet_libraries
from bench_core.tracking import Tracker
from benchmark.engine.fold import run_fold
from benchmark.engine.pair import close_pair
from benchmark.engine.pretrain import run_pretrain
from benchmark.engine.probe_job import run_probe_job
from benchmark.engine.tasks import FoldTask, JobEnv, PairTask, PretrainTask, ProbeTask
from registry.progress import ProgressFactory, no_progress

BODIES = {PretrainTask: run_pretrain, FoldTask: run_fold, PairTask: close_pair,
          ProbeTask: run_probe_job}


def run_task(env: JobEnv, task: Any, deps: dict[str, Any],
             progress: ProgressFactory = no_progress) -> Any:
    """Run one task in this process; its result goes to the jobs that depend on it."""
    quiet_libraries(logging.getLogger().level <= logging.DEBUG)
    if env.threads:
        torch.set_num_threads(env.threads)
    with contextlib.redirect_stdout(sys.stderr):
        tracker = Tracker(env.tracking, env.session, env.policy)
        return BODIES[type(task)](env, task, deps, tracker, progress)


@dataclass(frozen=True)
class TaskCall:
    """A picklable job body: one task of the suite with its environment."""

    env: JobEnv
    task: Any
    progress: ProgressFactory = no_progress

    def __call__(self, deps: dict[str, Any]) -> Any:
        return run_task(self.env, self.task, deps, self.progress)
