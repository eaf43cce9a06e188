"""The baselines a method must beat to be useful: a random ranking (its permutation null,
:mod:`benchmark.analysis.nulls`), the source best on average over the other targets, and the
static ranking by source size (Singh, Hess & Vanschoren 2026, "How not to benchmark your SITE
metric": one list for every target, the largest source first). This module holds the one
best-on-average and the one static ranking that the evaluation, ``bench recommend`` and the
learned ranker's comparison all use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from benchmark.analysis.ranking import SCORE_COLUMNS, target_list, truth_table

RANDOM, BEST_ON_AVERAGE, STATIC_SIZE = "random", "best-on-average", "static-size"


def _score_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def mean_over_other_targets(truth: pd.DataFrame, target: str | None) -> pd.Series:
    """Per source: the mean of its truth (``truth``: source, target, auc; one row per pair)
    over the targets other than ``target``, each target counting once whatever its number of
    repeats; NaN for a source with no other target. It never reads ``target``'s results."""
    wide = truth.pivot_table(index="source", columns="target", values="auc", aggfunc="mean")
    return wide.drop(columns=[target], errors="ignore").mean(axis=1)


def best_on_average_scores(results: pd.DataFrame, targets: Iterable[str] | None = None,
                           include_self: bool = False) -> pd.DataFrame:
    """Scores of the "best on average" baseline (columns source, target, score).

    For target t the score of candidate s is :func:`mean_over_other_targets` (leave one target
    out: it never sees t's answer). Sources with no result on another target get NaN (ranked
    last). Candidates of t are the sources with a result for t.
    """
    truth = truth_table(results, include_self)
    rows = []
    for target in target_list(truth, targets):
        mean = mean_over_other_targets(truth, target)
        for source in truth.loc[truth["target"] == target, "source"]:
            rows.append({"source": source, "target": target, "score": mean.get(source, np.nan)})
    return _score_frame(rows)


def size_score(sizes: Mapping[str, float], source: str) -> float:
    """The static ranking's score of ``source``: log10 of its size, NaN when unknown."""
    return float(np.log10(sizes[source])) if sizes.get(source, 0) > 0 else np.nan


def static_size_scores(results: pd.DataFrame, sizes: Mapping[str, float],
                       targets: Iterable[str] | None = None,
                       include_self: bool = False) -> pd.DataFrame:
    """Scores of the static ranking (the "static-size" baseline): log10 of the source's size
    (training images; for a hub model its parameter count, given in the same mapping), the same
    list for every target, never looking at it. The log keeps the ranking of the size itself
    and puts the gaps on a scale a fidelity check is not dominated by the largest source on.

    Candidates of a target are the sources with a result for it; a source missing from ``sizes``
    gets NaN (ranked last). Columns source, target, score.
    """
    truth = truth_table(results, include_self)
    rows = [{"source": s, "target": target, "score": size_score(sizes, s)}
            for target in target_list(truth, targets)
            for s in truth.loc[truth["target"] == target, "source"]]
    return _score_frame(rows)


def baseline_score_tables(results: pd.DataFrame, sizes: Mapping[str, float],
                          include_self: bool = False) -> dict[str, pd.DataFrame]:
    """Score tables of the baselines that have scores: best-on-average and static-size."""
    return {BEST_ON_AVERAGE: best_on_average_scores(results, None, include_self),
            STATIC_SIZE: static_size_scores(results, sizes, None, include_self)}
