"""Publishing a suite's pretrained source model: an MLflow Model Registry entry and a
self-contained timm / Hugging Face folder with a model card, optionally pushed to the Hub.

The folder (``config.json``, ``model.safetensors``, ``README.md``) loads offline with
``timm.create_model("local-dir:PATH", pretrained=True)``; ``config.json`` carries our section
(source dataset, suite, config hash, the weights' SHA-256 checked on every load). The registry
entry holds the PyTorch flavour (the timm model, restored on ``mlflow.pytorch.load_model``) and
the same folder as extra files, which is what ``models:/NAME@ALIAS`` loads, as weights only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from bench_core.models import load_source_model
from bench_core.sources import SourceModel
from bench_core.tracking import Tracker, open_tracker
from benchmark.analysis.results import results_table
from benchmark.engine.model_files import save_timm_files
from benchmark.publishing.card import model_card
from benchmark.publishing.hub import check_push, push
from benchmark.publishing.model_registry import check_alias, list_models, register
from benchmark.publishing.trained import PublishError, Trained, find_pretraining
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from probes.tracking import load_probe_matrices
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.files import atomic_folder
from registry.paths import BenchPaths


@dataclass(frozen=True, kw_only=True)
class Published:
    name: str
    version: str
    alias: str
    folder: Path
    run_id: str
    source: str
    suite: str
    config_hash: str
    results: list[dict[str, Any]] = field(default_factory=list)
    pushed: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "alias": self.alias,
                "uri": f"models:/{self.name}@{self.alias}", "folder": str(self.folder),
                "local_dir": f"local-dir:{self.folder}", "run_id": self.run_id,
                "source": self.source, "suite": self.suite, "config_hash": self.config_hash,
                "results": self.results, "pushed": self.pushed}


def source_results(tracker: Tracker, trained: Trained) -> tuple[list[dict], dict[str, dict]]:
    """This source's benchmark rows on every target, and the probes' distances from it."""
    try:
        table = results_table(tracker, trained.suite)
    except BenchError:
        return [], {}
    mine = table[(table["source"] == trained.source) & (table["kind"] == "transfer")]
    if trained.target:  # a fine-tuned model: its own pair only
        mine = mine[mine["target"] == trained.target]
    rows = [{k: (None if v != v else v) for k, v in r.items() if k != "run_id"}
            for r in mine.to_dict(orient="records")]
    distances = {}
    for probe, (names, matrix) in load_probe_matrices(tracker, trained.suite).items():
        if trained.source in names:
            i = names.index(trained.source)
            distances[probe] = {n: float(matrix[i, j]) for j, n in enumerate(names)
                                if n != trained.source and matrix[i, j] == matrix[i, j]}
    return rows, distances


def write_folder(model, trained: Trained, results: list[dict], distances: dict,
                 out: Path, alias: str) -> Path:
    """The timm / Hugging Face folder, written to a temporary sibling and renamed into place
    (an existing folder is replaced only once the new one is complete)."""
    with atomic_folder(out) as tmp:
        ours = {"source": trained.source, "suite": trained.suite,
                "config_hash": trained.config_hash, "run_id": trained.run_id}
        if trained.target:
            ours |= {"target": trained.target, "fold": trained.fold, "repeat": trained.repeat}
        save_timm_files(model, tmp, trained.image_size, trained.classes, ours)
        (tmp / "README.md").write_text(model_card(trained, results, distances, alias))
    return out


def publish(source: str, paths: BenchPaths, tracker: Tracker, *, suite: str,
            run_id: str | None = None, alias: str = "published", out: Path | None = None,
            push_to: str | None = None, environ: dict[str, str] | None = None) -> Published:
    """Publish the pretrained ``source`` of ``suite``: folder, (``push_to``) the Hub, then a
    registry version with ``alias``. ``--push`` is checked before anything is written; a push
    that fails leaves the folder ready to upload and registers nothing."""
    check_alias(alias)
    trained = find_pretraining(tracker, source, suite, paths, run_id)
    if trained.source != source:
        did = (f"fine-tuned from '{trained.source}' (to '{trained.target}')" if trained.target
               else f"pretrained '{trained.source}'")
        raise PublishError(f"Run {run_id} {did}, not '{source}'.",
                           f"Publish it as `bench publish {trained.source} --run {run_id}`.")
    name = trained.name
    target = out or paths.published(name)
    hub = check_push(push_to, dict(environ or {}), target) if push_to else None
    model = load_source_model(SourceModel(trained.source, trained.arch, str(trained.weights),
                                          trained.image_size)).eval()
    results, distances = source_results(tracker, trained)
    folder = write_folder(model, trained, results, distances, target, alias)
    pushed = push(folder, hub) if hub else None
    version, run = register(model, tracker, trained, folder, results, alias, pushed)
    return Published(name=name, version=version, alias=alias, folder=folder, run_id=run,
                     source=trained.source, suite=trained.suite,
                     config_hash=trained.config_hash, results=results, pushed=pushed)



def publish_model(source: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                  run_id: str | None = None, push: str | None = None, alias: str = "published",
                  out: Path | None = None, tracking_uri: str | None = None,
                  environ: dict[str, str] | None = None, catalog: Catalog | None = None
                  ) -> Published:
    """Publish a suite's pretrained ``source`` (or the pretraining run ``run_id``): an MLflow
    registry version with ``alias``, the timm folder with its model card, and with ``push``
    (``hf:ORG/REPO``) the Hugging Face Hub."""
    catalog = catalog or Catalog.load()
    name = catalog.key(source)
    if run_id:
        probe = open_tracker(paths, "transfer-bench/publish", tracking_uri)
        try:
            suite = probe.client.get_run(run_id).data.tags.get("suite", suite)
        except MlflowException:
            raise BenchError(f"No run {run_id} in {probe.uri}.",
                             "Copy the run id of a `pretrain: SOURCE` run from the MLflow "
                             "UI.") from None
    else:
        suite = resolve_suite(suite).name  # a suite file names its suite
    tracker = open_tracker(paths, f"transfer-bench/{suite}", tracking_uri)
    return publish(name, paths, tracker, suite=suite, run_id=run_id, alias=alias, out=out,
                   push_to=push, environ=environ)


def published_models(paths: BenchPaths, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """The models ``bench publish`` registered in the store (newest version of each)."""
    return list_models(open_tracker(paths, "transfer-bench/publish", tracking_uri))
