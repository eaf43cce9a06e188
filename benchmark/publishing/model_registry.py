"""Published models in the MLflow Model Registry: a registered version per publication (the
PyTorch flavour with the timm folder as extra files), its alias and version tags; and the
listing of what ``bench publish`` registered."""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pytorch
import timm
import torch

from bench_core.tracking import Tracker
from bench_core.weights import CONFIG, WEIGHTS
from benchmark.publishing.trained import PublishError, Trained

REGISTRY_TAG = "transfer_bench"


def check_alias(alias: str) -> None:
    """MLflow's alias rules (letters, digits, _ and -; not 'latest' nor vN), before any work."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", alias) or alias.lower() == "latest" \
            or re.fullmatch(r"[vV]\d+", alias):
        raise PublishError(f"--alias '{alias}' is not a registry alias: use letters, digits, _ "
                           "and -, and neither 'latest' (MLflow's own: models:/NAME/latest is "
                           "the newest version) nor vN.", "For example --alias published.")


def _f(v, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"



def register(model, tracker: Tracker, trained: Trained, folder: Path, results: list[dict],
             alias: str, pushed: str | None = None) -> tuple[str, str]:
    """A ``publish: SOURCE`` run logging the PyTorch flavour with the folder as extra files,
    registered as a new version of the model, ``alias`` pointing at it (tagged ``hub`` with
    where it was pushed); returns (version, run id)."""
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

