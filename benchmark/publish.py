"""Publishing a suite's pretrained source model: an MLflow Model Registry entry and a
self-contained timm / Hugging Face folder with a model card, optionally pushed to the Hub.

The folder (``config.json``, ``model.safetensors``, ``README.md``) loads offline with
``timm.create_model("local-dir:PATH", pretrained=True)``; ``config.json`` carries our section
(source dataset, suite, config hash, the weights' SHA-256 checked on every load). The registry
entry holds the PyTorch flavour (the timm model, restored on ``mlflow.pytorch.load_model``) and
the same folder as extra files, which is what ``models:/NAME@ALIAS`` loads, as weights only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_core.tracking import Tracker
from bench_core.weights import CONFIG, OURS, WEIGHTS
from registry.errors import BenchError
from registry.files import atomic_folder, file_digest
from registry.paths import BenchPaths

log = logging.getLogger(__name__)
REGISTRY_TAG = "transfer_bench"


class PublishError(BenchError):
    """A model that cannot be published (not trained, no weights, no network for --push)."""


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class _Trained:
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


def model_name(suite: str, source: str) -> str:
    return f"tb-{suite}-{source}"


def find_pretraining(tracker: Tracker, source: str, suite: str, paths: BenchPaths,
                     run_id: str | None) -> _Trained:
    """The finished pretraining of ``source`` in ``suite`` (or the run ``run_id``), with its
    weights on this machine (fetched from the run when only the store has them)."""
    from benchmark.jobs import fetch_weights, weights_path
    from registry.store import RegistryStore

    run = tracker.client.get_run(run_id) if run_id else _latest_pretrain(tracker, source, suite)
    tags = run.data.tags
    if tags.get("level") != "pretrain" or run.info.status != "FINISHED":
        raise PublishError(f"Run {run.info.run_id} is a {tags.get('level', 'foreign')} run "
                           f"({run.info.status}); only finished pretraining runs keep weights "
                           "(fine-tuned fold models are not stored).",
                           "Give a `pretrain: SOURCE` run, or the source and --suite.")
    path = weights_path(paths.home, tags["config_hash"])
    if not path.is_file() and not fetch_weights(tracker, tags["config_hash"], path):
        raise PublishError(f"The weights of run {run.info.run_id} are neither in {path} nor in "
                           "its artifacts.", f"Run `bench run --suite {suite}` again.")
    record = RegistryStore(paths.registry_db).get(tags["source"])
    params = run.data.params
    size = tuple(int(v) for v in params["train.image_size"].strip("[]()").split(","))
    return _Trained(tags["source"], tags.get("suite", suite), run.info.run_id,
                    tags["config_hash"], path, params["arch.name"], size,
                    record.card if record else {}, tuple(record.classes) if record else (),
                    {k.removeprefix("train."): v for k, v in params.items()
                     if k.startswith("train.")})


def _latest_pretrain(tracker: Tracker, source: str, suite: str):
    runs = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.level = 'pretrain' and tags.source = '{source}' and "
        "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise PublishError(f"Suite '{suite}' has no finished pretraining of '{source}' in "
                           f"{tracker.uri}.", f"Run `bench run --suite {suite}` first (sources "
                           "with given weights, such as imagenet, are not pretrained here).")
    return runs[0]


def source_results(tracker: Tracker, trained: _Trained) -> tuple[list[dict], dict[str, dict]]:
    """This source's benchmark rows on every target, and the probes' distances from it."""
    from benchmark.report import results_table
    from probes.logging import load_probe_matrices

    try:
        table = results_table(tracker, trained.suite)
    except BenchError:
        return [], {}
    mine = table[(table["source"] == trained.source) & (table["kind"] == "transfer")]
    rows = [{k: (None if v != v else v) for k, v in r.items() if k != "run_id"}
            for r in mine.to_dict(orient="records")]
    distances = {}
    for probe, (names, matrix) in load_probe_matrices(tracker, trained.suite).items():
        if trained.source in names:
            i = names.index(trained.source)
            distances[probe] = {n: float(matrix[i, j]) for j, n in enumerate(names)
                                if n != trained.source and matrix[i, j] == matrix[i, j]}
    return rows, distances


def write_folder(model, trained: _Trained, results: list[dict], distances: dict,
                 out: Path) -> Path:
    """The timm / Hugging Face folder, written to a temporary sibling and renamed into place
    (an existing folder is replaced only once the new one is complete)."""
    from timm.models import save_for_hf

    from bench_core.batches import IMAGENET_MEAN, IMAGENET_STD

    with atomic_folder(out) as tmp:
        h, w = trained.image_size
        save_for_hf(model, tmp, safe_serialization=True,
                    model_config={"label_names": list(trained.classes)},
                    data_config={"input_size": (3, h, w), "mean": IMAGENET_MEAN,
                                 "std": IMAGENET_STD, "crop_pct": 1.0,
                                 "interpolation": "bilinear"})
        cfg = json.loads((tmp / CONFIG).read_text())
        cfg[OURS] = {"source": trained.source, "suite": trained.suite,
                     "config_hash": trained.config_hash, "run_id": trained.run_id,
                     "weights_sha256": file_digest(tmp / WEIGHTS)}
        (tmp / CONFIG).write_text(json.dumps(cfg, indent=2))
        (tmp / "README.md").write_text(model_card(trained, cfg, results, distances))
    return out


def model_card(trained: _Trained, cfg: dict, results: list[dict], distances: dict) -> str:
    """The model card: what the model is, its data (the dataset card), how it was trained,
    how it transfers, how to load and cite it."""
    card = trained.card
    name = model_name(trained.suite, trained.source)
    lines = ["---", "library_name: timm", f"license: {_license(card)}",
             "tags: [image-classification, timm, transfer-bench]", "---", "",
             f"# {name}", "",
             f"A timm `{trained.arch}` pretrained on **{trained.source}** by the transfer-bench "
             f"suite `{trained.suite}` (config hash `{trained.config_hash}`, MLflow run "
             f"`{trained.run_id}`), published so others can start from it.", "",
             "## Source dataset", ""]
    for key in ("description", "origin", "modality", "license", "homepage"):
        if card.get(key):
            lines.append(f"- **{key}**: {card[key]}")
    lines += [f"- **classes** ({len(trained.classes)}): {', '.join(trained.classes)}", "",
              "## Training", "", f"- architecture: `{trained.arch}`, input "
              f"{trained.image_size[0]}x{trained.image_size[1]}, ImageNet mean/std",
              *[f"- {k}: {v}" for k, v in sorted(trained.train.items())], "",
              "## Transfer results (suite targets)", ""]
    if results:
        lines += ["| target | AUC mean | AUC std | transferability % (Eq. 1) mean | std |",
                  "|---|---|---|---|---|"]
        for r in results:
            lines.append(f"| {r['target']} | {_f(r['auc_mean'])} | {_f(r['auc_std'])} | "
                         f"{_f(r['transferability_mean'], 2)} | {_f(r['transferability_std'], 2)} |")
    else:
        lines.append("No fine-tuning results of this source were logged in its suite.")
    lines += ["", "## Probe distances from this source (smaller = more similar)", ""]
    for probe, row in sorted(distances.items()):
        lines.append(f"- {probe}: " + ", ".join(f"{n} {v:.4g}" for n, v in row.items()))
    if not distances:
        lines.append("No probes were logged for the suite.")
    lines += ["", "## Use", "", "```python", "import timm",
              "model = timm.create_model('local-dir:PATH/TO/THIS/FOLDER', pretrained=True)",
              "```", "", f"In transfer-bench: a suite source with `weights: models:/{name}@published` "
              "(or models:/{name}/latest) or `local-dir:PATH`, or `bench probe task2vec --option weights=local-dir:PATH`.",
              "", "## Citation", "", "Cite the source dataset:", "", "```",
              (card.get("citation") or "(no citation in the dataset card)").strip(), "```", "",
              "and the transfer-learning benchmark protocol (Cheplygina et al., \"Cats, not CAT "
              "scans: a study of dataset similarity in transfer learning for 2D medical image "
              "classification\").", ""]
    return "\n".join(lines)


def _license(card: dict) -> str:
    """The card's licence as a Hub licence id (its first word, e.g. ``cc-by-4.0``), else other."""
    import re

    first = str(card.get("license") or "other").split()[0].lower().strip(",;")
    return first if re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", first) else "other"


