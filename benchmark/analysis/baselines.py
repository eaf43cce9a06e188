"""The baselines a method must beat to be useful: a random ranking (exact expectation), the
source best on average over the other targets, and the static ranking by source size (Singh,
Hess & Vanschoren 2026, "How not to benchmark your SITE metric": one list for every target,
the largest source first)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from benchmark.analysis.ranking import (CORRELATIONS, SCORE_COLUMNS, tied_names, target_list,
                                        undefined_row, truth_table)


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
        return undefined_row(len(t))
    best = t.index[t.to_numpy() == t.max()]
    return {"n_sources": len(t), **dict.fromkeys(CORRELATIONS, 0.0),
            "top1_regret": float((t.max() - t).mean()), "recommended": None, "best": tied_names(best)}


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
    for target in target_list(truth, targets):
        mean = wide.drop(columns=[target], errors="ignore").mean(axis=1)
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

