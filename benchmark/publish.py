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
                     run_id: str | None) -> _Trained:
    """The finished pretraining of ``source`` in ``suite`` (or the run ``run_id``), with its
    weights on this machine (fetched from the run when only the store has them)."""
    from benchmark.jobs import fetch_weights, weights_path
    from registry.store import RegistryStore

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


KEPT_TAG = "kept_model"  # "1" on a fold run whose fine-tuned model is in its artifacts
KEPT_DIR = "model"  # where: model/config.json, model/model.safetensors


def find_fold_model(tracker: Tracker, run, suite: str, paths: BenchPaths) -> _Trained:
    """The fine-tuned model a finished fold run kept (``keep_models: true``), downloaded once
    into ``BENCH_HOME/kept-models/RUN_ID`` and checked against the SHA-256 it records."""
    from bench_core.weights import WeightsError, from_folder
    from registry.store import RegistryStore

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
    folder = paths.home / "kept-models" / run_id
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
    return _Trained(tags["source"], tags.get("suite", suite), run_id, tags["config_hash"],
                    resolved.path, params["arch.name"], tuple(resolved.input_size),
                    src.card if src else {}, resolved.label_names,
                    {k.removeprefix("train."): v for k, v in params.items()
                     if k.startswith("train.")},
                    tags["target"], tgt.card if tgt else {}, int(tags.get("fold", 0)),
                    int(tags.get("repeat", 0)), run.data.metrics.get("test_auc"))


def _download_kept(tracker: Tracker, run_id: str, folder: Path) -> None:
    import mlflow.artifacts

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


def source_results(tracker: Tracker, trained: _Trained) -> tuple[list[dict], dict[str, dict]]:
    """This source's benchmark rows on every target, and the probes' distances from it."""
    from benchmark.report import results_table
    from probes.logging import load_probe_matrices

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


def write_folder(model, trained: _Trained, results: list[dict], distances: dict,
                 out: Path, alias: str) -> Path:
    """The timm / Hugging Face folder, written to a temporary sibling and renamed into place
    (an existing folder is replaced only once the new one is complete)."""
    with atomic_folder(out) as tmp:
        ours = {"source": trained.source, "suite": trained.suite,
                "config_hash": trained.config_hash, "run_id": trained.run_id}
        if trained.target:
            ours |= {"target": trained.target, "fold": trained.fold, "repeat": trained.repeat}
        cfg = save_timm_files(model, tmp, trained.image_size, trained.classes, ours)
        (tmp / "README.md").write_text(model_card(trained, cfg, results, distances, alias))
    return out


def save_timm_files(model, folder: Path, image_size: tuple[int, int],
                    classes: tuple[str, ...] | list[str], ours: dict[str, Any]) -> dict:
    """``model.safetensors`` and timm's ``config.json`` (label names, input size, ImageNet
    mean/std) in ``folder``, with our section ``ours`` and the weights' SHA-256; returns the
    config. Used for published folders and for the models fold runs keep."""
    from timm.models import save_for_hf

    from bench_core.batches import IMAGENET_MEAN, IMAGENET_STD

    h, w = image_size
    save_for_hf(model, folder, safe_serialization=True,
                model_config={"label_names": list(classes)},
                data_config={"input_size": (3, h, w), "mean": IMAGENET_MEAN,
                             "std": IMAGENET_STD, "crop_pct": 1.0, "interpolation": "bilinear"})
    cfg = json.loads((folder / CONFIG).read_text())
    cfg[OURS] = {**ours, "weights_sha256": file_digest(folder / WEIGHTS)}
    (folder / CONFIG).write_text(json.dumps(cfg, indent=2))
    return cfg


