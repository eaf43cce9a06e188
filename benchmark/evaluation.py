"""How well a probe ranks candidate source datasets, and how far the ground truth can be trusted.

For each target dataset the candidate sources are ranked twice: by the ground truth (the mean
fine-tuning AUC of source -> target over repeats) and by a probe's score (higher = the probe
predicts better transfer; callers turn distances into scores by negating them). Agreement is
Kendall tau, weighted Kendall tau (agreement at the top of the ranking counts more), Spearman rho
and top-1 regret (AUC lost by fine-tuning from the probe's first choice instead of the best
source).

A probe is only useful if it beats rankings that need no probe: a random ranking (expected
values), the source that is best on average over the *other* targets, and the largest source. And
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

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata, spearmanr, weightedtau

from registry.errors import BenchError

RESULT_COLUMNS = ("source", "target", "repeat", "auc")
SCORE_COLUMNS = ("source", "target", "score")
CORRELATIONS = ("kendall_tau", "weighted_tau", "spearman_rho")
METRICS = (*CORRELATIONS, "top1_regret")
BASELINES = ("random", "best-on-average", "largest-source")
EVALUATION_COLUMNS = ("method", "kind", "target", "n_sources", *METRICS, "recommended", "best")
CEILING_COLUMNS = ("scope", "target", "n_sources", "n_repeats", "n_splits", "noise_ceiling",
                   "reason")
TIE_SEP = "|"  # joins the names of tied sources in `recommended` and `best`


class EvaluationError(BenchError):
    """Input tables that cannot be evaluated (missing columns, duplicate pairs, name clashes)."""


# --- input handling ---------------------------------------------------------------------------


def _require(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a user-facing error when ``table`` lacks one of ``columns``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EvaluationError(f"The {what} table lacks column(s) {missing}; it has "
                              f"{list(table.columns)}.", f"Give it the columns {list(columns)}.")


def drop_self(table: pd.DataFrame, include_self: bool = False) -> pd.DataFrame:
    """The rows whose source is not the target itself (all rows when ``include_self``).

    A dataset fine-tuned on itself is not a transfer: it would win every ranking trivially.
    """
    return table if include_self else table[table["source"] != table["target"]]


def truth_table(results: pd.DataFrame, include_self: bool = False) -> pd.DataFrame:
    """Ground truth per (source, target): the mean AUC over repeats (columns source, target, auc).

    Pairs whose AUCs are all NaN are dropped: their truth is unknown, so they are no candidate.
    """
    _require(results, RESULT_COLUMNS, "results")
    rows = drop_self(results, include_self)
    truth = rows.groupby(["source", "target"], as_index=False)["auc"].mean()
    return truth.dropna(subset=["auc"]).reset_index(drop=True)


def _checked_scores(scores: pd.DataFrame, name: str, include_self: bool) -> pd.DataFrame:
    """``scores`` without self pairs, after checking its columns and that pairs are unique."""
    _require(scores, SCORE_COLUMNS, f"scores of {name!r}")
    rows = drop_self(scores, include_self)
    dup = rows.duplicated(["source", "target"])
    if dup.any():
        first = rows[dup].iloc[0]
        raise EvaluationError(f"The scores of {name!r} have more than one row for source "
                              f"{first['source']!r} and target {first['target']!r}.",
                              "Give one score per (source, target) pair.")
    return rows


def _series(table: pd.DataFrame, target: str, column: str) -> pd.Series:
    """``column`` of ``table``'s rows for ``target``, indexed by source."""
    part = table[table["target"] == target]
    return pd.Series(part[column].to_numpy(dtype=float), index=part["source"].to_numpy(),
                     name=column)


def _targets(truth: pd.DataFrame, targets: Iterable[str] | None) -> list[str]:
    """The given targets, or every target of the truth table in sorted order."""
    return sorted(truth["target"].unique()) if targets is None else list(targets)


# --- agreement of one ranking with the truth --------------------------------------------------


def _stat(value: float) -> float | None:
    """A statistic as a float, or None where scipy says NaN (undefined)."""
    v = float(value)
    return None if math.isnan(v) else v


def _names(index: Iterable) -> str:
    """Source names, tied ones joined by TIE_SEP in sorted order."""
    return TIE_SEP.join(sorted(map(str, index)))


