"""Model weights from wherever they are published, loaded as weights only.

A weights spec names trained weights:

- ``file:PATH`` or a bare ``PATH.safetensors`` / ``PATH.pth``: a state dict file (it does not
  say its architecture: a suite's or probe's ``arch`` does; as an estimator probe's model,
  ``SOURCE=PATH.safetensors`` also says which dataset it was pretrained on);
- ``local-dir:PATH``: a folder in the timm / Hugging Face layout (``config.json`` +
  ``model.safetensors``), as ``bench publish`` writes it and ``timm.create_model("local-dir:PATH")``
  reads it;
- ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: a model in the MLflow Model Registry
  published by ``bench publish`` (its timm folder travels with it as extra files);
- ``hf-hub:ORG/REPO`` (that folder on the Hugging Face Hub, online) or ``hub:NAME`` (a timm
  pretrained tag, online).

Loading never unpickles code: ``.safetensors`` through safetensors, anything else through
``torch.load(weights_only=True)``. A pickle renamed ``.safetensors``, a truncated file, a file
whose SHA-256 is not the one its folder records, or weights of another architecture fail with a
:class:`WeightsError` that says what was found.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile

import json
from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import BenchError
from registry.files import file_digest

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
OURS = "transfer_bench"  # our section of config.json


class WeightsError(BenchError):
    """Source weights that cannot be found or loaded."""


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights spec resolved to a local file, with what its folder says about it."""

    spec: str
    path: Path
    arch: str | None = None
    num_classes: int | None = None
    label_names: tuple[str, ...] = ()
    input_size: tuple[int, int] | None = None
    info: dict = field(default_factory=dict)  # our section of config.json (source, suite ...)

    @property
    def source(self) -> str | None:
        return self.info.get("source")


def weights_file(ref: str, hint: str) -> Path:
    """The existing weights file ``ref`` (``~`` expanded), else a WeightsError with ``hint``."""
    path = Path(ref).expanduser()
    if not path.is_file():
        raise WeightsError(f"Weights file {path} does not exist.", hint)
    return path


def resolve(spec: str, cache: Path | None = None, tracking_uri: str | None = None
            ) -> ResolvedWeights:
    """The local weights file of ``spec`` (downloading a registry model into ``cache``)."""
    kind, sep, ref = spec.partition(":")
    if spec.startswith("models:/"):
        return _from_registry(spec, cache, tracking_uri)
    if kind == "local-dir" and sep:
        return from_folder(Path(ref).expanduser(), spec)
    if kind == "file" and sep:
        return ResolvedWeights(spec, weights_file(ref, "Give the path of a state dict "
                                                       "(.safetensors or .pth)."))
    if not sep and spec.endswith((".safetensors", ".pth", ".pt", ".bin")):
        return ResolvedWeights(spec, weights_file(spec, "Give the path of a state dict."))
    if kind == "hf-hub" and sep:
        return _from_hub(ref, spec, cache)
    if kind == "hub" and sep:
        raise WeightsError(f"'{spec}' is a timm pretrained tag: timm loads it itself when online.",
                           "Use model_from_weights, or a published folder (hf-hub:ORG/REPO).")
    raise WeightsError(f"Weights spec '{spec}' is not one of file:PATH, PATH.safetensors, "
                       "local-dir:PATH, models:/NAME@ALIAS, hf-hub:ORG/REPO or hub:NAME.",
                       "Example: --imagenet-weights ~/weights/resnet50_a1_0-14fe96d1.pth")


def from_folder(folder: Path, spec: str) -> ResolvedWeights:
    """A timm / Hugging Face folder: config.json and model.safetensors, the SHA-256 it records
    checked."""
    cfg_file, path = folder / CONFIG, folder / WEIGHTS
    if not cfg_file.is_file() or not path.is_file():
        raise WeightsError(f"{folder} is not a published model folder: it needs {CONFIG} and "
                           f"{WEIGHTS}.", "Give the folder `bench publish` wrote.")
    try:
        cfg = json.loads(cfg_file.read_text())
        pre = cfg.get("pretrained_cfg", {})
        size = pre.get("input_size")
        info = dict(cfg.get(OURS, {}))
        resolved = ResolvedWeights(spec, path, cfg["architecture"], cfg.get("num_classes"),
                                   tuple(cfg.get("label_names") or pre.get("label_names") or ()),
                                   tuple(size[1:]) if size else None, info)
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{cfg_file} is not a timm model config ({err}).",
                           "Publish the model again with `bench publish`.") from None
    expected = info.get("weights_sha256")
    if expected and file_digest(path) != expected:
        raise WeightsError(f"{path} does not match the SHA-256 its {CONFIG} records: the file "
                           "was changed or damaged after publishing; refusing it.",
                           "Get the folder again from who published it.")
    return resolved


