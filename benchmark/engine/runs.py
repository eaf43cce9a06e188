"""How a job's MLflow run is opened and what it records as inputs: the run in the suite's
experiment with the process tags and a heartbeat, datasets as MLflow dataset inputs (a
registered dataset by its digest, a derived one with its derivation as tags)."""

from __future__ import annotations

from typing import Any

import mlflow
import torch
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag

from bench_core.devices import resolve_device
from bench_core.tracking import Tracker
from benchmark.engine.tasks import JobEnv
from registry.store import DatasetRecord


def job_device(env: JobEnv) -> torch.device:
    """The device jobs of this run train on (``auto``: CUDA when there is one)."""
    return resolve_device(env.device)


def start_run(tracker: Tracker, env: JobEnv, **kwargs: Any):
    """``mlflow.start_run`` in the suite's experiment with the process tags, and a heartbeat
    that keeps the run marked alive while it runs."""
    kwargs["tags"] = {**tracker.base_tags(), **kwargs.get("tags", {})}
    run = mlflow.start_run(experiment_id=tracker.experiment_id,
                           log_system_metrics=env.system_metrics, **kwargs)
    return run, tracker.heartbeat(lambda: [run.info.run_id])


def log_dataset_input(tracker: Tracker, run_id: str, record: DatasetRecord, context: str
                      ) -> None:
    """The dataset as an MLflow input of the run (its card's homepage and its digest)."""
    log_input(tracker, run_id, record.card.get("homepage") or f"bench://{record.name}",
              record.name, record.fingerprint[:16], context)


def log_input(tracker: Tracker, run_id: str, uri: str, name: str, digest: str, context: str,
              tags: dict[str, str] | None = None) -> None:
    """An MLflow dataset input of the run: ``name`` at ``uri`` with ``digest``, its context and
    any further input ``tags``."""
    dataset = MetaDataset(HTTPDatasetSource(uri), name=name, digest=digest)
    input_tags = [InputTag("mlflow.data.context", context)]
    input_tags += [InputTag(k, v) for k, v in (tags or {}).items()]
    tracker.client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), input_tags)])
