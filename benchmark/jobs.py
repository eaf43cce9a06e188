"""The jobs of a suite, as plain picklable tasks that run in any process of any machine.

Every executor runs the same functions here: :func:`run_task` takes a task, the results of the
tasks it depends on, and the :class:`JobEnv` (BENCH_HOME, tracking target, session, device), and
logs to MLflow itself, so results are the same whichever worker ran them.

- :class:`PretrainTask` trains a source once; its weights are cached by config hash in
  ``BENCH_HOME/models/<hash>.safetensors`` (written atomically). Result: the weights path.
- :class:`FoldTask` fine-tunes (or trains from scratch) on one fold, as a nested run below the
  pair's parent run. Result: a :class:`FoldOutcome`.
- :class:`PairTask` (cheap, run by the driver) closes a pair once its folds and its baseline's
  folds are done: Eq. 1 transferability and seed 000's generality per fold, the mean and spread
  on the parent run, the training-curve figure. Result: a :class:`PairOutcome`.
- :class:`ProbeTask` computes one probe of the suite and logs it. Result: its run id.

A task that finds its FINISHED run (same config hash) returns it without work; one that finds
a live run of the same job in another process waits for it; an abandoned run is marked FAILED
and the job redone (:mod:`bench_core.tracking`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch

from bench_core.data import DeviceDataCache
from bench_core.sources import SourceModel
from bench_core.tracking import ResumePolicy, Tracker, TrackingTarget, flatten
from benchmark.config import Architecture, Folds, ProbeSpec
from benchmark.plan import PairJob, PretrainJob, target_subset
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress
from registry.store import DatasetRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobEnv:
    """What every task needs besides its own spec, as plain values."""

    home: str
    tracking: TrackingTarget
    session: str
    device: str
    suite: str
    suite_yaml: str
    seed: int
    arch: Architecture
    folds: Folds
    baseline: str
    policy: ResumePolicy = ResumePolicy()
    system_metrics: bool = True
    threads: int | None = None  # torch threads per job (None: torch's default)
    data: DeviceDataCache = field(default_factory=DeviceDataCache, compare=False, repr=False)

    def tags(self, **extra: str) -> dict[str, str]:
        return {"suite": self.suite, **extra}


@dataclass(frozen=True)
class FoldOutcome:
    fold: int
    auc: float
    accuracy: float
    run_id: str = ""
    transferability: float | None = None
    generality: float | None = None
    repeat: int = 0
    shift: dict[str, float] = field(default_factory=dict, compare=False)  # shift_<label>_<m>


@dataclass(frozen=True)
class PairOutcome:
    job: PairJob
    folds: tuple[FoldOutcome, ...]
    run_id: str
    reused: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


def weights_path(home: Path, config_hash: str) -> Path:
    """Where a pretraining's weights are cached (by its config hash)."""
    return home / "models" / f"{config_hash}.safetensors"


@dataclass(frozen=True)
class PretrainTask:
    job: PretrainJob
    record: DatasetRecord


@dataclass(frozen=True)
class FoldTask:
    pair: PairJob
    fold: int  # the slot: fold + repeat * n_folds (PairJob.slot)
    record: DatasetRecord
    parent_run_id: str
    source_weights: str | None = None  # the key of the PretrainTask it needs, when any
    shift_records: dict[str, DatasetRecord] = field(default_factory=dict)  # shifted datasets

    @property
    def config_hash(self) -> str:
        return self.pair.fold_hashes[self.fold]


@dataclass(frozen=True)
class PairTask:
    pair: PairJob
    parent_run_id: str
    fold_keys: tuple[str, ...]
    baseline_keys: tuple[str, ...] = ()
    scratch_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeTask:
    spec: ProbeSpec
    records: tuple[DatasetRecord, ...]
    config_hash: str
    source_models: tuple[SourceModel, ...] = ()


def run_task(env: JobEnv, task: Any, deps: dict[str, Any],
             progress: ProgressFactory = no_progress) -> Any:
    """Run one task in this process (stdout goes to stderr: MLflow prints run links there,
    and stdout belongs to the driver's --json)."""
    from bench_core.logs import quiet_libraries

    quiet_libraries(logging.getLogger().level <= logging.DEBUG)
    if env.threads:
        torch.set_num_threads(env.threads)
    runners = {PretrainTask: _pretrain, FoldTask: _fold, PairTask: _pair, ProbeTask: _probe}
    with contextlib.redirect_stdout(sys.stderr):
        tracker = Tracker(env.tracking, env.session, env.policy)
        return runners[type(task)](env, task, deps, tracker, progress)


