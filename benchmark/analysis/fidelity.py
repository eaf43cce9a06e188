"""Checks from Singh, Hess & Vanschoren (ICLR 2026), "How NOT to benchmark your SITE metric":

(a) fidelity: does a gap in a method's scores mean a gap in fine-tuning AUC? A ranking can be
    right while its scores say nothing about how much better one source is (and vice versa).
    Fidelity is the Pearson correlation between score gaps and true AUC gaps over all pairs of
    candidate sources within a target, per target and pooled over targets, with bootstrap
    intervals (targets and repeats resampled as in :mod:`benchmark.analysis.intervals`; scores
    fixed).
(b) leave-largest-out: the paper finds that metrics look good because one large model wins
    everywhere; removing the largest models makes them "crater". Here the largest source (by
    training images) is removed from every target's candidates and every figure recomputed.
(c) the static ranker: sources ranked by size alone, the same list for every target; the paper
    finds it beats most published metrics. :func:`static_size_scores` gives its score table
    (:mod:`benchmark.analysis.baselines`; the evaluation's "static-size" baseline).

Each pair of sources is counted in both orientations (s - s', and s' - s), so the gaps are
symmetric around 0 and the result does not depend on the order of the sources; it equals the
uncentred correlation of the gaps over unordered pairs. Pooled over targets, raw score gaps of
different targets are put on one axis: a method whose score scale differs between targets loses
fidelity for it, which is the point (a practitioner reads the gaps at face value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.baselines import best_on_average_scores, static_size_scores
from benchmark.analysis.batch_metrics import draw_counts, result_arrays
from benchmark.analysis.intervals import (bootstrap_evaluation, percentile_interval,
                                          pooled_intervals, score_arrays)
from benchmark.analysis.ranking import METRICS, EvaluationError, truth_table

FIDELITY_COLUMNS = ("method", "scope", "target", "n_pairs", "fidelity", "fidelity_low",
                    "fidelity_high")


def gap_sums(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sums over ordered pairs of masked sources of dx*dy, dx*dx, dy*dy and the number of
    unordered pairs: [..., 4]. x: truth, y: scores [..., S]."""
    x0, y0 = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
    pair = mask[..., :, None] & mask[..., None, :]
    dx = (x0[..., :, None] - x0[..., None, :]) * pair
    dy = (y0[..., :, None] - y0[..., None, :]) * pair
    n = mask.sum(-1)
    return np.stack([(dx * dy).sum((-2, -1)), (dx * dx).sum((-2, -1)),
                     (dy * dy).sum((-2, -1)), n * (n - 1) / 2], axis=-1)


def _corr(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sums[..., 0] / np.sqrt(sums[..., 1] * sums[..., 2])
    return np.where((sums[..., 1] > 0) & (sums[..., 2] > 0), np.clip(r, -1, 1), np.nan)


def fidelity(results: pd.DataFrame, method_scores: Mapping[str, pd.DataFrame],
             n_boot: int = 1000, seed: int = 0, level: float = 0.95,
             include_self: bool = False) -> pd.DataFrame:
    """Fidelity of each method's scores (see the module docstring), per target and pooled.

    Candidates of a target: sources with a truth and a non-NaN score. Columns method, scope
    ('target' or 'pooled'), target (None when pooled), n_pairs (unordered pairs of candidates),
    fidelity, fidelity_low, fidelity_high (percentile interval; per target from resampling that
    target's repeats, pooled from resampling targets and repeats). NaN where a side is constant
    or there is no pair.
    """
    data = result_arrays(results, include_self)
    n_t, r_max = len(data.targets), data.dev.shape[-1]
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, n_t, size=(n_boot, n_t))
    counts = draw_counts(rng, data.n_repeats[slots], r_max)
    fixed = np.broadcast_to(np.arange(n_t), (n_boot, n_t))
    t_counts = draw_counts(rng, data.n_repeats[fixed], r_max)
    all_t = np.arange(n_t)[None, :]
    truth_point = data.truth(all_t, data.full_counts(all_t))[0]
    truth_pooled, truth_target = data.truth(slots, counts), data.truth(fixed, t_counts)
    rows = []
    for name, table in method_scores.items():
        y, present = score_arrays(data, table, name, include_self)
        ok = present & ~np.isnan(y)
        point = gap_sums(truth_point, y, ok & ~np.isnan(truth_point))          # [T, 4]
        draws_p = gap_sums(truth_pooled, y[slots], ok[slots] & ~np.isnan(truth_pooled))
        draws_t = gap_sums(truth_target, y[fixed], ok[fixed] & ~np.isnan(truth_target))
        low_t, high_t = percentile_interval(_corr(draws_t).T, level)            # [T]
        for i, t in enumerate(data.targets):
            rows.append({"method": name, "scope": "target", "target": t,
                         "n_pairs": int(point[i, 3]), "fidelity": float(_corr(point[i])),
                         "fidelity_low": low_t[i], "fidelity_high": high_t[i]})
        low, high = percentile_interval(_corr(draws_p.sum(1)), level)
        rows.append({"method": name, "scope": "pooled", "target": None,
                     "n_pairs": int(point[:, 3].sum()), "fidelity": float(_corr(point.sum(0))),
                     "fidelity_low": float(low), "fidelity_high": float(high)})
    return pd.DataFrame(rows, columns=list(FIDELITY_COLUMNS))


