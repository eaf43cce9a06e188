"""`bench results export`: a suite's results out of its MLflow store, as a transfer table
(:mod:`registry.transfer_table`): every finished pair's folds and repeats (the scratch baseline
as candidate ``scratch``; layer-freezing runs are another protocol and stay out), every probe's
and estimator's per-pair scores (minus the distance: higher = better), the candidates' sizes,
the datasets' expert and statistical meta-features, and the provenance (suite, config hashes,
architecture, image sizes, epochs, tool version, date). The inverse of
:func:`benchmark.analysis.transfer_data.inputs_from_table`: a store's table, imported elsewhere,
gives the same evaluation figures as the store."""

from __future__ import annotations

import contextlib
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from bench_core.tracking import open_tracker
from benchmark.analysis.meta_dataset import dataset_tables
from benchmark.analysis.results import results_tables
from benchmark.suite.files import resolve_suite
from probes.tracking import load_probe_matrices
from registry.card import ExpertFeatures
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.store import RegistryStore
from registry.transfer_table import SCRATCH, TransferTable, protocol_id, validate
from registry.views import dataset_sizes

TOOL = "transfer-bench"
DEFAULT_LICENSE = {"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/",
                   "title": "Creative Commons Attribution 4.0"}


def package_version() -> str | None:
    """The installed version of transfer-bench (None when it runs from a plain checkout)."""
    try:
        return version(TOOL)
    except PackageNotFoundError:
        return None


def tool_version() -> str:
    v = package_version()
    return f"{TOOL} {v}" if v else TOOL


def _result_rows(folds: pd.DataFrame, sizes: dict[str, float], classes: dict[str, int]
                 ) -> pd.DataFrame:
    rows = folds[folds["kind"].isin(["transfer", "scratch"])].dropna(subset=["auc"])
    if rows.empty:
        raise BenchError("The suite has no finished transfer or scratch runs to export.",
                         "Run the suite first (`bench run --suite ...`).")
    scratch = rows["kind"] == "scratch"
    cand = rows["source"].where(~scratch, SCRATCH)
    return pd.DataFrame({
        "candidate": cand, "candidate_kind": np.where(scratch, SCRATCH, "dataset"),
        "target": rows["target"], "repeat": rows["repeat"].astype(int),
        "fold": rows["fold"].astype(int), "metric": "auc", "value": rows["auc"].astype(float),
        "candidate_images": [None if s else sizes.get(c) for c, s in zip(cand, scratch)],
        "candidate_classes": [None if s else classes.get(c) for c, s in zip(cand, scratch)],
        "candidate_params": None, "config_hash": rows["config_hash"]}).reset_index(drop=True)


def _score_rows(probes: dict, results: pd.DataFrame) -> pd.DataFrame:
    """Every logged method's score of the table's (candidate, target) pairs: -distance."""
    wanted = set(zip(results["candidate"], results["target"]))
    rows = []
    for method, (names, matrix) in sorted(probes.items()):
        index = {n: i for i, n in enumerate(names)}
        for cand, target in sorted(wanted):
            if cand in index and target in index and np.isfinite(matrix[index[cand],
                                                                        index[target]]):
                rows.append({"candidate": cand, "target": target, "method": method,
                             "score": -float(matrix[index[cand], index[target]])})
    return pd.DataFrame(rows, columns=["candidate", "target", "method", "score"])


def _dataset_rows(names: list[str], paths: BenchPaths, catalog: Catalog,
                  sizes: dict[str, float], classes: dict[str, int]) -> pd.DataFrame:
    tables = dataset_tables(names, paths, catalog)
    expert, meta = tables["expert"], tables["meta"]
    frame = pd.DataFrame({"name": names, "images": [sizes.get(n) for n in names],
                          "classes": [classes.get(n) for n in names]})
    for f in ExpertFeatures.FIELDS:
        frame[f"expert_{f}"] = [expert.loc[n, f] if n in expert.index else None for n in names]
    for f in meta.columns:
        frame[f"meta_{f}"] = [meta.loc[n, f] if n in meta.index else np.nan for n in names]
    return frame


def _classes(names: list[str], paths: BenchPaths, catalog: Catalog) -> dict[str, int]:
    store = RegistryStore(paths.registry_db) if paths.registry_db.is_file() else None
    out = {}
    for n in names:
        record = store.get(n) if store is not None else None
        card = catalog.cards.get(n)
        if record is not None:
            out[n] = len(record.classes)
        elif card is not None and card.classes:
            out[n] = len(card.classes)
    return out


def _provenance(suite, folds: pd.DataFrame) -> dict:
    settings = suite.finetune_defaults
    protocol = {"suite": suite.name, "architecture": suite.architecture.model_dump(mode="json"),
                "folds": suite.folds.model_dump(mode="json"), "repeats": suite.repeats,
                "baseline": suite.baseline,
                "finetune": settings.model_dump(mode="json", exclude={"keep_models"}),
                "metric": "auc"}
    return {"protocol": protocol, "protocol_id": protocol_id(protocol),
            "config_hashes": sorted(folds["config_hash"].dropna().unique().tolist())}


def export_suite(paths: BenchPaths, suite: str, *, tracking_uri: str | None = None,
                 catalog: Catalog | None = None, license: dict | None = None,
                 citation: str | None = None) -> TransferTable:
    """The transfer table of ``suite``'s finished runs in the store (see the module docstring)."""
    catalog = catalog or Catalog.load()
    resolved = resolve_suite(suite)
    tracker = open_tracker(paths, f"transfer-bench/{resolved.name}", tracking_uri)
    with contextlib.redirect_stdout(sys.stderr):
        _, folds = results_tables(tracker, resolved.name)
        probes = load_probe_matrices(tracker, resolved.name)
    sizes = dataset_sizes(paths, catalog)
    names = sorted(set(folds["source"]) | set(folds["target"]))
    classes = _classes(names, paths, catalog)
    results = _result_rows(folds, sizes, classes)
    used = sorted((set(results["candidate"]) | set(results["target"])) - {SCRATCH})
    methods = {m: {"description": f"minus the distance of probe '{m}' as logged in the "
                   "suite's store (higher = predicted better transfer)"} for m in probes}
    meta = {"title": f"transfer-bench suite '{resolved.name}'",
            "description": resolved.description or None, "metric": "auc",
            "repeats_are": "independent repeats", **_provenance(resolved, folds),
            "citation": citation or f"transfer-bench, suite '{resolved.name}'",
            "licenses": [license or DEFAULT_LICENSE], "tool": tool_version(),
            "methods": methods}
    return validate(TransferTable(results=results, scores=_score_rows(probes, results),
                                  datasets=_dataset_rows(used, paths, catalog, sizes, classes),
                                  meta={k: v for k, v in meta.items() if v is not None}))