def check_alias(alias: str) -> None:
    """MLflow's alias rules (letters, digits, _ and -; not 'latest' nor vN), before any work."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9_\-]+", alias) or alias.lower() == "latest" \
            or re.fullmatch(r"[vV]\d+", alias):
        raise PublishError(f"--alias '{alias}' is not a registry alias: use letters, digits, _ "
                           "and -, and neither 'latest' (MLflow's own: models:/NAME/latest is "
                           "the newest version) nor vN.", "For example --alias published.")


def _f(v, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def register(model, tracker: Tracker, trained: _Trained, folder: Path, results: list[dict],
             alias: str) -> tuple[str, str]:
    """A ``publish: SOURCE`` run logging the PyTorch flavour with the folder as extra files,
    registered as a new version of the model, ``alias`` pointing at it; returns (version,
    run id)."""
    import mlflow
    import mlflow.pytorch
    import timm
    import torch

    name = model_name(trained.suite, trained.source)
    tags = {**tracker.base_tags(), "level": "publish", "suite": trained.suite,
            "source": trained.source, "config_hash": trained.config_hash}
    with contextlib.redirect_stdout(sys.stderr), \
            mlflow.start_run(experiment_id=tracker.experiment_id,
                             run_name=f"publish: {trained.source}", tags=tags) as run:
        info = mlflow.pytorch.log_model(
            model, name="model", registered_model_name=name, serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"timm=={timm.__version__}"],
            extra_files=[str(folder / f) for f in (CONFIG, WEIGHTS, "README.md")])
        mlflow.log_param("pretrain_run_id", trained.run_id)
    version = str(info.registered_model_version)
    client = tracker.client
    client.set_registered_model_tag(name, REGISTRY_TAG, "true")
    client.set_registered_model_alias(name, alias, version)
    version_tags = {"source": trained.source, "suite": trained.suite, "arch": trained.arch,
                    "config_hash": trained.config_hash, "pretrain_run_id": trained.run_id,
                    "folder": str(folder)}
    for r in results:
        version_tags[f"auc_mean.{r['target']}"] = _f(r["auc_mean"])
        version_tags[f"transferability_mean.{r['target']}"] = _f(r["transferability_mean"], 2)
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version, run.info.run_id


def push(folder: Path, repo: str, environ: dict[str, str]) -> str:
    """Upload ``folder`` to the Hugging Face Hub repo ``hf:ORG/REPO`` with the token from the
    environment (HF_TOKEN; never logged or written). Offline it fails at once, folder intact."""
    import socket

    repo_id = repo.removeprefix("hf:").removeprefix("hf-hub:")
    ready = f"The folder is ready to upload: {folder}."
    if not repo.startswith(("hf:", "hf-hub:")) or repo_id.count("/") != 1:
        raise PublishError(f"--push '{repo}' must look like hf:ORG/REPO.", ready)
    token = environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        raise PublishError("--push needs a Hugging Face token in HF_TOKEN.",
                           f"{ready} Set HF_TOKEN (a write token) and publish again.")
    try:
        socket.create_connection(("huggingface.co", 443), timeout=5).close()
    except OSError as err:
        raise PublishError(f"--push cannot reach the Hugging Face Hub ({err}).",
                           f"{ready} Upload it later with `hf upload {repo_id} {folder}` or "
                           "run bench publish again when online.") from None
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                      commit_message="Publish with transfer-bench")
    return f"hf-hub:{repo_id}"


def publish(source: str, paths: BenchPaths, tracker: Tracker, *, suite: str,
            run_id: str | None = None, alias: str = "published", out: Path | None = None,
            push_to: str | None = None, environ: dict[str, str] | None = None) -> Published:
    """Publish the pretrained ``source`` of ``suite``: folder, registry version, alias, and
    (``push_to``) the Hub. A push that fails leaves the folder and the registry entry."""
    from bench_core.models import load_source_model
    from bench_core.sources import SourceModel

    check_alias(alias)
    trained = find_pretraining(tracker, source, suite, paths, run_id)
    model = load_source_model(SourceModel(trained.source, trained.arch, str(trained.weights),
                                          trained.image_size)).eval()
    results, distances = source_results(tracker, trained)
    name = model_name(trained.suite, trained.source)
    folder = write_folder(model, trained, results, distances,
                          out or paths.home / "published" / name)
    version, run = register(model, tracker, trained, folder, results, alias)
    published = Published(name, version, alias, folder, run, trained.source, trained.suite,
                          trained.config_hash, results)
    if push_to:
        pushed = push(folder, push_to, dict(environ or {}))
        tracker.client.set_model_version_tag(name, version, "hub", pushed)
        published = Published(**{**published.__dict__, "pushed": pushed})
    return published


def list_models(tracker: Tracker) -> list[dict[str, Any]]:
    """Every model ``bench publish`` registered in this store: its newest version."""
    client = tracker.client
    out = []
    for rm in client.search_registered_models(f"tags.{REGISTRY_TAG} = 'true'"):
        versions = client.search_model_versions(f"name = '{rm.name}'")
        if not versions:
            continue
        v = max(versions, key=lambda m: int(m.version))
        aliases = [a for a, ver in (rm.aliases or {}).items() if str(ver) == str(v.version)]
        out.append({"name": rm.name, "version": v.version, "aliases": aliases,
                    "source": v.tags.get("source"), "suite": v.tags.get("suite"),
                    "arch": v.tags.get("arch"), "folder": v.tags.get("folder"),
                    "metrics": {k: float(val) for k, val in v.tags.items()
                                if k.startswith(("auc_mean.", "transferability_mean.")) and val},
                    "uri": f"models:/{rm.name}/{v.version}"})
    return sorted(out, key=lambda r: r["name"])
