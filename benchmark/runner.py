"""The local executor: runs a :class:`~benchmark.plan.Plan` job by job, logging to MLflow.

Pretrained source weights are cached in ``BENCH_HOME/models/<config hash>.safetensors``
(written atomically), so each source is pretrained once. For each target, the scratch baseline
runs first, then every source; fold runs log per-epoch metrics with steps and their test AUC,
and transferability (Eq. 1) against the baseline of the same fold.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from benchmark.data import DeviceData, load_device_data
from benchmark.figures import close_figure, curves_figure
from benchmark.metrics import transferability
from benchmark.models import (build_model, freeze_all_but_last, load_backbone,
                              model_from_weights)
from benchmark.plan import PairJob, Plan, PretrainJob
from benchmark.splits import Split, fold_splits, single_split
from benchmark.tracking import Tracker, flatten
from benchmark.train import fit
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    paths: BenchPaths
    tracker: Tracker
    device: torch.device
    suite_yaml: str
    progress: ProgressFactory = no_progress
    system_metrics: bool = True


@dataclass
class FoldOutcome:
    fold: int
    auc: float
    accuracy: float
    transferability: float | None = None
    generality: float | None = None


@dataclass
class PairOutcome:
    job: PairJob
    folds: list[FoldOutcome]
    run_id: str
    reused: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


def execute(plan: Plan, ctx: RunContext) -> list[PairOutcome]:
    """Run every job of ``plan`` not already finished in the tracker."""
    weights = {job.config_hash: _pretrained(job, plan, ctx) for job in plan.pretrain}
    outcomes: list[PairOutcome] = []
    for target in dict.fromkeys(p.target for p in plan.pairs):
        pairs = _ordered([p for p in plan.pairs if p.target == target], plan.suite.baseline)
        data = load_device_data(plan.records[target], pairs[0].settings.image_size, ctx.device)
        splits = fold_splits(data.labels_np, plan.suite.folds.n, plan.suite.folds.val_fraction,
                             plan.suite.folds.seed)
        baselines: dict[str, list[float]] = {}
        for pair in pairs:
            out = _run_pair(pair, data, splits, plan, ctx, weights, baselines)
            if pair.kind == "scratch":
                baselines["scratch"] = [f.auc for f in out.folds]
            if pair.kind == "transfer" and pair.source == target:
                baselines["self"] = [f.auc for f in out.folds]
            outcomes.append(out)
        del data
    return outcomes


def _ordered(pairs: list[PairJob], baseline: str) -> list[PairJob]:
    """Scratch first, then the target's own pretraining (the 'self' baseline), then the rest."""
    def key(p: PairJob) -> tuple[int, int]:
        return (0 if p.kind == "scratch" else 1 if p.source == p.target and p.kind == "transfer"
                else 2, 0 if p.k is None else 1)
    return sorted(pairs, key=key)


def _suite_tags(plan: Plan, ctx: RunContext, **extra: str) -> dict[str, str]:
    return {"suite": plan.suite.name, **ctx.tracker.base_tags(), **extra}


def _log_dataset(record_name: str, plan: Plan, context: str) -> None:
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    rec = plan.records[record_name]
    source = HTTPDatasetSource(rec.card.get("homepage") or f"bench://{rec.name}")
    mlflow.log_input(MetaDataset(source, name=rec.name, digest=rec.fingerprint[:16]),
                     context=context)


def _pretrained(job: PretrainJob, plan: Plan, ctx: RunContext) -> Path:
    path = ctx.paths.home / "models" / f"{job.config_hash}.safetensors"
    if path.is_file():
        log.info("pretrained '%s' found in the cache (%s)", job.source, path.name)
        return path
    ctx.tracker.fail_stale(job.config_hash)
    data = load_device_data(plan.records[job.source], job.settings.image_size, ctx.device)
    split = single_split(data.labels_np, plan.suite.seed)
    arch = plan.suite.architecture
    model = build_model(arch.name, data.n_classes, arch.drop_rate)
    tags = _suite_tags(plan, ctx, kind="pretrain", level="pretrain", source=job.source,
                       config_hash=job.config_hash)
    with mlflow.start_run(experiment_id=ctx.tracker.experiment_id, run_name=f"pretrain: {job.source}",
                          tags=tags, log_system_metrics=ctx.system_metrics):
        mlflow.log_params(flatten({"arch": arch.model_dump(), "train": job.settings.model_dump(mode="json"),
                                   "source": job.source, "seed": plan.suite.seed}))
        mlflow.log_text(ctx.suite_yaml, "config/suite.yaml")
        _log_dataset(job.source, plan, "pretrain")
        with ctx.progress(f"pretrain {job.source}", job.settings.epochs) as advance:
            result = fit(model, data, split, job.settings, ctx.device, plan.suite.seed,
                         on_epoch=lambda e, m: mlflow.log_metrics(m, step=e), progress=advance)
        mlflow.log_metrics({f"test_{k}": v for k, v in result.test.items()})
        mlflow.log_metrics({"best_epoch": result.best_epoch,
                            "train_images_per_s": result.train_images_per_s})
        _save_weights(result.best_state, path, {"source": job.source, "arch": arch.name,
                                                "classes": ",".join(data.classes)})
        mlflow.log_artifact(str(path), "weights")
    return path


