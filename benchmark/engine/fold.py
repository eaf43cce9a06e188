"""The fine-tuning job: one fold (of one repeat) of a source -> target pair, or of the scratch
baseline, as a run nested below the pair's parent run; tested on the fold's test split and on
the target's shifted sets."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from safetensors.torch import load_file

from bench_core.models import build_model, freeze_all_but_last, load_backbone, model_from_weights
from bench_core.tracking import Tracker
from benchmark.engine.model_files import KEPT_DIR, KEPT_TAG, save_timm_files
from benchmark.engine.runs import job_device, start_run
from benchmark.engine.shifted import shift_metrics
from benchmark.engine.tasks import (REPEAT_SEED_STRIDE, FoldOutcome, FoldTask, JobEnv, fold_name,
                                    fold_outcome, settings_params)
from benchmark.engine.train import fit
from benchmark.engine.weights_cache import fetch_weights
from benchmark.suite.splits import Split, fold_splits, official_split, target_subset
from registry.progress import ProgressFactory

log = logging.getLogger(__name__)


def run_fold(env: JobEnv, task: FoldTask, deps: dict, tracker: Tracker,
             progress: ProgressFactory) -> FoldOutcome:
    """Fine-tune (or train from scratch) on one fold unless the store has it finished (or
    another process is running it: then wait for that one)."""
    job = task.pair
    i, r = job.slot(task.fold)
    done = tracker.finished(task.config_hash) or tracker.wait_for_others(task.config_hash)
    if done is not None:
        return fold_outcome(i, done.data.metrics, done.info.run_id, r)
    tracker.fail_stale(task.config_hash)
    device = job_device(env)
    data = env.data.get(task.record, job.settings.image_size, device)
    split = _split(env, task, data.labels_np, i, r)
    seed = env.seed + i + REPEAT_SEED_STRIDE * r
    name = fold_name(job, i, r)
    tags = env.tags(kind=job.kind, level="fold", source=job.source, target=job.target,
                    fold=str(i), repeat=str(r), config_hash=task.config_hash)
    run, beating = start_run(tracker, env, run_name=f"{job.label} {name}", tags=tags,
                             parent_run_id=task.parent_run_id)
    with run, beating:
        mlflow.log_params(settings_params(env.arch, env.folds, env.baseline, job)
                          | {"fold": i, "repeat": r, "n_train": len(split.train),
                             "n_val": len(split.val), "n_test": len(split.test)})
        mlflow.log_text(env.suite_yaml, "config/suite.yaml")
        torch.manual_seed(seed)  # initial weights: the job's alone, not the process's
        model = _init_model(env, task, data.n_classes, deps, tracker)
        frozen = freeze_all_but_last(model, job.k) if job.kind == "freeze" else []
        with progress(f"{job.label} {name}", job.settings.epochs) as advance:
            result = fit(model, data, split, job.settings, device, seed, frozen=frozen,
                         on_epoch=lambda e, m: mlflow.log_metrics(m, step=e), progress=advance)
        metrics = {f"test_{k}": v for k, v in result.test.items()}
        metrics |= {"best_epoch": result.best_epoch,
                    "train_images_per_s": result.train_images_per_s}
        metrics |= shift_metrics(env, task, tracker, model, data, split, device)
        mlflow.log_metrics(metrics)
        if job.settings.keep_models:
            _keep_model(env, task, model, data.classes, run.info.run_id)
    log.info("%s %s: test AUC %.4f (%.0f images/s)", job.label, name, result.test["auc"],
             result.train_images_per_s)
    return fold_outcome(i, metrics, run.info.run_id, r)


def _init_model(env: JobEnv, task: FoldTask, n_classes: int, deps: dict, tracker: Tracker):
    """The network to fine-tune: given weights (ImageNet ...), the pretrained source's
    backbone with a new head, or random (scratch)."""
    init = task.pair.init
    if init.startswith("weights:"):
        return model_from_weights(init.removeprefix("weights:"), env.arch.name, n_classes,
                                  env.arch.drop_rate, cache=env.paths.registry_models_dir,
                                  tracking_uri=env.tracking.uri)
    model = build_model(env.arch.name, n_classes, env.arch.drop_rate)
    if task.source_weights is not None:
        path = Path(deps[task.source_weights])
        if not path.is_file():  # pretrained on another machine: take it from its run
            fetch_weights(tracker, path.stem, path)
        load_backbone(model, load_file(str(path)))
    return model


def _split(env: JobEnv, task: FoldTask, labels: np.ndarray, fold: int, repeat: int) -> Split:
    """Fold ``fold`` of repeat ``repeat`` (repeated k-fold: repeat r splits with
    folds.seed + r), or the target's official split; within the target's subset if any."""
    subset = target_subset(labels, task.pair.max_samples, env.seed)
    if env.folds.scheme == "official":
        split = official_split(np.load(task.record.file_path("split")))
        keep = np.zeros(len(labels), dtype=bool)
        keep[subset] = True
        return Split(*(part[keep[part]] for part in (split.train, split.val, split.test)))
    split = fold_splits(labels[subset], env.folds.n, env.folds.val_fraction,
                        env.folds.seed + repeat)[fold]
    return Split(subset[split.train], subset[split.val], subset[split.test])


def _keep_model(env: JobEnv, task: FoldTask, model, classes, run_id: str) -> None:
    """``keep_models``: the fine-tuned model (its best epoch, as fit leaves it) as the fold
    run's artifacts ``model/model.safetensors`` and ``model/config.json`` (the layout of a
    published folder; label names: the target's classes), and the run tagged
    ``kept_model=1``, for ``bench publish SOURCE --run RUN_ID``."""
    job = task.pair
    i, r = job.slot(task.fold)
    ours = {"source": job.source, "target": job.target, "suite": env.suite,
            "config_hash": task.config_hash, "run_id": run_id, "fold": i, "repeat": r,
            "kind": job.kind}
    with tempfile.TemporaryDirectory() as tmp:
        save_timm_files(model, Path(tmp), job.settings.image_size, classes, ours)
        mlflow.log_artifacts(tmp, KEPT_DIR)
    mlflow.set_tag(KEPT_TAG, "1")
