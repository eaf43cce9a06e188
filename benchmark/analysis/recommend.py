"""`bench recommend`: rank candidate sources for a target.

By one probe (smallest distance first) or ``learned``: a ridge regression from the probes'
distances (z-scored per probe) to transferability, fitted on the finished benchmark results of
the other targets (meta-learning). Every method is evaluated leave-one-target-out on the targets
with results, against the baselines a probe must beat (``random``: the expected value of a
random pick; ``best-on-average``: the source best on average over the other targets;
``largest-source``): regret = AUC of the best source - AUC of the recommended one (0 is
perfect), and weighted Kendall tau of the ranking. A target is never its own candidate unless
asked (``include_self``).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from bench_core.tracking import open_tracker
from benchmark.analysis.evaluation import evaluate_probes
from benchmark.analysis.results import results_table
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from probes.logging import load_probe_matrices
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.views import dataset_sizes


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """Sources for a target by one method, with every method's leave-one-target-out figures;
    ``models``: the suite's and the published models scored on the target, when asked."""

    target: str
    method: str
    ranking: pd.DataFrame      # source, score (higher = better), distance / predicted
    evaluation: pd.DataFrame   # method, kind, target, recommended, best, regret, taus
    models: pd.DataFrame | None = None  # model, kind, source, <estimator>


def pair_features(sources: list[str], target: str,
                  probes: dict[str, tuple[list[str], np.ndarray]]) -> pd.DataFrame:
    """Distance from each source to ``target`` under each probe (NaN where not covered)."""
    rows = []
    for s in sources:
        row = {"source": s}
        for method, (names, m) in probes.items():
            idx = {n: i for i, n in enumerate(names)}
            row[method] = float(m[idx[s], idx[target]]) if s in idx and target in idx else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _z(frame: pd.DataFrame, cols: list[str], stats: dict[str, tuple[float, float]]) -> np.ndarray:
    out = []
    for c in cols:
        mu, sd = stats[c]
        out.append((frame[c].fillna(mu) - mu) / (sd or 1.0))
    return np.stack(out, axis=1)


def _fit(train: pd.DataFrame, cols: list[str]) -> tuple[Ridge, dict]:
    stats = {c: (float(train[c].mean()), float(train[c].std(ddof=0))) for c in cols}
    model = Ridge(alpha=1.0).fit(_z(train, cols, stats), train["transferability_mean"])
    return model, stats


def _training_rows(results: pd.DataFrame, probes) -> pd.DataFrame:
    frames = []
    for target, g in results.groupby("target"):
        feats = pair_features(list(g["source"]), target, probes)
        frames.append(g.merge(feats, on="source"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rank(target: str, sources: list[str], method: str, probes, results: pd.DataFrame
         ) -> pd.DataFrame:
    """Sources for ``target``, best first, by ``method`` (a probe name or 'learned')."""
    feats = pair_features(sources, target, probes)
    if method == "learned":
        train = _training_rows(results[results["target"] != target], probes)
        cols = [m for m in probes if m in train and train[m].notna().any()]
        if train.empty or not cols:
            raise BenchError("The learned ranking needs finished benchmark results of other "
                             "targets with probe distances.",
                             "Run `bench run` on a suite with probes and at least two targets.")
        model, stats = _fit(train.dropna(subset=["transferability_mean"]), cols)
        feats["predicted_transferability"] = model.predict(_z(feats, cols, stats))
        feats["score"] = feats["predicted_transferability"]
    else:
        if method not in probes:
            raise BenchError(f"No distances of probe '{method}' are logged for these datasets.",
                             f"Logged probes: {', '.join(probes) or 'none'}; run the suite with "
                             "that probe, or `bench probe` on the sources and the target.")
        feats["score"] = -feats[method]
    ranked = feats.dropna(subset=["score"]).sort_values("score", ascending=False)
    return ranked.reset_index(drop=True)


def evaluate(results: pd.DataFrame, probes, methods: list[str],
             sizes: dict[str, int] | None = None, include_self: bool = False) -> pd.DataFrame:
    """Leave-one-target-out evaluation of each method and of the baselines (random, best on
    average over the other targets, largest source), per target with at least two candidate
    sources (a target is not its own candidate unless ``include_self``): top-1 regret = AUC of
    the best source - AUC of the recommended one (0 is perfect), weighted and plain Kendall tau
    of the whole ranking against the AUCs."""
    if not include_self:
        results = results[results["source"] != results["target"]]
    truth = results.assign(repeat=0, auc=results["auc_mean"])
    scores = {}
    for method in methods:
        rows = []
        for target, g in results.groupby("target"):
            try:
                ranked = rank(target, list(g["source"]), method, probes, results)
            except BenchError:
                continue
            rows += [{"source": r["source"], "target": target, "score": r["score"]}
                     for _, r in ranked.iterrows()]
        if rows:
            scores[method] = pd.DataFrame(rows)
    table = evaluate_probes(truth[["source", "target", "repeat", "auc"]], scores, sizes or {},
                            include_self=include_self)
    table = table[table["n_sources"].fillna(0) >= 2]
    return table.rename(columns={"top1_regret": "regret"})[EVALUATION]


EVALUATION = ["method", "kind", "target", "recommended", "best", "regret", "weighted_tau",
              "kendall_tau"]


def recommend(target: str, method: str, results: pd.DataFrame, probes,
              candidates: list[str], sizes: dict[str, int] | None = None,
              include_self: bool = False) -> Recommendation:
    transfers = results[results["kind"] == "transfer"][
        ["source", "target", "auc_mean", "transferability_mean"]].dropna(subset=["auc_mean"])
    if not include_self:
        candidates = [c for c in candidates if c != target]
    ranking = rank(target, candidates, method, probes, transfers)
    methods = [*probes, "learned"]
    return Recommendation(target=target, method=method, ranking=ranking,
                          evaluation=evaluate(transfers, probes, methods, sizes, include_self))


def recommend_from_store(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                         method: str = "learned", tracking_uri: str | None = None,
                         catalog: Catalog | None = None, include_self: bool = False
                         ) -> Recommendation:
    """Rank ``suite``'s sources for ``target`` by a probe or the learned combination, from the
    suite's finished results and probes in the store, with every method's leave-one-target-out
    figures."""
    catalog = catalog or Catalog.load()
    name = catalog.key(target)
    resolved = resolve_suite(suite)
    tracker = open_tracker(paths, f"transfer-bench/{resolved.name}", tracking_uri)
    with contextlib.redirect_stdout(sys.stderr):
        results = results_table(tracker, resolved.name)
        probes = load_probe_matrices(tracker, resolved.name)
    return recommend(name, method, results, probes, [s.name for s in resolved.sources],
                     dataset_sizes(paths, catalog), include_self)