def baseline_score_tables(results: pd.DataFrame, sizes: Mapping[str, float],
                          include_self: bool = False) -> dict[str, pd.DataFrame]:
    """Score tables of the baselines that have scores (best-on-average on the full data,
    static-size), e.g. to check their fidelity beside the probes'."""
    return {"best-on-average": best_on_average_scores(results, None, include_self),
            "static-size": static_size_scores(results, sizes, None, include_self)}


def largest_sources(results: pd.DataFrame, sizes: Mapping[str, float],
                    include_self: bool = False) -> list[str]:
    """The candidate source(s) of ``results`` with the most training images in ``sizes``
    (several only when tied); sources missing from ``sizes`` are not considered."""
    truth = truth_table(results, include_self)
    known = {s: float(sizes[s]) for s in truth["source"].unique() if s in sizes}
    if not known:
        raise EvaluationError("No candidate source has a size.",
                              "Give sizes for the sources of the results.")
    top = max(known.values())
    return sorted(s for s, v in known.items() if v == top)


def without_sources(table: pd.DataFrame, sources: Sequence[str]) -> pd.DataFrame:
    """The rows of a results or scores table whose source is not in ``sources`` (the same
    datasets stay as targets)."""
    return table[~table["source"].isin(list(sources))]


def leave_largest_out(results: pd.DataFrame, probe_scores: Mapping[str, pd.DataFrame],
                      sizes: Mapping[str, float], n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95, include_self: bool = False, **kwargs
                      ) -> pd.DataFrame:
    """Every method's pooled figures with and without the largest source as a candidate.

    One row per method: method, kind, left_out (the removed source(s), '|'-joined), and for
    each metric <metric>_all (full candidate sets, as ``summarize``), <metric>_without,
    <metric>_without_low, <metric>_without_high (bootstrap as :func:`bootstrap_evaluation`)
    and <metric>_change (without - all; for top1_regret a rise is a loss). The baselines are
    recomputed on the reduced sets (static-size then puts the next largest first). ``kwargs`` go
    to :func:`bootstrap_evaluation`.
    """
    left = largest_sources(results, sizes, include_self)
    full = pooled_intervals(bootstrap_evaluation(results, probe_scores, sizes, 1, seed, level,
                                                 include_self, **kwargs))
    reduced = pooled_intervals(bootstrap_evaluation(
        without_sources(results, left), {k: without_sources(v, left)
                                         for k, v in probe_scores.items()},
        sizes, n_boot, seed, level, include_self, **kwargs))
    rows = []
    for (_, a), (_, b) in zip(full.iterrows(), reduced.iterrows()):
        row = {"method": a["method"], "kind": a["kind"], "left_out": "|".join(left)}
        for m in METRICS:
            row |= {f"{m}_all": a[m], f"{m}_without": b[m], f"{m}_without_low": b[f"{m}_low"],
                    f"{m}_without_high": b[f"{m}_high"], f"{m}_change": b[m] - a[m]}
        rows.append(row)
    return pd.DataFrame(rows)
