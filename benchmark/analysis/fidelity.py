"""Fidelity (Singh, Hess & Vanschoren, ICLR 2026, "How NOT to benchmark your SITE metric"):
does a gap in a method's scores mean a gap in fine-tuning AUC? A ranking can be right while its
scores say nothing about how much better one source is (and vice versa).

Fidelity is the Pearson correlation between score gaps and true AUC gaps over all pairs of
candidate sources within a target, per target and pooled over targets. Each pair of sources is
counted in both orientations (s - s', and s' - s), so the gaps are symmetric around 0 and the
result does not depend on the order of the sources; it equals the uncentred correlation of the
gaps over unordered pairs. Pooled over targets, raw score gaps of different targets are put on
one axis: a method whose score scale differs between targets loses fidelity for it, which is
the point (a practitioner reads the gaps at face value). The pooled figure is a ratio of sums,
no mean over targets, so it has the delete-one-target jackknife t-interval
(:func:`benchmark.analysis.inference.jackknife_interval`), whose coverage was not measured; a
per-target figure is a point.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from benchmark.analysis.inference import jackknife_interval
from benchmark.analysis.ranking import checked_scores, series_of, target_list, truth_table

FIDELITY_COLUMNS = ("method", "scope", "target", "n_pairs", "fidelity", "fidelity_low",
                    "fidelity_high")


def gap_sums(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sums over ordered pairs of sources of dx*dy, dx*dx, dy*dy and the number of unordered
    pairs, for one target: x the truth, y the scores (aligned, no NaN)."""
    dx = x[:, None] - x[None, :]
    dy = y[:, None] - y[None, :]
    n = len(x)
    return np.array([(dx * dy).sum(), (dx * dx).sum(), (dy * dy).sum(), n * (n - 1) / 2])


def gap_correlation(sums: np.ndarray) -> float:
    """The correlation of a (summed) :func:`gap_sums`; NaN where a side has no gap."""
    if sums[1] <= 0 or sums[2] <= 0:
        return float("nan")
    return float(np.clip(sums[0] / np.sqrt(sums[1] * sums[2]), -1.0, 1.0))


def _target_sums(truth: pd.DataFrame, scores: pd.DataFrame, target: str) -> np.ndarray:
    t = series_of(truth, target, "auc").dropna()
    p = series_of(scores, target, "score").dropna()
    common = t.index.intersection(p.index)
    return gap_sums(t.loc[common].to_numpy(), p.loc[common].to_numpy())


def fidelity(results: pd.DataFrame, method_scores: Mapping[str, pd.DataFrame],
             include_self: bool = False) -> pd.DataFrame:
    """Fidelity of each method's scores, per target and pooled (columns FIDELITY_COLUMNS).

    Candidates of a target: sources with a truth and a non-NaN score. scope 'target' rows have
    no interval; the 'pooled' row (target None) has the jackknife interval over the targets
    that have a pair. NaN where a side is constant or there is no pair.
    """
    truth = truth_table(results, include_self)
    targets = target_list(truth, None)
    rows = []
    for name, table in method_scores.items():
        scores = checked_scores(table, name, include_self)
        sums = np.array([_target_sums(truth, scores, t) for t in targets]).reshape(-1, 4)
        for t, s in zip(targets, sums):
            rows.append({"method": name, "scope": "target", "target": t,
                         "n_pairs": int(s[3]), "fidelity": gap_correlation(s),
                         "fidelity_low": np.nan, "fidelity_high": np.nan})
        used = sums[sums[:, 3] > 0]
        iv = jackknife_interval(used, lambda rows_: gap_correlation(rows_.sum(0)))
        rows.append({"method": name, "scope": "pooled", "target": None,
                     "n_pairs": int(sums[:, 3].sum()), "fidelity": iv.mean,
                     "fidelity_low": iv.low, "fidelity_high": iv.high})
    return pd.DataFrame(rows, columns=list(FIDELITY_COLUMNS))