def _device(env: JobEnv):
    from bench_core.devices import resolve_device

    return resolve_device(env.device)


def log_dataset_input(tracker: Tracker, run_id: str, record: DatasetRecord, context: str
                      ) -> None:
    """The dataset as an MLflow input of the run (its card's homepage and its digest)."""
    log_input(tracker, run_id, record.card.get("homepage") or f"bench://{record.name}",
              record.name, record.fingerprint[:16], context)


def log_input(tracker: Tracker, run_id: str, uri: str, name: str, digest: str, context: str,
              tags: dict[str, str] | None = None) -> None:
    """An MLflow dataset input of the run: ``name`` at ``uri`` with ``digest``, its context and
    any further input ``tags``."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    dataset = MetaDataset(HTTPDatasetSource(uri), name=name, digest=digest)
    input_tags = [InputTag("mlflow.data.context", context)]
    input_tags += [InputTag(k, v) for k, v in (tags or {}).items()]
    tracker.client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), input_tags)])


def _start(tracker: Tracker, env: JobEnv, **kwargs: Any):
    """``mlflow.start_run`` in the suite's experiment with the process tags, and a heartbeat
    that keeps the run marked alive while it runs."""
    kwargs["tags"] = {**tracker.base_tags(), **kwargs.get("tags", {})}
    run = mlflow.start_run(experiment_id=tracker.experiment_id,
                           log_system_metrics=env.system_metrics, **kwargs)
    return run, tracker.heartbeat(lambda: [run.info.run_id])


def _pretrain(env: JobEnv, task: PretrainTask, deps: dict, tracker: Tracker,
              progress: ProgressFactory) -> str:
    from bench_core.models import build_model
    from benchmark.splits import single_split
    from benchmark.train import fit

    job = task.job
    path = weights_path(Path(env.home), job.config_hash)
    if path.is_file():
        return str(path)
    if fetch_weights(tracker, job.config_hash, path):  # pretrained elsewhere (now or earlier)
        return str(path)
    tracker.fail_stale(job.config_hash)
    device = _device(env)
    data = env.data.get(task.record, job.settings.image_size, device)
    split = single_split(data.labels_np, env.seed)
    torch.manual_seed(env.seed)  # the initial weights depend on the job alone, not the process
    model = build_model(env.arch.name, data.n_classes, env.arch.drop_rate)
    tags = env.tags(kind="pretrain", level="pretrain", source=job.source,
                    config_hash=job.config_hash)
    run, beating = _start(tracker, env, run_name=f"pretrain: {job.source}", tags=tags)
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
        _save_weights(result.best_state, path, {"source": job.source, "arch": env.arch.name,
                                                "classes": ",".join(data.classes)})
        mlflow.log_artifact(str(path), "weights")
    log.info("pretrained %s: test AUC %.4f (%.0f images/s)", job.source, result.test["auc"],
             result.train_images_per_s)
    return str(path)


def fetch_weights(tracker: Tracker, config_hash: str, path: Path) -> bool:
    """Bring the weights of a pretraining finished by another process or machine (waiting
    while one runs it now) from its run's artifacts to ``path``; False if there is none."""
    import tempfile

    import mlflow.artifacts

    run = tracker.finished(config_hash) or tracker.wait_for_others(config_hash)
    if run is None:
        return False
    if not path.is_file():
        with tempfile.TemporaryDirectory(dir=_mkdir(path.parent)) as tmp:
            got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                      artifact_path=f"weights/{path.name}",
                                                      dst_path=tmp, tracking_uri=tracker.uri)
            os.replace(got, path)  # same folder: atomic
    log.info("weights of %s taken from run %s", config_hash, run.info.run_id)
    return True


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save_weights(state: dict, path: Path, meta: dict[str, str]) -> None:
    from safetensors.torch import save_file

    from registry.files import atomic_write

    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                             str(tmp), metadata=meta))