def _nan_last(predicted: pd.Series) -> pd.Series:
    """``predicted`` with NaN scores replaced by a value below every real score (ranked last)."""
    if not predicted.isna().any():
        return predicted
    finite = predicted.dropna()
    return predicted.fillna(float(finite.min()) - 1.0 if len(finite) else 0.0)


def _correlations(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Kendall tau-b, weighted tau and Spearman rho; None when either side is constant."""
    if len(np.unique(truth)) < 2 or len(np.unique(predicted)) < 2:
        return dict.fromkeys(CORRELATIONS)
    return {
        "kendall_tau": _stat(kendalltau(truth, predicted).statistic),
        # rank=None: the weight of a source comes from its decreasing rank by the first argument,
        # the truth (ties broken by the prediction), under the default hyperbolic weigher. The
        # question is whether the sources that really transfer best are put first; scipy's
        # default rank=True would average in a ranking by the probe's own order as well.
        "weighted_tau": _stat(weightedtau(truth, predicted, rank=None).statistic),
        "spearman_rho": _stat(spearmanr(truth, predicted).statistic),
    }


def _regret(truth: pd.Series, predicted: pd.Series) -> tuple[float, pd.Index]:
    """Top-1 regret and the predicted top sources (aligned, NaN-free series).

    Regret = best truth - truth of the predicted top source; with several sources tied at the
    top of the prediction it is the mean over them (what picking one at random costs).
    """
    top = predicted.index[predicted.to_numpy() == predicted.max()]
    return float((truth.max() - truth.loc[top]).mean()), top


def _undefined(n_sources: int) -> dict:
    return {"n_sources": n_sources, **dict.fromkeys(METRICS), "recommended": None, "best": None}


def ranking_agreement(truth: pd.Series, predicted: pd.Series) -> dict:
    """Agreement of a predicted ranking with the truth for one target (indexes: source names).

    Only sources in both series count; sources with NaN truth are dropped, NaN predictions are
    ranked last. Returns n_sources, kendall_tau, weighted_tau, spearman_rho, top1_regret,
    recommended (predicted top source) and best (true best source); tied names are joined by
    ``|``. Fewer than 2 common sources: all None. A constant side: the correlations are None
    (undefined), the regret stays defined (a constant truth gives 0; a constant prediction gives
    the mean regret over all sources).
    """
    if not (truth.index.is_unique and predicted.index.is_unique):
        raise EvaluationError("A ranking names a source twice.", "Give one value per source.")
    truth = truth.dropna().astype(float)
    common = truth.index.intersection(predicted.index)
    if len(common) < 2:
        return _undefined(len(common))
    t, p = truth.loc[common], _nan_last(predicted.loc[common].astype(float))
    regret, top = _regret(t, p)
    best = t.index[t.to_numpy() == t.max()]
    return {"n_sources": len(common), **_correlations(t.to_numpy(), p.to_numpy()),
            "top1_regret": regret, "recommended": _names(top), "best": _names(best)}


# --- baselines --------------------------------------------------------------------------------


def random_expectation(truth: pd.Series) -> dict:
    """The expected agreement of a uniformly random ranking with ``truth`` (index: sources).

    A random ranking puts each source first with probability 1/n, so its expected top-1 regret is
    the mean over sources of (best - truth). The correlations are 0 by definition: a random order
    carries no association with the truth (each pair is concordant or discordant with equal
    probability). The value is the exact expectation, not a Monte-Carlo estimate. Same keys as
    :func:`ranking_agreement`, with recommended None.
    """
    t = truth.dropna().astype(float)
    if len(t) < 2:
        return _undefined(len(t))
    best = t.index[t.to_numpy() == t.max()]
    return {"n_sources": len(t), **dict.fromkeys(CORRELATIONS, 0.0),
            "top1_regret": float((t.max() - t).mean()), "recommended": None, "best": _names(best)}


def _score_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def best_on_average_scores(results: pd.DataFrame, targets: Iterable[str] | None = None,
                           include_self: bool = False) -> pd.DataFrame:
    """Scores of the "best on average" baseline (columns source, target, score).

    For target t the score of candidate s is the mean over the OTHER targets of the truth of
    (s, other target), each target counting once whatever its number of repeats. It never reads
    t's results (leave one target out), otherwise it would see the answer. Sources with no result
    on another target get NaN (ranked last). Candidates of t are the sources with a result for t.
    """
    truth = truth_table(results, include_self)
    wide = truth.pivot(index="source", columns="target", values="auc")
    rows = []
    for target in _targets(truth, targets):
        mean = wide.drop(columns=[target], errors="ignore").mean(axis=1)
        for source in truth.loc[truth["target"] == target, "source"]:
            rows.append({"source": source, "target": target, "score": mean.get(source, np.nan)})
    return _score_frame(rows)


def largest_source_scores(results: pd.DataFrame, sizes: Mapping[str, int],
                          targets: Iterable[str] | None = None,
                          include_self: bool = False) -> pd.DataFrame:
    """Scores of the "largest source" baseline: the number of training images of the source.

    Candidates of a target are the sources with a result for it; a source missing from ``sizes``
    gets NaN (ranked last). Columns source, target, score.
    """
    truth = truth_table(results, include_self)
    rows = [{"source": s, "target": target, "score": float(sizes[s]) if s in sizes else np.nan}
            for target in _targets(truth, targets)
            for s in truth.loc[truth["target"] == target, "source"]]
    return _score_frame(rows)


# --- trust in the ground truth ----------------------------------------------------------------


def pair_spread(results: pd.DataFrame, include_self: bool = False) -> pd.DataFrame:
    """Spread of the repeats per (source, target).

    Columns source, target, n_repeats (rows), then auc_mean, auc_std (ddof=1; NaN for a single
    repeat), auc_min, auc_max, and the same for transferability when ``results`` has it.
    """
    _require(results, RESULT_COLUMNS, "results")
    rows = drop_self(results, include_self)
    groups = rows.groupby(["source", "target"])
    out = groups.size().rename("n_repeats").to_frame()
    for metric in ["auc"] + (["transferability"] if "transferability" in rows.columns else []):
        stats = groups[metric].agg(["mean", "std", "min", "max"])  # pandas std: ddof=1
        out = out.join(stats.add_prefix(f"{metric}_"))
    return out.reset_index()


def _row_means(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries; NaN for a row without any."""
    present = ~np.isnan(values)
    counts = present.sum(axis=1)
    sums = np.where(present, values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(len(values), np.nan), where=counts > 0)


def _split_tau(values: np.ndarray, order: np.ndarray, statistic=kendalltau) -> float | None:
    """Kendall tau between the per-source means of two halves of the repeat columns.

    The first half holds floor(R/2) repeats, the second the rest. Sources without a repeat in
    one half are left out; None when fewer than 2 sources remain or a half is constant.
    """
    half = len(order) // 2
    a, b = _row_means(values[:, order[:half]]), _row_means(values[:, order[half:]])
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 2 or len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return None
    if np.array_equal(rankdata(a), rankdata(b)):
        return 1.0  # identical rankings; tau-b with ties can come out 1 - 1e-16 in floats
    return _stat(statistic(a, b).statistic)


def _target_ceiling(rows: pd.DataFrame, splits: int, rng: np.random.Generator) -> dict:
    """Split-half noise ceiling of one target's results (see :func:`noise_ceiling`)."""
    wide = rows.pivot_table(index="source", columns="repeat", values="auc", aggfunc="mean")
    values = wide.to_numpy(dtype=float)
    out = {"n_sources": len(wide), "n_repeats": wide.shape[1], "n_splits": 0,
           "noise_ceiling": None, "reason": None}
    if wide.shape[1] < 2:
        return {**out, "reason": "fewer than 2 repeats: nothing to compare the truth with"}
    if len(wide) < 2:
        return {**out, "reason": "fewer than 2 sources: no ranking"}
    if len(np.unique(values[~np.isnan(values)])) < 2:
        return {**out, "reason": "all sources tie in every repeat: no ranking to reproduce"}
    taus = [_split_tau(values, rng.permutation(values.shape[1])) for _ in range(splits)]
    taus = [t for t in taus if t is not None]
    if not taus:
        return {**out, "reason": "every split left a constant half or fewer than 2 sources"}
    return {**out, "n_splits": len(taus), "noise_ceiling": float(np.mean(taus))}


def noise_ceiling(results: pd.DataFrame, splits: int = 200, seed: int = 0,
                  include_self: bool = False) -> pd.DataFrame:
    """Split-half Kendall tau of the ground truth with itself, per target and pooled.

    For each target the repeats are split at random into two halves (floor(R/2) and the rest),
    the AUC is averaged per source within each half, and Kendall tau-b is taken between the two
    half-means across sources; the ceiling is the mean over ``splits`` splits drawn with
    ``numpy.random.default_rng(seed)``. It is 1 when the repeats agree exactly and falls as they
    scatter. Each half holds about half the repeats, so it understates the reliability of the
    full mean: a conservative ceiling. Columns: scope ('target' or 'pooled'), target (None when
    pooled), n_sources, n_repeats, n_splits (splits with a defined tau), noise_ceiling (NaN when
    undefined) and reason (why it is undefined). The pooled row is the mean over targets with a
    defined value.
    """
    _require(results, RESULT_COLUMNS, "results")
    rows = drop_self(results, include_self)
    rng = np.random.default_rng(seed)
    per_target = [{"scope": "target", "target": target,
                   **_target_ceiling(part, splits, rng)}
                  for target, part in sorted(rows.groupby("target"), key=lambda kv: kv[0])]
    defined = [r["noise_ceiling"] for r in per_target if r["noise_ceiling"] is not None]
    pooled = {"scope": "pooled", "target": None, "n_sources": None, "n_repeats": None,
              "n_splits": None, "noise_ceiling": float(np.mean(defined)) if defined else None,
              "reason": None if defined else "no target has a defined noise ceiling"}
    table = pd.DataFrame([*per_target, pooled], columns=list(CEILING_COLUMNS))
    counts = ["n_sources", "n_repeats", "n_splits"]
    return table.astype(dict.fromkeys(counts, "Int64") | {"noise_ceiling": float})


def transferability_ceiling(rows: pd.DataFrame, splits: int = 200, seed: int = 0
                            ) -> dict[str, float | None]:
    """Split-half noise ceiling of the Spearman rho that ``probes.correlation`` reports: per
    target and pooled over all pairs, the Spearman rho between the mean Eq. 1 transferability of
    two random halves of the repeats (as in :func:`noise_ceiling`), averaged over ``splits``.

    ``rows``: (source, target, repeat, transferability), one per repeat. A probe's rho against
    the truth cannot be expected to exceed the truth's agreement with itself. Keys: each target
    and 'pooled'; None where undefined (fewer than 2 repeats, fewer than 2 pairs or a constant
    half).
    """
    rng = np.random.default_rng(seed)

    def ceiling(part: pd.DataFrame) -> float | None:
        wide = part.pivot_table(index=["source", "target"], columns="repeat",
                                values="transferability", aggfunc="mean")
        values = wide.to_numpy(dtype=float)
        if values.shape[1] < 2 or len(values) < 2:
            return None
        rhos = [_split_tau(values, rng.permutation(values.shape[1]), spearmanr)
                for _ in range(splits)]
        rhos = [r for r in rhos if r is not None]
        return float(np.mean(rhos)) if rhos else None

    out = {str(t): ceiling(part) for t, part in sorted(rows.groupby("target"))}
    out["pooled"] = ceiling(rows) if len(rows) else None
    return out


# --- evaluation of probes and baselines -------------------------------------------------------


def evaluate_probes(results: pd.DataFrame, probe_scores: Mapping[str, pd.DataFrame],
                    sizes: Mapping[str, int], include_self: bool = False) -> pd.DataFrame:
    """Agreement of every probe and every baseline with the truth, one row per (method, target).

    The truth of (source, target) is the mean AUC over repeats; the targets are those of
    ``results``. Columns: method, kind ('probe' or 'baseline'), target, n_sources (common to
    truth and method), kendall_tau, weighted_tau, spearman_rho, top1_regret, recommended (the
    method's top source) and best (the true best source); see :func:`ranking_agreement`. The
    baselines are 'random' (expected values), 'best-on-average' and 'largest-source'.
    """
    clash = sorted(set(probe_scores) & set(BASELINES))
    if clash:
        raise EvaluationError(f"Probe name(s) {clash} clash with the baselines' names.",
                              "Rename the probe(s).")
    truth = truth_table(results, include_self)
    targets = _targets(truth, None)
    methods = [(name, "probe", _checked_scores(s, name, include_self))
               for name, s in probe_scores.items()]
    methods += [("best-on-average", "baseline",
                 best_on_average_scores(results, targets, include_self)),
                ("largest-source", "baseline",
                 largest_source_scores(results, sizes, targets, include_self))]
    rows = []
    for target in targets:
        t = _series(truth, target, "auc")
        rows.append({"method": "random", "kind": "baseline", "target": target,
                     **random_expectation(t)})
        rows += [{"method": name, "kind": kind, "target": target,
                  **ranking_agreement(t, _series(scores, target, "score"))}
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
