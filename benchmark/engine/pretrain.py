"""The pretraining job: train a source dataset once (a single stratified split, Table II of van den Brandt
et al. 2021), cache its best weights by config hash and log them with the run."""

from __future__ import annotations

import logging

import mlflow
import torch

from bench_core.models import build_model
from bench_core.tracking import Tracker, flatten
from benchmark.engine.runs import job_device, log_dataset_input, start_run
from benchmark.engine.tasks import JobEnv, PretrainTask
from benchmark.engine.train import fit
from benchmark.engine.weights_cache import fetch_weights, save_weights
from benchmark.suite.splits import single_split
from registry.progress import ProgressFactory

log = logging.getLogger(__name__)


def run_pretrain(env: JobEnv, task: PretrainTask, deps: dict, tracker: Tracker,
                 progress: ProgressFactory) -> str:
    """Train ``task``'s source unless its weights exist here or in the store; return the
    path of the weights."""
    job = task.job
    path = env.paths.pretrained_weights(job.config_hash)
    if path.is_file():
        return str(path)
    if fetch_weights(tracker, job.config_hash, path):  # pretrained elsewhere (now or earlier)
        return str(path)
    tracker.fail_stale(job.config_hash)
    device = job_device(env)
    data = env.data.get(task.record, job.settings.image_size, device)
    split = single_split(data.labels_np, env.seed)
    torch.manual_seed(env.seed)  # the initial weights depend on the job alone, not the process
    model = build_model(env.arch.name, data.n_classes, env.arch.drop_rate)
    tags = env.tags(kind="pretrain", level="pretrain", source=job.source,
                    config_hash=job.config_hash)
    run, beating = start_run(tracker, env, run_name=f"pretrain: {job.source}", tags=tags)
    with run, beating:
        mlflow.log_params(flatten({"arch": env.arch.model_dump(),
                                   "train": job.settings.model_dump(mode="json"),
                                   "source": job.source, "seed": env.seed}))
        mlflow.log_text(env.suite_yaml, "config/suite.yaml")
        log_dataset_input(tracker, run.info.run_id, task.record, "pretrain")
        with progress(f"pretrain {job.source}", job.settings.epochs) as advance:
            result = fit(model, data, split, job.settings, device, env.seed,
                         on_epoch=lambda e, m: mlflow.log_metrics(m, step=e), progress=advance)
        mlflow.log_metrics({f"test_{k}": v for k, v in result.test.items()})
        mlflow.log_metrics({"best_epoch": result.best_epoch,
                            "train_images_per_s": result.train_images_per_s})
        save_weights(result.best_state, path, {"source": job.source, "arch": env.arch.name,
                                               "classes": ",".join(data.classes)})
        mlflow.log_artifact(str(path), "weights")
    log.info("pretrained %s: test AUC %.4f (%.0f images/s)", job.source, result.test["auc"],
             result.train_images_per_s)
    return str(path)