def _init_model(env: JobEnv, task: FoldTask, n_classes: int, deps: dict, tracker: Tracker):
    from safetensors.torch import load_file

    from bench_core.models import build_model, load_backbone, model_from_weights

    init = task.pair.init
    if init.startswith("weights:"):
        return model_from_weights(init.removeprefix("weights:"), env.arch.name, n_classes,
                                  env.arch.drop_rate, cache=Path(env.home) / "registry-models",
                                  tracking_uri=env.tracking.uri)
    model = build_model(env.arch.name, n_classes, env.arch.drop_rate)
    if task.source_weights is not None:
        path = Path(deps[task.source_weights])
        if not path.is_file():  # pretrained on another machine: take it from its run
            fetch_weights(tracker, path.stem, path)
        load_backbone(model, load_file(str(path)))
    return model


def _fold(env: JobEnv, task: FoldTask, deps: dict, tracker: Tracker,
          progress: ProgressFactory) -> FoldOutcome:
    from bench_core.models import freeze_all_but_last
    from benchmark.train import fit

    job = task.pair
    i, r = job.slot(task.fold)
    done = tracker.finished(task.config_hash) or tracker.wait_for_others(task.config_hash)
    if done is not None:
        return fold_outcome(i, done.data.metrics, done.info.run_id, r)
    tracker.fail_stale(task.config_hash)
    device = _device(env)
    data = env.data.get(task.record, job.settings.image_size, device)
    split = _split(env, task, data.labels_np, i, r)
    seed = env.seed + i + REPEAT_SEED_STRIDE * r
    name = fold_name(job, i, r)
    tags = env.tags(kind=job.kind, level="fold", source=job.source, target=job.target,
                    fold=str(i), repeat=str(r), config_hash=task.config_hash)
    run, beating = _start(tracker, env, run_name=f"{job.label} {name}", tags=tags,
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
        metrics |= _shift_metrics(env, task, tracker, model, data, split, device)
        mlflow.log_metrics(metrics)
        if job.settings.keep_models:
            _keep_model(env, task, model, data.classes, run.info.run_id)
    log.info("%s %s: test AUC %.4f (%.0f images/s)", job.label, name, result.test["auc"],
             result.train_images_per_s)
    return fold_outcome(i, metrics, run.info.run_id, r)


def _keep_model(env: JobEnv, task: FoldTask, model, classes, run_id: str) -> None:
    """``keep_models``: the fine-tuned model (its best epoch, as fit leaves it) as the fold
    run's artifacts ``model/model.safetensors`` and ``model/config.json`` (the layout of a
    published folder; label names: the target's classes), and the run tagged
    ``kept_model=1``, for ``bench publish SOURCE --run RUN_ID``."""
    import tempfile

    from benchmark.publish import KEPT_DIR, KEPT_TAG, save_timm_files

    job = task.pair
    i, r = job.slot(task.fold)
    ours = {"source": job.source, "target": job.target, "suite": env.suite,
            "config_hash": task.config_hash, "run_id": run_id, "fold": i, "repeat": r,
            "kind": job.kind}
    with tempfile.TemporaryDirectory() as tmp:
        save_timm_files(model, Path(tmp), job.settings.image_size, classes, ours)
        mlflow.log_artifacts(tmp, KEPT_DIR)
    mlflow.set_tag(KEPT_TAG, "1")


def settings_params(arch: Architecture, folds: Folds, baseline: str, pair: PairJob
                    ) -> dict[str, str]:
    """Every setting of a pair, flattened as MLflow params (``train.optimizer.lr``, ...)."""
    return flatten({"arch": arch.model_dump(), "train": pair.settings.model_dump(mode="json"),
                    "source": pair.source, "target": pair.target, "init": pair.init,
                    "k": pair.k, "folds": folds.model_dump(), "repeats": pair.repeats,
                    "baseline": baseline})


REPEAT_SEED_STRIDE = 1000  # repeat r of fold i trains with seed + i + 1000 r


def _shift_metrics(env: JobEnv, task: FoldTask, tracker: Tracker, model, data, split,
                   device) -> dict[str, float]:
    """The fine-tuned model's AUC and accuracy on each shifted test set of the target, as
    ``shift_<name>_auc`` / ``shift_<name>_accuracy``, and the images behind them
    (``shift_<name>_n``; ``shift_<name>_n_orig``: the fold's test split). Each set is an input
    of the run: a dataset by its digest, a transform as a derived dataset (its derivation in
    the input's tags and ``shifts/<name>.yaml``, the digest of its pixels)."""
    from benchmark.shifts import metric_key
    from benchmark.train import evaluate_on

    out, run_id = {}, mlflow.active_run().info.run_id
    for spec in task.pair.shifts:
        shifted, idx = _shifted_set(env, task, spec, data, split, device)
        if spec.dataset:
            log_dataset_input(tracker, run_id, task.shift_records[spec.dataset],
                              f"shift:{spec.label}")
        else:
            _log_transform_input(tracker, run_id, spec, task.record.name, shifted)
        scores = evaluate_on(model, shifted, idx, task.pair.settings, device)
        out |= {metric_key(spec, k): v for k, v in scores.items() if k != "loss"}
        out |= {metric_key(spec, "n"): float(len(idx)),
                metric_key(spec, "n_orig"): float(len(split.test))}
    return out


def _log_transform_input(tracker: Tracker, run_id: str, spec, target: str, shifted) -> None:
    """A transform shift recorded like a derived dataset: an MLflow dataset input named
    ``<target>+<label>`` (context ``shift:<label>``) whose digest is the sha256 of its pixels
    and labels, its derivation as input tags, the derivation card as an artifact."""
    import yaml

    from benchmark.shifts import pixels_fingerprint, transform_derivation

    derivation = transform_derivation(spec, target).model_dump(mode="json")
    tags = {f"derived_from.{k}": str(v) for k, v in derivation.items()
            if k != "params" and v is not None}
    tags |= {f"derived_from.params.{k}": str(v) for k, v in derivation["params"].items()}
    log_input(tracker, run_id, f"bench://{target}/shift/{spec.label}", shifted.name,
              pixels_fingerprint(shifted.images, shifted.labels_np)[:16], f"shift:{spec.label}",
              tags)
    mlflow.log_text(yaml.safe_dump({"name": shifted.name, "derived_from": derivation},
                                   sort_keys=False), f"shifts/{spec.label}.yaml")
    mlflow.log_param(f"shift.{spec.label}", f"{spec.transform} level={spec.level:g} "
                     f"seed={spec.seed} of the test split")


def _shifted_set(env: JobEnv, task: FoldTask, spec, data, split, device):
    """The shifted images and the indices to test on: the transformed test split; a dataset
    holding the target's own images (:func:`benchmark.shifts.paired`: derived from the target,
    its parent, a sibling) at the counterparts of the test split's indices; any other dataset
    whole."""
    from bench_core.data import DeviceData
    from benchmark.shifts import paired, transform_images

    if spec.transform:
        test = torch.as_tensor(split.test, device=data.images.device)
        images = transform_images(data.images[test], spec)
        return DeviceData(f"{data.name}+{spec.label}", images, data.labels[test],
                          data.labels_np[split.test], data.classes), np.arange(len(split.test))
    record = task.shift_records[spec.dataset]
    other = env.data.get(record, task.pair.settings.image_size, device)
    if paired(record, task.record):  # raises when they share images and cannot be matched
        return other, split.test
    return other, np.arange(len(other.labels_np))


def _split(env: JobEnv, task: FoldTask, labels: np.ndarray, fold: int, repeat: int):
    """Fold ``fold`` of repeat ``repeat`` (repeated k-fold: repeat r splits with
    folds.seed + r), or the target's official split; within the target's subset if any."""
    from benchmark.splits import Split, fold_splits, official_split

    subset = target_subset(labels, task.pair.max_samples, env.seed)
    if env.folds.scheme == "official":
        split = official_split(np.load(task.record.file_path("split")))
        keep = np.zeros(len(labels), dtype=bool)
        keep[subset] = True
        return Split(*(part[keep[part]] for part in (split.train, split.val, split.test)))
    split = fold_splits(labels[subset], env.folds.n, env.folds.val_fraction,
                        env.folds.seed + repeat)[fold]
    return Split(subset[split.train], subset[split.val], subset[split.test])


def fold_name(job: PairJob, fold: int, repeat: int) -> str:
    return f"fold {fold}" + (f" repeat {repeat}" if job.repeats > 1 else "")


def fold_outcome(i: int, m: dict[str, float], run_id: str = "", repeat: int = 0) -> FoldOutcome:
    return FoldOutcome(i, m["test_auc"], m["test_accuracy"], run_id, m.get("transferability"),
                       m.get("generality"), repeat,
                       {k: v for k, v in m.items() if k.startswith("shift_")})


def _pair(env: JobEnv, task: PairTask, deps: dict, tracker: Tracker,
          progress: ProgressFactory) -> PairOutcome:
    """Per-fold Eq. 1 and generality against the baselines of the same folds, the pair's
    mean and spread, the curves figure; the parent run ends FINISHED."""
    from benchmark.figures import close_figure, curves_figure
    from benchmark.metrics import transferability

    job = task.pair
    base = [deps[k].auc for k in task.baseline_keys]
    scratch = [deps[k].auc for k in task.scratch_keys]
    folds = []
    for i, key in enumerate(task.fold_keys):
        f, extra = deps[key], {}
        if base:
            extra["transferability"] = transferability(f.auc, base[i])
        if job.kind == "freeze" and scratch:
            extra["generality"] = f.auc / scratch[i]
        for name, value in extra.items():
            tracker.client.log_metric(f.run_id, name, value)
        folds.append(FoldOutcome(f.fold, f.auc, f.accuracy, f.run_id, **extra, repeat=f.repeat))
    metrics = aggregate(folds) | shift_means([deps[k] for k in task.fold_keys])
    for r, values in repeat_means(folds).items():  # one point per repeat, step = repeat
        for name, value in values.items():
            tracker.client.log_metric(task.parent_run_id, f"repeat_{name}", value, step=r)
    for name, value in metrics.items():
        tracker.client.log_metric(task.parent_run_id, name, value)
    fig = curves_figure(tracker, task.parent_run_id, job.label)
    tracker.client.log_figure(task.parent_run_id, fig, "curves.png")
    close_figure(fig)
    tracker.set_terminated(task.parent_run_id, "FINISHED")
    return PairOutcome(job, tuple(folds), task.parent_run_id, metrics=metrics)


def repeat_means(folds: list[FoldOutcome]) -> dict[int, dict[str, float]]:
    """Mean over the folds of each repeat (only when there are several repeats)."""
    repeats = sorted({f.repeat for f in folds})
    if len(repeats) < 2:
        return {}
    out = {}
    for r in repeats:
        out[r] = {f"{'test_' if n == 'auc' else ''}{n}_mean": float(np.mean(v))
                  for n in ("auc", "transferability")
                  if (v := [getattr(f, n) for f in folds
                            if f.repeat == r and getattr(f, n) is not None])}
    return out


def shift_means(folds: list[FoldOutcome]) -> dict[str, float]:
    """Mean and (population) standard deviation over folds and repeats of each shifted
    score (``shift_<label>_<auc|accuracy>_mean`` / ``_std``), for the pair's parent run."""
    keys = sorted({k for f in folds for k in f.shift if k.endswith(("_auc", "_accuracy"))})
    out = {}
    for key in keys:
        values = [f.shift[key] for f in folds if key in f.shift]
        out |= {f"{key}_mean": float(np.mean(values)), f"{key}_std": float(np.std(values))}
    return out


def aggregate(folds: list[FoldOutcome]) -> dict[str, float]:
    """Mean and (population) standard deviation over folds of each fold metric."""
    out = {}
    for name in ("auc", "accuracy", "transferability", "generality"):
        values = [getattr(f, name) for f in folds if getattr(f, name) is not None]
        if values:
            prefix = "test_" if name in ("auc", "accuracy") else ""
            out[f"{prefix}{name}_mean"] = float(np.mean(values))
            out[f"{prefix}{name}_std"] = float(np.std(values))
    return out


def _probe(env: JobEnv, task: ProbeTask, deps: dict, tracker: Tracker,
           progress: ProgressFactory) -> str:
    from probes.base import ProbeContext
    from probes.logging import log_probe
    from probes.registry import PROBES

    done = tracker.finished(task.config_hash) or tracker.wait_for_others(task.config_hash)
    if done is not None:
        return done.info.run_id
    tracker.fail_stale(task.config_hash)
    for key, path in deps.items():  # networks pretrained on another machine: take them
        if key.startswith("pretrain:") and not Path(path).is_file():
            fetch_weights(tracker, key.removeprefix("pretrain:"), Path(path))
    models = {m.name: m for m in task.source_models}
    context = ProbeContext(BenchPaths(Path(env.home)), _device(env), progress, models,
                           env.tracking.uri)
    result = PROBES.get(task.spec.method)(dict(task.spec.options), context).compute(
        list(task.records))
    return log_probe(tracker, result, dict(task.spec.options),
                     env.tags(config_hash=task.config_hash))