def model_card(trained: _Trained, cfg: dict, results: list[dict], distances: dict,
               alias: str) -> str:
    """The model card: what the model is, its data (the dataset card), how it was trained,
    how it transfers, how to load (registry name and ``alias``) and cite it."""
    card = trained.target_card if trained.target else trained.card
    name = trained.name
    lines = ["---", "library_name: timm", f"license: {_license(card)}",
             "tags: [image-classification, timm, transfer-bench]", "---", "", f"# {name}", ""]
    if trained.target:
        auc = "" if trained.test_auc is None else f", test AUC **{trained.test_auc:.4f}**"
        lines += [f"A timm `{trained.arch}` **fine-tuned** from **{trained.source}** to "
                  f"**{trained.target}** ({trained.source} -> {trained.target}) by the "
                  f"transfer-bench suite `{trained.suite}`: fold {trained.fold}, repeat "
                  f"{trained.repeat}{auc} on the fold's held-out test split (config hash "
                  f"`{trained.config_hash}`, MLflow fold run `{trained.run_id}`), published so "
                  "others can use or start from it.", "", "## Target dataset", ""]
    else:
        lines += [f"A timm `{trained.arch}` pretrained on **{trained.source}** by the "
                  f"transfer-bench suite `{trained.suite}` (config hash "
                  f"`{trained.config_hash}`, MLflow run `{trained.run_id}`), published so "
                  "others can start from it.", "", "## Source dataset", ""]
    for key in ("description", "origin", "modality", "license", "homepage"):
        if card.get(key):
            lines.append(f"- **{key}**: {card[key]}")
    lines += [f"- **classes** ({len(trained.classes)}): {', '.join(trained.classes)}", "",
              "## Training", "", f"- architecture: `{trained.arch}`, input "
              f"{trained.image_size[0]}x{trained.image_size[1]}, ImageNet mean/std",
              *[f"- {k}: {v}" for k, v in sorted(trained.train.items())], "",
              "## Transfer results " + ("(this pair, over all its folds)" if trained.target
                                        else "(suite targets)"), ""]
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
              "```", "", "In transfer-bench, as a suite source (`weights:`), a Task2Vec probe "
              "network (`bench probe task2vec --option weights=...`) or an estimator probe's "
              f"model (`--option models=[...]`): `models:/{name}@{alias}` (this version in the "
              f"MLflow Model Registry), `models:/{name}/latest` (its newest version) or "
              "`local-dir:PATH/TO/THIS/FOLDER`.",
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
             alias: str, pushed: str | None = None) -> tuple[str, str]:
    """A ``publish: SOURCE`` run logging the PyTorch flavour with the folder as extra files,
    registered as a new version of the model, ``alias`` pointing at it (tagged ``hub`` with
    where it was pushed); returns (version, run id)."""
    import mlflow
    import mlflow.pytorch
    import timm
    import torch

    name = trained.name
    tags = {**tracker.base_tags(), "level": "publish", "suite": trained.suite,
            "source": trained.source, "config_hash": trained.config_hash,
            **({"target": trained.target} if trained.target else {})}
    with contextlib.redirect_stdout(sys.stderr), \
            mlflow.start_run(experiment_id=tracker.experiment_id,
                             run_name=f"publish: {trained.source}", tags=tags) as run:
        info = mlflow.pytorch.log_model(
            model, name="model", registered_model_name=name, serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"timm=={timm.__version__}"],
            extra_files=[str(folder / f) for f in (CONFIG, WEIGHTS, "README.md")])
        mlflow.log_param(trained.run_key, trained.run_id)
    version = str(info.registered_model_version)
    client = tracker.client
    client.set_registered_model_tag(name, REGISTRY_TAG, "true")
    client.set_registered_model_alias(name, alias, version)
    version_tags = {"source": trained.source, "suite": trained.suite, "arch": trained.arch,
                    "config_hash": trained.config_hash, trained.run_key: trained.run_id,
                    "folder": str(folder)}
    if trained.target:
        version_tags |= {"target": trained.target, "fold": str(trained.fold),
                         "repeat": str(trained.repeat), "test_auc": _f(trained.test_auc)}
    if pushed:
        version_tags["hub"] = pushed
    for r in results:
        for stat, digits in (("auc_mean", 4), ("auc_std", 4), ("transferability_mean", 2),
                             ("transferability_std", 2)):
            version_tags[f"{stat}.{r['target']}"] = _f(r[stat], digits)
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version, run.info.run_id


@dataclass(frozen=True)
class HubTarget:
    """A checked ``--push hf:ORG/REPO``: the repo, the Hub endpoint it was reached at, and
    the token (from the environment; never logged, printed or written)."""

    repo_id: str
    endpoint: str
    token: str = field(repr=False)

    @property
    def spec(self) -> str:
        return f"hf-hub:{self.repo_id}"


