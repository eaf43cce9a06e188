"""How well a probe ranks candidate source datasets, and how far the ground truth can be trusted.

For each target dataset the candidate sources are ranked twice: by the ground truth (the mean
fine-tuning AUC of source -> target over repeats) and by a probe's score (higher = the probe
predicts better transfer; callers turn distances into scores by negating them). Agreement is
Kendall tau, weighted Kendall tau (agreement at the top of the ranking counts more), Spearman rho
and top-1 regret (AUC lost by fine-tuning from the probe's first choice instead of the best
source).

A probe is only useful if it beats rankings that need no probe: a random ranking (expected
values), the source that is best on average over the *other* targets, and the static ranking by
source size (the largest source first, the same list for every target). And
no probe can be expected to agree with the truth better than the truth agrees with a re-run of
itself: the split-half noise ceiling measures that.

Inputs are pandas DataFrames:

* ``results``: one row per fine-tuning run, columns ``source``, ``target``, ``repeat`` (int; 0
  everywhere when there is one repeat), ``auc`` and optionally ``transferability``;
* ``scores``: one row per (source, target), columns ``source``, ``target``, ``score``;
* ``sizes``: a mapping source -> number of training images.

A target is never its own candidate source: every function that evaluates drops the rows with
``source == target`` unless it is given ``include_self=True``. Undefined statistics (fewer than
two sources, constant inputs) are None in dicts and NaN in DataFrames, never an exception. All
functions are pure: they read their arguments and return new objects.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from benchmark.analysis.baselines import (best_on_average_scores, random_expectation,
                                          static_size_scores)
from benchmark.analysis.ranking import (BASELINES, EVALUATION_COLUMNS, METRICS,
                                        EvaluationError, checked_scores, series_of, target_list,
                                        ranking_agreement, truth_table)


def evaluate_probes(results: pd.DataFrame, probe_scores: Mapping[str, pd.DataFrame],
                    sizes: Mapping[str, int], include_self: bool = False) -> pd.DataFrame:
    """Agreement of every probe and every baseline with the truth, one row per (method, target).

    The truth of (source, target) is the mean AUC over repeats; the targets are those of
    ``results``. Columns: method, kind ('probe' or 'baseline'), target, n_sources (common to
    truth and method), kendall_tau, weighted_tau, spearman_rho, top1_regret, recommended (the
    method's top source) and best (the true best source); see :func:`ranking_agreement`. The
    baselines are 'random' (expected values), 'best-on-average' and 'static-size'.
    """
    clash = sorted(set(probe_scores) & set(BASELINES))
    if clash:
        raise EvaluationError(f"Probe name(s) {clash} clash with the baselines' names.",
                              "Rename the probe(s).")
    truth = truth_table(results, include_self)
    targets = target_list(truth, None)
    methods = [(name, "probe", checked_scores(s, name, include_self))
               for name, s in probe_scores.items()]
    methods += [("best-on-average", "baseline",
                 best_on_average_scores(results, targets, include_self)),
                ("static-size", "baseline",
                 static_size_scores(results, sizes, targets, include_self))]
    rows = []
    for target in targets:
        t = series_of(truth, target, "auc")
        rows.append({"method": "random", "kind": "baseline", "target": target,
                     **random_expectation(t)})
        rows += [{"method": name, "kind": kind, "target": target,
                  **ranking_agreement(t, series_of(scores, target, "score"))}
                 for name, kind, scores in methods]
    return pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))


def _pooled_ceiling(ceiling: pd.DataFrame | None) -> float:
    """The pooled noise ceiling of a :func:`noise_ceiling` table (NaN when absent)."""
    if ceiling is None:
        return np.nan
    pooled = ceiling.loc[ceiling["scope"] == "pooled", "noise_ceiling"]
    return float(pooled.iloc[0]) if len(pooled) and pd.notna(pooled.iloc[0]) else np.nan


def _beats(probe: pd.DataFrame, baseline: pd.DataFrame, metric: str) -> bool | None:
    """Whether the probe's mean ``metric`` is strictly better than the baseline's.

    Compared on the targets where both have a value, so a probe that skips hard targets gains
    nothing; higher is better except for top1_regret. None when no target is shared.
    """
    both = probe[["target", metric]].merge(baseline[["target", metric]], on="target",
                                          suffixes=("_p", "_b")).dropna()
    if both.empty:
        return None
    p, b = both[f"{metric}_p"].mean(), both[f"{metric}_b"].mean()
    return bool(p < b) if metric == "top1_regret" else bool(p > b)


def summarize(evaluation: pd.DataFrame, ceiling: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per method: the means over targets of an :func:`evaluate_probes` table, beside the ceiling.

    Columns: method, kind, n_targets, the means of kendall_tau, weighted_tau, spearman_rho and
    top1_regret (over targets where defined), noise_ceiling (the pooled value of ``ceiling``, a
    :func:`noise_ceiling` table; NaN without one), and for each baseline b (hyphens become
    underscores) beats_<b>_weighted_tau and beats_<b>_top1_regret: whether a probe beats it
    (higher mean weighted tau, lower mean regret, paired over targets); None for baselines.
    """
    ceiling_value = _pooled_ceiling(ceiling)
    metrics = evaluation[list(METRICS)].apply(pd.to_numeric, errors="coerce")
    table = evaluation.assign(**{m: metrics[m] for m in METRICS})
    rows = []
    for (method, kind), part in table.groupby(["method", "kind"], sort=False):
        row = {"method": method, "kind": kind, "n_targets": part["target"].nunique(),
               **{m: part[m].mean() for m in METRICS}, "noise_ceiling": ceiling_value}
        for base in BASELINES:
            base_part = table[table["method"] == base]
            for metric in ("weighted_tau", "top1_regret"):
                key = f"beats_{base.replace('-', '_')}_{metric}"
                row[key] = _beats(part, base_part, metric) if kind == "probe" else None
        rows.append(row)
    return pd.DataFrame(rows)
