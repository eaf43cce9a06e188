"""The probe job of a suite: one probe over the suite's datasets (those scoring source models
wait for the pretraining), logged as a probe run."""

from __future__ import annotations

from pathlib import Path

from bench_core.tracking import Tracker
from benchmark.engine.runs import job_device
from benchmark.engine.tasks import JobEnv, ProbeTask
from benchmark.engine.weights_cache import fetch_weights
from probes.base import PROBES, ProbeContext
from probes.tracking import log_probe
from registry.progress import ProgressFactory


def run_probe_job(env: JobEnv, task: ProbeTask, deps: dict, tracker: Tracker,
                  progress: ProgressFactory) -> str:
    """Compute and log the probe unless the store has it finished; return its run id."""
    done = tracker.finished(task.config_hash) or tracker.wait_for_others(task.config_hash)
    if done is not None:
        return done.info.run_id
    tracker.fail_stale(task.config_hash)
    for key, path in deps.items():  # networks pretrained on another machine: take them
        if key.startswith("pretrain:") and not Path(path).is_file():
            fetch_weights(tracker, key.removeprefix("pretrain:"), Path(path))
    models = {m.name: m for m in task.source_models}
    context = ProbeContext(env.paths, job_device(env), progress, models, env.tracking.uri,
                           outputs=env.outputs)
    result = PROBES.get(task.spec.method)(dict(task.spec.options), context).compute(
        list(task.records))
    return log_probe(tracker, result, dict(task.spec.options),
                     env.tags(config_hash=task.config_hash))