def _save_weights(state: dict[str, torch.Tensor], path: Path, meta: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _init_model(job: PairJob, plan: Plan, data: DeviceData, weights: dict[str, Path]):
    arch = plan.suite.architecture
    if job.init.startswith("weights:"):
        return model_from_weights(job.init.removeprefix("weights:"), arch.name, data.n_classes,
                                  arch.drop_rate)
    model = build_model(arch.name, data.n_classes, arch.drop_rate)
    if job.init.startswith("pretrain:"):
        load_backbone(model, load_file(str(weights[job.init.removeprefix("pretrain:")])))
    return model


def _run_pair(job: PairJob, data: DeviceData, splits: list[Split], plan: Plan, ctx: RunContext,
              weights: dict[str, Path], baselines: dict[str, list[float]]) -> PairOutcome:
    done = ctx.tracker.finished(job.config_hash)
    if done is not None:
        log.info("%s: finished earlier (run %s), skipped", job.label, done.info.run_id)
        return PairOutcome(job, _folds_of(ctx.tracker, done.info.run_id), done.info.run_id,
                           reused=True, metrics=dict(done.data.metrics))
    parent = ctx.tracker.reopenable(job.config_hash)
    tags = _suite_tags(plan, ctx, kind=job.kind, level="pair", source=job.source,
                       target=job.target, config_hash=job.config_hash,
                       **({"k": str(job.k)} if job.k is not None else {}))
    run_id = parent.info.run_id if parent else None
    with mlflow.start_run(run_id=run_id, experiment_id=ctx.tracker.experiment_id,
                          run_name=None if parent else job.label, tags=tags,
                          log_system_metrics=ctx.system_metrics) as run:
        if parent is None:
            mlflow.log_params(flatten({"arch": plan.suite.architecture.model_dump(),
                                       "train": job.settings.model_dump(mode="json"),
                                       "source": job.source, "target": job.target,
                                       "init": job.init, "k": job.k,
                                       "folds": plan.suite.folds.model_dump(),
                                       "baseline": plan.suite.baseline}))
            mlflow.log_text(ctx.suite_yaml, "config/suite.yaml")
            _log_dataset(job.target, plan, "finetune")
        else:
            log.info("%s: resuming interrupted run %s", job.label, run_id)
        folds = [_fold(job, i, split, data, plan, ctx, weights, baselines)
                 for i, split in enumerate(splits)]
        metrics = _aggregate(folds)
        mlflow.log_metrics(metrics)
        fig = curves_figure(ctx.tracker, run.info.run_id, job.label)
        mlflow.log_figure(fig, "curves.png")
        close_figure(fig)
    return PairOutcome(job, folds, run.info.run_id, metrics=metrics)


def _fold(job: PairJob, i: int, split: Split, data: DeviceData, plan: Plan, ctx: RunContext,
          weights: dict[str, Path], baselines: dict[str, list[float]]) -> FoldOutcome:
    fold_hash = job.fold_hashes[i]
    done = ctx.tracker.finished(fold_hash)
    if done is not None:
        return _fold_from_metrics(i, done.data.metrics)
    ctx.tracker.fail_stale(fold_hash)
    tags = _suite_tags(plan, ctx, kind=job.kind, level="fold", source=job.source,
                       target=job.target, fold=str(i), config_hash=fold_hash)
    with mlflow.start_run(experiment_id=ctx.tracker.experiment_id, nested=True,
                          run_name=f"{job.label} fold {i}", tags=tags):
        mlflow.log_params({"fold": i, "n_train": len(split.train), "n_val": len(split.val),
                           "n_test": len(split.test)})
        mlflow.log_text(ctx.suite_yaml, "config/suite.yaml")
        model = _init_model(job, plan, data, weights)
        frozen = freeze_all_but_last(model, job.k) if job.kind == "freeze" else []
        with ctx.progress(f"{job.label} fold {i}", job.settings.epochs) as advance:
            result = fit(model, data, split, job.settings, ctx.device, plan.suite.seed + i,
                         frozen=frozen, on_epoch=lambda e, m: mlflow.log_metrics(m, step=e),
                         progress=advance)
        metrics = {f"test_{k}": v for k, v in result.test.items()}
        metrics |= {"best_epoch": result.best_epoch, "train_images_per_s": result.train_images_per_s}
        base = baselines.get(plan.suite.baseline)
        if job.kind != "scratch" and base is not None:
            metrics["transferability"] = transferability(result.test["auc"], base[i])
        if job.kind == "freeze" and "scratch" in baselines:
            metrics["generality"] = result.test["auc"] / baselines["scratch"][i]
        mlflow.log_metrics(metrics)
    return _fold_from_metrics(i, metrics)


def _fold_from_metrics(i: int, m: dict[str, float]) -> FoldOutcome:
    return FoldOutcome(i, m["test_auc"], m["test_accuracy"], m.get("transferability"),
                       m.get("generality"))


def _folds_of(tracker: Tracker, parent_id: str) -> list[FoldOutcome]:
    children = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}' and "
        "attributes.status = 'FINISHED'")
    return sorted((_fold_from_metrics(int(r.data.tags["fold"]), r.data.metrics)
                   for r in children), key=lambda f: f.fold)


def _aggregate(folds: list[FoldOutcome]) -> dict[str, float]:
    out = {}
    for name in ("auc", "accuracy", "transferability", "generality"):
        values = [getattr(f, name) for f in folds if getattr(f, name) is not None]
        if values:
            prefix = "test_" if name in ("auc", "accuracy") else ""
            out[f"{prefix}{name}_mean"] = float(np.mean(values))
            out[f"{prefix}{name}_std"] = float(np.std(values))
    return out
