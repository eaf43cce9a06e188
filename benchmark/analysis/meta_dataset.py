"""The registry as meta-learning data: every finished (source, target) pair in the store, across
suites, with what the probes and estimators said of it and how its datasets differ (the cards'
expert meta-features, the registered statistical ones, the sizes), as the pair table the learned
ranker learns from (:mod:`benchmark.analysis.pair_features`); and the learned method's scores
for one suite's targets, each from a model that never saw that target."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from bench_core.stores import tracking_target
from bench_core.tracking import open_tracker
from benchmark.analysis.pair_features import LABEL, feature_columns, pair_table
from benchmark.analysis.ranker import DEFAULT_LEARNER, LEARNERS, Learner, loto_scores
from benchmark.analysis.results import results_table
from probes.tracking import load_probe_matrices
from registry.card import ExpertFeatures
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.store import RegistryStore

META_FIELDS = ("NumberOfClasses", "ClassEntropy", "imbalance_ratio", "channels",
               "intensity_mean", "intensity_std", "image_contrast_mean", "edge_strength_mean",
               "intensity_entropy_bits", "native_height_max", "native_width_max")
PREFIX = "transfer-bench/"
NOT_SUITES = ("probes", "publish")  # experiments of the store that are no suites


def dataset_tables(names: list[str], paths: BenchPaths, catalog: Catalog
                   ) -> dict[str, pd.DataFrame]:
    """Per dataset: the card's expert meta-features and the registered statistical ones
    (NaN where a dataset is not registered here or its card has none)."""
    store = RegistryStore(paths.registry_db) if paths.registry_db.is_file() else None
    expert, meta = {}, {}
    for name in names:
        card = catalog.cards.get(name)
        fields = card.expert.model_dump() if card is not None and card.expert else {}
        expert[name] = {f: fields.get(f) for f in ExpertFeatures.FIELDS}
        record = store.get(name) if store is not None else None
        values = record.meta_features if record is not None else {}
        meta[name] = {f: float(values[f]) if f in values else np.nan for f in META_FIELDS}
    return {"expert": pd.DataFrame.from_dict(expert, orient="index"),
            "meta": pd.DataFrame.from_dict(meta, orient="index", dtype=float)}


def suite_pairs(paths: BenchPaths, suite: str, tracking_uri: str | None,
                sizes: Mapping[str, float], catalog: Catalog) -> pd.DataFrame | None:
    """The finished transfer pairs of ``suite`` with their features and a ``suite`` column;
    None when the suite has no finished pairs in the store."""
    tracker = open_tracker(paths, f"{PREFIX}{suite}", tracking_uri)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            table = results_table(tracker, suite)
            probes = load_probe_matrices(tracker, suite)
    except BenchError:
        return None
    transfers = table[table["kind"] == "transfer"].dropna(subset=["auc_mean"])
    if transfers.empty:
        return None
    truth = transfers.rename(columns={"auc_mean": LABEL})[["source", "target", LABEL,
                                                           "transferability_mean"]]
    names = sorted({*truth["source"], *truth["target"]})
    pairs = pair_table(truth.rename(columns={"transferability_mean": "transferability"}),
                       distances=probes, datasets=dataset_tables(names, paths, catalog),
                       sizes=sizes)
    return pairs.assign(suite=suite)


def store_suites(paths: BenchPaths, tracking_uri: str | None) -> list[str]:
    """The suites that have an experiment in the store (without opening a new store)."""
    target = tracking_target(paths, tracking_uri, "")
    if tracking_uri is None and not paths.mlflow_db.is_file():
        return []
    names = [e.name for e in MlflowClient(target.uri).search_experiments()]
    return sorted(n.removeprefix(PREFIX) for n in names
                  if n.startswith(PREFIX) and n.removeprefix(PREFIX) not in NOT_SUITES)


def store_pairs(paths: BenchPaths, tracking_uri: str | None, sizes: Mapping[str, float],
                catalog: Catalog | None = None) -> pd.DataFrame:
    """Every finished transfer pair of every suite in the store, as one pair table."""
    catalog = catalog or Catalog.load()
    frames = [f for s in store_suites(paths, tracking_uri)
              if (f := suite_pairs(paths, s, tracking_uri, sizes, catalog)) is not None]
    if not frames:
        return pd.DataFrame(columns=["source", "target", LABEL, "suite"])
    return pd.concat(frames, ignore_index=True)


def learned_scores(pairs: pd.DataFrame, suite: str | None, learner: Learner | None = None,
                   targets: list[str] | None = None) -> pd.DataFrame:
    """The learned method's scores of ``suite``'s pairs (every pair's with None): for each of
    its targets t, a model fitted on every pair in ``pairs`` whose target is not t (any
    suite) scores t's candidates in ``suite``. Columns source, target, score;
    ``attrs['refused']`` says which targets got no model and why (too few other targets)."""
    features = [c for c in feature_columns(pairs) if pairs[c].notna().any()]
    scored = pairs if suite is None else pairs[pairs["suite"] == suite]
    return loto_scores(pairs, learner or LEARNERS[DEFAULT_LEARNER], features, targets=targets,
                       scored=scored)
