"""Testing a fine-tuned model on its target's shifted test sets (Recht et al. 2019): a transform of the
fold's test split, a dataset holding the target's own images (paired by lineage: the
counterparts of the fold's test images), or another dataset whole. Each shifted set is recorded
as an input of the fold run."""

from __future__ import annotations

import mlflow
import numpy as np
import torch
import yaml

from bench_core.data import DeviceData
from bench_core.tracking import Tracker
from benchmark.engine.runs import log_dataset_input, log_input
from benchmark.engine.tasks import FoldTask, JobEnv
from benchmark.engine.train import evaluate_on
from benchmark.suite.lineage import paired
from benchmark.suite.spec import ShiftSpec
from benchmark.transforms import pixels_fingerprint, transform_derivation, transform_images


def shift_metrics(env: JobEnv, task: FoldTask, tracker: Tracker, model, data, split,
                  device) -> dict[str, float]:
    """The fine-tuned model's AUC and accuracy on each shifted test set of the target, as
    ``shift_<name>_auc`` / ``shift_<name>_accuracy``, and the images behind them
    (``shift_<name>_n``; ``shift_<name>_n_orig``: the fold's test split). Each set is an input
    of the run: a dataset by its digest, a transform as a derived dataset (its derivation in
    the input's tags and ``shifts/<name>.yaml``, the digest of its pixels)."""
    out, run_id = {}, mlflow.active_run().info.run_id
    for spec in task.pair.shifts:
        shifted, idx = _shifted_set(env, task, spec, data, split, device)
        if spec.dataset:
            log_dataset_input(tracker, run_id, task.shift_records[spec.dataset],
                              f"shift:{spec.label}")
        else:
            _log_transform_input(tracker, run_id, spec, task.record.name, shifted)
        scores = evaluate_on(model, shifted, idx, task.pair.settings, device)
        out |= {spec.metric_key(k): v for k, v in scores.items() if k != "loss"}
        out |= {spec.metric_key("n"): float(len(idx)),
                spec.metric_key("n_orig"): float(len(split.test))}
    return out


def _log_transform_input(tracker: Tracker, run_id: str, spec: ShiftSpec, target: str,
                         shifted: DeviceData) -> None:
    """A transform shift recorded like a derived dataset: an MLflow dataset input named
    ``<target>+<label>`` (context ``shift:<label>``) whose digest is the sha256 of its pixels
    and labels, its derivation as input tags, the derivation card as an artifact."""
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


def _shifted_set(env: JobEnv, task: FoldTask, spec: ShiftSpec, data: DeviceData, split,
                 device) -> tuple[DeviceData, np.ndarray]:
    """The shifted images and the indices to test on: the transformed test split; a dataset
    holding the target's own images (:func:`benchmark.suite.lineage.paired`: derived from the
    target, its parent, a sibling) at the counterparts of the test split's indices; any other
    dataset whole."""
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
