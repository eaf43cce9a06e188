"""Agreement of one predicted ranking of candidate sources with the ground truth, for one
target: Kendall tau, weighted Kendall tau, Spearman rho and top-1 regret; and the checks and
conventions every evaluation shares (a target is never its own candidate; undefined
statistics are None, never an exception)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr, weightedtau

from registry.errors import BenchError

RESULT_COLUMNS = ("source", "target", "repeat", "auc")
SCORE_COLUMNS = ("source", "target", "score")
CORRELATIONS = ("kendall_tau", "weighted_tau", "spearman_rho")
METRICS = (*CORRELATIONS, "top1_regret")
TIE_SEP = "|"  # joins the names of tied sources in `recommended` and `best`


class EvaluationError(BenchError):
    """Input tables that cannot be evaluated (missing columns, duplicate pairs, name clashes)."""


def require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
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
    require_columns(results, RESULT_COLUMNS, "results")
    rows = drop_self(results, include_self)
    truth = rows.groupby(["source", "target"], as_index=False)["auc"].mean()
    return truth.dropna(subset=["auc"]).reset_index(drop=True)


def checked_scores(scores: pd.DataFrame, name: str, include_self: bool) -> pd.DataFrame:
    """``scores`` without self pairs, after checking its columns and that pairs are unique."""
    require_columns(scores, SCORE_COLUMNS, f"scores of {name!r}")
    rows = drop_self(scores, include_self)
    dup = rows.duplicated(["source", "target"])
    if dup.any():
        first = rows[dup].iloc[0]
        raise EvaluationError(f"The scores of {name!r} have more than one row for source "
                              f"{first['source']!r} and target {first['target']!r}.",
                              "Give one score per (source, target) pair.")
    return rows


def series_of(table: pd.DataFrame, target: str, column: str) -> pd.Series:
    """``column`` of ``table``'s rows for ``target``, indexed by source."""
    part = table[table["target"] == target]
    return pd.Series(part[column].to_numpy(dtype=float), index=part["source"].to_numpy(),
                     name=column)


def target_list(truth: pd.DataFrame, targets: Iterable[str] | None) -> list[str]:
    """The given targets, or every target of the truth table in sorted order."""
    return sorted(truth["target"].unique()) if targets is None else list(targets)


def stat_or_none(value: float) -> float | None:
    """A statistic as a float, or None where scipy says NaN (undefined)."""
    v = float(value)
    return None if math.isnan(v) else v


def tied_names(index: Iterable) -> str:
    """Source names, tied ones joined by TIE_SEP in sorted order."""
    return TIE_SEP.join(sorted(map(str, index)))


def _nan_last(predicted: pd.Series) -> pd.Series:
    """``predicted`` with NaN scores replaced by a value below every real score (ranked last)."""
    if not predicted.isna().any():
        return predicted
    return predicted.fillna(float(predicted.min()) - 1.0)


def aligned(truth: pd.Series, predicted: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """The sources a prediction is judged on for one target, truth and prediction aligned:
    sources in both series with a truth; NaN predictions ranked last. None when fewer than 2
    sources remain or the method scored none of them (no score is no ranking: the target is
    left out of the method's figures, not given a random pick's)."""
    if not (truth.index.is_unique and predicted.index.is_unique):
        raise EvaluationError("A ranking names a source twice.", "Give one value per source.")
    truth = truth.dropna().astype(float)
    common = truth.index.intersection(predicted.index)
    p = predicted.loc[common].astype(float)
    if len(common) < 2 or p.isna().all():
        return None
    return truth.loc[common], _nan_last(p)


def _correlations(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Kendall tau-b, weighted tau and Spearman rho; None when either side is constant."""
    if len(np.unique(truth)) < 2 or len(np.unique(predicted)) < 2:
        return dict.fromkeys(CORRELATIONS)
    return {
        "kendall_tau": stat_or_none(kendalltau(truth, predicted).statistic),
        # rank=None: the weight of a source comes from its decreasing rank by the first argument,
        # the truth (ties broken by the prediction), under the default hyperbolic weigher. The
        # question is whether the sources that really transfer best are put first; scipy's
        # default rank=True would average in a ranking by the probe's own order as well.
        "weighted_tau": stat_or_none(weightedtau(truth, predicted, rank=None).statistic),
        "spearman_rho": stat_or_none(spearmanr(truth, predicted).statistic),
    }


def _regret(truth: pd.Series, predicted: pd.Series) -> tuple[float, pd.Index]:
    """Top-1 regret and the predicted top sources (aligned, NaN-free series).

    Regret = best truth - truth of the predicted top source; with several sources tied at the
    top of the prediction it is the mean over them (what picking one at random costs).
    """
    top = predicted.index[predicted.to_numpy() == predicted.max()]
    return float((truth.max() - truth.loc[top]).mean()), top


def undefined_row(n_sources: int) -> dict:
    return {"n_sources": n_sources, **dict.fromkeys(METRICS), "recommended": None, "best": None}


def ranking_agreement(truth: pd.Series, predicted: pd.Series) -> dict:
    """Agreement of a predicted ranking with the truth for one target (indexes: source names).

    Judged on the sources of :func:`aligned`. Returns n_sources, kendall_tau, weighted_tau,
    spearman_rho, top1_regret, recommended (predicted top source) and best (true best source);
    tied names are joined by ``|``. Fewer than 2 common sources, or no score for any of them:
    all None. A constant side: the correlations are None (undefined), the regret stays defined
    (a constant truth gives 0; a constant prediction gives the mean regret over all sources).
    """
    pair = aligned(truth, predicted)
    if pair is None:
        return undefined_row(len(truth.dropna().index.intersection(predicted.index)))
    t, p = pair
    regret, top = _regret(t, p)
    best = t.index[t.to_numpy() == t.max()]
    return {"n_sources": len(t), **_correlations(t.to_numpy(), p.to_numpy()),
            "top1_regret": regret, "recommended": tied_names(top), "best": tied_names(best)}
