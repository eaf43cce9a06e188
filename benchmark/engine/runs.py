"""How the MLflow runs of a suite are opened and what they record: a job's run in the suite's
experiment with the process tags and a heartbeat; a pair's parent run (opened by the driver
while it builds the graph, or an interrupted one reopened) with the params that tell pairs
apart; datasets as MLflow dataset inputs (a registered dataset by its digest, a derived one
with its derivation as tags)."""

from __future__ import annotations

from typing import Any

import mlflow
import torch
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag, Param

from bench_core.devices import resolve_device
from bench_core.tracking import Tracker
from benchmark.engine.tasks import JobEnv, settings_params
from benchmark.suite.plan import PairJob, Plan
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


def open_parent(plan: Plan, pair: PairJob, env: JobEnv, tracker: Tracker) -> str:
    """The pair's parent run: an interrupted one reopened, else a new one with its params,
    config and dataset input. It stays RUNNING until the pair's job closes it."""
    tags = {**tracker.base_tags(), **env.tags(kind=pair.kind, level="pair", source=pair.source,
                                               target=pair.target, config_hash=pair.config_hash,
                                               **({"k": str(pair.k)} if pair.k is not None else {}))}
    old = tracker.reopenable(pair.config_hash)
    if old is not None:
        tracker.client.update_run(old.info.run_id, status="RUNNING")
        for key, value in tags.items():
            tracker.client.set_tag(old.info.run_id, key, value)
        return old.info.run_id
    run = tracker.client.create_run(tracker.experiment_id, run_name=pair.label, tags=tags)
    run_id = run.info.run_id
    params = pair_params(plan, pair)
    tracker.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    tracker.client.log_text(run_id, env.suite_yaml, "config/suite.yaml")
    log_dataset_input(tracker, run_id, plan.records[pair.target], "finetune")
    return run_id


def full_params(plan: Plan, pair: PairJob) -> dict[str, str]:
    """Every setting of a pair, flattened (``train.optimizer.lr``, ...): its fold runs'."""
    return settings_params(plan.suite.architecture, plan.suite.folds, plan.suite.baseline, pair)


def pair_params(plan: Plan, pair: PairJob) -> dict[str, str]:
    """A parent run's params: what tells pairs apart in MLflow's compare view (source, target,
    kind, k, arch, config hash) and any other setting that differs between the suite's pairs;
    the settings all pairs share stay on the fold runs and in the config artifact."""
    others = [full_params(plan, p) for p in plan.pairs]
    mine = full_params(plan, pair)
    keys = sorted({k for params in others for k in params})
    differ = [k for k in keys if len({params.get(k) for params in others}) > 1
              and k not in ("source", "target", "k", "init") and k in mine]
    out = {"source": pair.source, "target": pair.target, "kind": pair.kind,
           "arch": plan.suite.architecture.name, "config_hash": pair.config_hash}
    if pair.k is not None:
        out["k"] = str(pair.k)
    return out | {k: mine[k] for k in differ}