def check_push(repo: str, environ: dict[str, str], folder: Path) -> HubTarget:
    """Everything about ``--push`` that can be checked before anything is written or
    registered: the ``hf:ORG/REPO`` syntax, a token, the Hub reachable (HF_ENDPOINT, else
    huggingface.co; HF_HUB_OFFLINE refuses at once)."""
    import re
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    repo_id = repo.removeprefix("hf:").removeprefix("hf-hub:")
    later = f"Nothing was written or registered; the folder would be {folder}."
    if not repo.startswith(("hf:", "hf-hub:")) or \
            not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo_id):
        raise PublishError(f"--push '{repo}' must look like hf:ORG/REPO.", later)
    if not (environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")):
        raise PublishError("--push needs a Hugging Face token in HF_TOKEN.",
                           f"{later} Set HF_TOKEN (a write token) and publish again, or publish "
                           "without --push.")
    if environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PublishError("--push cannot reach the Hugging Face Hub: HF_HUB_OFFLINE is set.",
                           f"{later} Unset HF_HUB_OFFLINE, or publish without --push.")
    endpoint = (environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=5).close()
    except OSError as err:
        raise PublishError(f"--push cannot reach the Hugging Face Hub at {endpoint} ({err}).",
                           f"{later} Publish without --push now and upload the folder later "
                           f"(`hf upload {repo_id} FOLDER`), or publish again when online.") from None
    return HubTarget(repo_id, endpoint,
                     environ.get("HF_TOKEN") or environ["HUGGING_FACE_HUB_TOKEN"])


def push(folder: Path, target: HubTarget) -> str:
    """Upload the prepared ``folder`` as it is to the Hub repo of ``target``; any HTTP or
    connection error becomes a PublishError saying the folder is ready and where.

    Not timm's ``push_to_hf_hub``: it re-serialises the model into a temporary folder (with
    ``safe_serialization="both"`` by default also a pickled ``pytorch_model.bin``), writes its
    own ``config.json`` without our section (source, suite, the weights' SHA-256) and its own
    generic README when the repo has none; it cannot upload a prepared folder. So the folder
    timm's ``save_for_hf`` wrote (and our card) goes up with huggingface_hub's ``upload_folder``,
    tagged as a timm library upload, as timm's helper does."""
    import timm
    from huggingface_hub import HfApi

    api = HfApi(endpoint=target.endpoint, token=target.token, library_name="timm",
                library_version=timm.__version__)
    try:
        repo_id = api.create_repo(target.repo_id, exist_ok=True).repo_id
        api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                          allow_patterns=[CONFIG, WEIGHTS, "README.md"],
                          commit_message="Publish with transfer-bench")
    except Exception as err:  # HfHubHTTPError, and the HTTP library's transport errors
        raise PublishError(f"--push to {target.repo_id} at {target.endpoint} failed "
                           f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); nothing "
                           "was registered.",
                           f"The folder is ready to upload: {folder}. Upload it with `hf upload "
                           f"{target.repo_id} {folder}`, or publish again (without --push to "
                           "only register it).") from None
    return f"hf-hub:{repo_id}"


def publish(source: str, paths: BenchPaths, tracker: Tracker, *, suite: str,
            run_id: str | None = None, alias: str = "published", out: Path | None = None,
            push_to: str | None = None, environ: dict[str, str] | None = None) -> Published:
    """Publish the pretrained ``source`` of ``suite``: folder, (``push_to``) the Hub, then a
    registry version with ``alias``. ``--push`` is checked before anything is written; a push
    that fails leaves the folder ready to upload and registers nothing."""
    from bench_core.models import load_source_model
    from bench_core.sources import SourceModel

    check_alias(alias)
    trained = find_pretraining(tracker, source, suite, paths, run_id)
    if trained.source != source:
        did = (f"fine-tuned from '{trained.source}' (to '{trained.target}')" if trained.target
               else f"pretrained '{trained.source}'")
        raise PublishError(f"Run {run_id} {did}, not '{source}'.",
                           f"Publish it as `bench publish {trained.source} --run {run_id}`.")
    name = trained.name
    target = out or paths.home / "published" / name
    hub = check_push(push_to, dict(environ or {}), target) if push_to else None
    model = load_source_model(SourceModel(trained.source, trained.arch, str(trained.weights),
                                          trained.image_size)).eval()
    results, distances = source_results(tracker, trained)
    folder = write_folder(model, trained, results, distances, target, alias)
    pushed = push(folder, hub) if hub else None
    version, run = register(model, tracker, trained, folder, results, alias, pushed)
    return Published(name, version, alias, folder, run, trained.source, trained.suite,
                     trained.config_hash, results, pushed)


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
                    "target": v.tags.get("target"),
                    "arch": v.tags.get("arch"), "folder": v.tags.get("folder"),
                    "metrics": {k: float(val) for k, val in v.tags.items()
                                if k.startswith(("auc_mean.", "auc_std.", "transferability_mean.",
                                                 "transferability_std.")) and val},
                    "uri": f"models:/{rm.name}/{v.version}"})
    return sorted(out, key=lambda r: r["name"])
