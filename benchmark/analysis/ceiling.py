"""How far the ground truth can be trusted: the spread of the repeats per pair and the
split-half noise ceiling (how well the truth agrees with a re-run of itself)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata, spearmanr

from benchmark.analysis.ranking import CEILING_COLUMNS, RESULT_COLUMNS, require_columns, stat_or_none, drop_self


def pair_spread(results: pd.DataFrame, include_self: bool = False) -> pd.DataFrame:
    """Spread of the repeats per (source, target).

    Columns source, target, n_repeats (rows), then auc_mean, auc_std (ddof=1; NaN for a single
    repeat), auc_min, auc_max, and the same for transferability when ``results`` has it.
    """
    require_columns(results, RESULT_COLUMNS, "results")
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
    return stat_or_none(statistic(a, b).statistic)


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
    require_columns(results, RESULT_COLUMNS, "results")
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

