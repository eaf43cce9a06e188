"""What several commands share: the ``--json`` flag, parsers of ``KEY=VALUE`` and ``HxW``
flags, dataset names given with commas, the tracking URI from the environment."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import yaml

from benchmark.cli.console import fail
from probes.base import PROBES
from registry.catalog import Catalog

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise fail(f"--size '{text}' is not a size; write HEIGHTxWIDTH (e.g. 112x112) or one "
                   "number for a square.", 2)
    return int(parts[0]), int(parts[1])


def parse_options(items: list[str], flag: str = "--option") -> dict:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"{flag} '{item}' must look like KEY=VALUE (VALUE is read as YAML).", 2)
        options[key] = yaml.safe_load(value)
    return options


def tracking_uri() -> str | None:
    """MLFLOW_TRACKING_URI, read here only: the library takes the URI as an argument."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def dataset_names(text: str | None, catalog: Catalog) -> list[str] | None:
    """Comma-separated names, aliases made canonical (unknown names kept for the error)."""
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return [catalog.canonical(n) if n.lower() in catalog else n for n in names]


def extension_help(extensions: dict) -> str:
    """``name (summary)`` of each registered extension, for a flag's help."""
    return "; ".join(f"{name}" + (f" ({e.summary.rstrip('.')})" if e.summary else "")
                     for name, e in extensions.items())


def extension_list(extensions: dict) -> str:
    """One markdown list item per extension: ``name``: its summary."""
    return "\n".join(f"* `{name}`: {e.summary.rstrip('.')}" if e.summary else f"* `{name}`"
                     for name, e in extensions.items())


def probe_help() -> str:
    """``bench probe``'s help, its methods listed in two groups, one line each, from the probe
    registry (no module imported): the similarity probes, then the estimators."""
    found = PROBES.extensions()
    estimators = {n: e for n, e in found.items() if e.module.startswith("probes.estimators.")}
    probes = {n: e for n, e in found.items() if n not in estimators}
    return ("Run a similarity probe or a transferability estimator on registered datasets and "
            "log its distance matrix to MLflow (an estimator's distance is minus its score of "
            "a source model on a target).\n\n**Dataset-similarity probes** (distance between "
            f"datasets):\n\n{extension_list(probes)}\n\n**Transferability estimators** (a "
            f"source model scored on the target's data):\n\n{extension_list(estimators)}")
