"""What can be published: a finished pretraining of a suite's source, or a fine-tuned fold
model a suite kept (``keep_models``), found in the store with its weights on this machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlflow.artifacts

from bench_core.tracking import Tracker
from bench_core.weights import CONFIG, WEIGHTS, WeightsError, from_folder
from benchmark.engine.model_files import KEPT_DIR, KEPT_TAG
from benchmark.engine.weights_cache import fetch_weights
from registry.errors import BenchError
from registry.files import atomic_folder
from registry.paths import BenchPaths
from registry.store import RegistryStore


class PublishError(BenchError):
    """A model that cannot be published (not trained, no weights, no network for --push)."""


@dataclass(frozen=True, kw_only=True)
class Trained:
    """A finished pretraining: its run, weights file, dataset card and classes."""

    source: str
    suite: str
    run_id: str
    config_hash: str
    weights: Path
    arch: str
    image_size: tuple[int, int]
    card: dict
    classes: tuple[str, ...]
    train: dict
    # a fine-tuned fold model (a fold run of a suite with keep_models on): its target and
    # the target's dataset card (classes are then the target's), fold, repeat and test AUC
    target: str | None = None
    target_card: dict = field(default_factory=dict)
    fold: int | None = None
    repeat: int | None = None
    test_auc: float | None = None

    @property
    def name(self) -> str:
        return model_name(self.suite, self.source, self.target)

    @property
    def run_key(self) -> str:
        """The version tag / param naming the run the model comes from."""
        return "fold_run_id" if self.target else "pretrain_run_id"


def model_name(suite: str, source: str, target: str | None = None) -> str:
    return f"tb-{suite}-{source}" + (f"-to-{target}" if target else "")


def find_pretraining(tracker: Tracker, source: str, suite: str, paths: BenchPaths,
                     run_id: str | None) -> Trained:
    """The finished pretraining of ``source`` in ``suite`` (or the run ``run_id``), with its
    weights on this machine (fetched from the run when only the store has them)."""
    run = tracker.client.get_run(run_id) if run_id else _latest_pretrain(tracker, source, suite)
    tags = run.data.tags
    if tags.get("level") == "fold" and run.info.status == "FINISHED":
        return find_fold_model(tracker, run, suite, paths)
    if tags.get("level") != "pretrain" or run.info.status != "FINISHED":
        raise PublishError(f"Run {run.info.run_id} is a {tags.get('level', 'foreign')} run "
                           f"({run.info.status}); only finished pretraining runs and finished "
                           "fine-tuning fold runs with a kept model can be published.",
                           "Give a `pretrain: SOURCE` run or a fold run, or the source and "
                           "--suite.")
    path = paths.pretrained_weights(tags["config_hash"])
    if not path.is_file() and not fetch_weights(tracker, tags["config_hash"], path):
        raise PublishError(f"The weights of run {run.info.run_id} are neither in {path} nor in "
                           "its artifacts.", f"Run `bench run --suite {suite}` again.")
    record = RegistryStore(paths.registry_db).get(tags["source"])
    params = run.data.params
    size = tuple(int(v) for v in params["train.image_size"].strip("[]()").split(","))
    return Trained(source=tags["source"], suite=tags.get("suite", suite),
                   run_id=run.info.run_id, config_hash=tags["config_hash"], weights=path,
                   arch=params["arch.name"], image_size=size,
                   card=record.card if record else {},
                   classes=tuple(record.classes) if record else (),
                   train=_train_params(params))


def _train_params(params: dict[str, str]) -> dict[str, str]:
    """The run's training settings (params ``train.*``), without the prefix."""
    return {k.removeprefix("train."): v for k, v in params.items() if k.startswith("train.")}

def find_fold_model(tracker: Tracker, run, suite: str, paths: BenchPaths) -> Trained:
    """The fine-tuned model a finished fold run kept (``keep_models: true``), downloaded once
    into ``BENCH_HOME/kept-models/RUN_ID`` and checked against the SHA-256 it records."""
    tags, run_id = run.data.tags, run.info.run_id
    pair = f"{tags.get('source')} -> {tags.get('target')}"
    if tags.get(KEPT_TAG) != "1":
        raise PublishError(
            f"Fold run {run_id} ({pair}, fold {tags.get('fold')}) kept no fine-tuned model: "
            "fold models are kept only when the suite's fine-tuning settings say "
            "`keep_models: true` (finetune_defaults, or targets.TARGET.finetune). The setting "
            "changes no result, so it is not in the config hash and a fold that finished "
            "without it is not redone: this run cannot be published.",
            "Set `keep_models: true` and run the suite into another BENCH_HOME (or another "
            "tracking store), then publish one of its fold runs.")
    folder = paths.kept_model(run_id)
    if not folder.is_dir():
        _download_kept(tracker, run_id, folder)
    try:
        resolved = from_folder(folder, f"run {run_id}")
    except WeightsError as err:
        raise PublishError(f"The kept model of fold run {run_id} is damaged: {err.args[0]}",
                           f"Remove {folder} and publish again.") from None
    store = RegistryStore(paths.registry_db)
    src, tgt = store.get(tags["source"]), store.get(tags["target"])
    params = run.data.params
    return Trained(source=tags["source"], suite=tags.get("suite", suite), run_id=run_id,
                   config_hash=tags["config_hash"], weights=resolved.path,
                   arch=params["arch.name"], image_size=tuple(resolved.input_size),
                   card=src.card if src else {}, classes=resolved.label_names,
                   train=_train_params(params), target=tags["target"],
                   target_card=tgt.card if tgt else {}, fold=int(tags.get("fold", 0)),
                   repeat=int(tags.get("repeat", 0)),
                   test_auc=run.data.metrics.get("test_auc"))


def _download_kept(tracker: Tracker, run_id: str, folder: Path) -> None:
    with atomic_folder(folder, keep_existing=True) as tmp:
        got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=KEPT_DIR,
                                                       dst_path=str(tmp),
                                                       tracking_uri=tracker.uri))
        for f in (CONFIG, WEIGHTS):
            (got / f).replace(tmp / f)
        got.rmdir()


def _latest_pretrain(tracker: Tracker, source: str, suite: str):
    runs = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.level = 'pretrain' and tags.source = '{source}' and "
        "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise PublishError(f"Suite '{suite}' has no finished pretraining of '{source}' in "
                           f"{tracker.uri}.", f"Run `bench run --suite {suite}` first (sources "
                           "with given weights, such as imagenet, are not pretrained here).")
    return runs[0]