def _from_registry(spec: str, cache: Path | None, tracking_uri: str | None) -> ResolvedWeights:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    name, version = registry_version(client, spec)
    folder = (cache or Path.home() / ".cache" / "transfer-bench" / "registry") / name / version
    if not (folder / WEIGHTS).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:  # nothing partial stays
            try:  # the version's own artifact URI: a models:/ URI would be looked up in the
                # process-wide registry (MLflow's default store in the working directory)
                got = Path(mlflow.artifacts.download_artifacts(
                    client.get_model_version_download_uri(name, version),
                    tracking_uri=tracking_uri, dst_path=tmp))
            except MlflowException as err:
                raise WeightsError(f"Could not download {spec}: {err.message[:300]}",
                                   "Check MLFLOW_TRACKING_URI points at the store that holds "
                                   "it.") from None
            if not (got / "extra_files" / WEIGHTS).is_file():
                raise WeightsError(f"{spec} holds no {WEIGHTS}: it was not published by "
                                   "`bench publish`.", "Load it with mlflow.pytorch.load_model "
                                   "instead (which unpickles code: only if you trust it).")
            if not folder.exists():
                os.replace(got / "extra_files", folder)
    return from_folder(folder, spec)


def _from_hub(repo: str, spec: str, cache: Path | None) -> ResolvedWeights:
    """A published folder on the Hugging Face Hub, downloaded (online) into ``cache``."""

    from huggingface_hub import snapshot_download

    try:  # HF_ENDPOINT read now (huggingface_hub reads it once, when first imported)
        folder = snapshot_download(repo, allow_patterns=[CONFIG, WEIGHTS, "README.md"],
                                   cache_dir=str(cache) if cache else None, etag_timeout=5,
                                   endpoint=os.environ.get("HF_ENDPOINT") or None)
    except Exception as err:  # offline, unknown repo, gated: many error types
        raise WeightsError(f"Could not download {spec} from the Hugging Face Hub "
                           f"({type(err).__name__}).", "Connect to the internet (and set HF_TOKEN "
                           "for a private repo), or use the folder: local-dir:PATH.") from None
    return from_folder(Path(folder), spec)


def registry_version(client, spec: str) -> tuple[str, str]:
    from mlflow.exceptions import MlflowException

    ref = spec.removeprefix("models:/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return name, str(client.get_model_version_by_alias(name, alias).version)
        name, _, version = ref.partition("/")
        if version == "latest":  # MLflow's own meaning: the newest version
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise MlflowException(f"no versions of {name}")
            return name, str(max(int(v.version) for v in versions))
        return name, str(client.get_model_version(name, version).version)
    except MlflowException:
        raise WeightsError(f"No registered model version {spec}.",
                           "List published models with `bench models`.") from None


def load_state(path: Path) -> dict:
    """The tensors of a weights file, never unpickling code."""

    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise WeightsError(f"{path} is not a valid safetensors file ({err}); it may be "
                               "truncated, or another format (a pickle) under this name. It was "
                               "not loaded.", "Use the file as published, or export it again "
                               "with safetensors.torch.save_file.") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise WeightsError(f"{path} holds more than tensors or is damaged; weights-only loading "
                           f"refused it and nothing in it was executed ({str(err)[:200]}).",
                           "Export a plain state dict (safetensors preferred).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} is not a state dict of tensors.",
                           "Export model.state_dict() (safetensors preferred).")
    return state


def source_model(spec: str, cache: Path | None = None, tracking_uri: str | None = None,
                 image_size: tuple[int, int] | None = None, arch: str | None = None):
    """A published model as the source model of the dataset it was pretrained on (for the
    estimator probes). A folder or registry spec says its architecture, source and input size;
    a bare weights file (``SOURCE=PATH.safetensors``) says none of them: the source comes from
    ``SOURCE=``, the architecture and input size from ``arch`` and ``image_size`` (the caller's
    suite), and without them it fails clearly."""

    from bench_core.sources import SourceModel

    named = re.fullmatch(r"([a-z0-9][a-z0-9_.\-]*)=(.+)", spec)
    source, spec = (named.group(1), named.group(2)) if named else (None, spec)
    resolved = resolve(spec, cache, tracking_uri)
    source = source or resolved.source
    if not source:
        raise WeightsError(f"{spec} does not say which source dataset it was pretrained on.",
                           f"Name it: SOURCE={spec} (e.g. digits={spec}), or give a folder "
                           "written by `bench publish` (local-dir:PATH) or a registry model "
                           "(models:/NAME@ALIAS).")
    arch = resolved.arch or arch
    if not arch:
        raise WeightsError(f"{spec} is a bare weights file: it does not say its architecture.",
                           "The estimator probes take the architecture.name of the suite in "
                           "their suite option (--option suite=NAME); or publish it with "
                           "`bench publish` (its folder records the architecture).")
    size = resolved.input_size or image_size
    if size is None:
        raise WeightsError(f"{spec} records no input size.",
                           "Give the suite whose pretrain image_size it was trained at "
                           "(--option suite=NAME), or publish it again.")
    return SourceModel(source, arch, str(resolved.path), tuple(size))
