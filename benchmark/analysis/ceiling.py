"""How far the ground truth can be trusted: the spread of the repeats per pair, and the noise
ceiling of every statistic the evaluation reports: how well a method could agree with a truth
measured with this much noise, on the same statistic as its scores (weighted tau against
weighted tau, Kendall tau against Kendall tau, the floor of the top-1 regret).

Per target (the sources being the "subjects" of classical test theory):

1. Split-half Kendall tau: the repeats are split into halves of floor(R/2) and ceil(R/2); the
   tau between the per-source means of the two halves, averaged over every DISTINCT split (one
   split for R = 2, three for R = 3 or 4; they are enumerated, never sampled).
2. Reliability of the R-repeat mean, rho_R: tau -> r = sin(pi tau / 2) (Greiner's relation,
   exact for a bivariate normal), then the model "source AUC = latent quality + independent
   noise of equal variance" solved for lambda = var(latent) / var(noise of one repeat) from
   r = sqrt(rho_a rho_b) with rho_m = m lambda / (1 + m lambda); rho_R = R lambda / (1 + R
   lambda). For a = b this is Spearman-Brown; unlike it, it stays exact for odd R.
3. The ceiling of a statistic is its expected value for the best possible predictor, one that
   knows each source's latent quality but not the fine-tuning noise: E[M(latent, truth)] with
   corr(latent, truth) = sqrt(rho_R) over the target's S candidates. For Kendall tau this is
   (2/pi) arcsin(sqrt(rho_R)) in closed form; for weighted tau, Spearman rho and the regret it
   is computed by Monte Carlo under the same normal model (:data:`N_CURVE` draws, seeded, on a
   grid of rho_R, interpolated). The regret floor is in units of the target's truth: the
   standardised floor times the spread (sd) of the sources' R-repeat means.

Pooled: the mean over targets with a value, with the evaluation's interval over targets
(:func:`benchmark.analysis.inference.mean_interval`): the targets' ceilings differ because
their noise does, and that spread is what the interval carries. A per-target ceiling is a point: with
R = 2 there is one split and nothing to resample. A split-half tau <= 0 gives reliability 0
(the truth is indistinguishable from noise); identical repeats give exactly 1.

A method at or above the ceiling (``above_ceiling`` in the evaluation) agrees with the truth as
well as the truth's own noise allows: more repeats, not a better method, would tell it apart
from a perfect one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata, spearmanr

from benchmark.analysis.batch_metrics import agreement_batch
from benchmark.analysis.inference import mean_interval
from benchmark.analysis.ranking import (METRICS, RESULT_COLUMNS, drop_self, require_columns,
                                        stat_or_none)

N_CURVE = 10_000     # Monte Carlo draws per grid point of the ceiling curves (se about 0.005)
GRID = np.linspace(0.0, 1.0, 51)
MAX_SPLITS = 500     # more distinct splits than this (R > 11) are sampled, seeded
CEILING_COLUMNS = ("scope", "target", "n_sources", "n_repeats", "n_splits", "split_half",
                   "reliability", *(f"{m}_ceiling" for m in METRICS),
                   *(f"{m}_ceiling_{e}" for m in METRICS for e in ("low", "high")), "reason")


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


# --- split halves -------------------------------------------------------------------------------


def distinct_splits(n_repeats: int, seed: int = 0) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every distinct split of ``n_repeats`` repeat columns into halves of floor(R/2) and the
    rest (a split and its mirror image count once); sampled (seeded) beyond MAX_SPLITS."""
    cols = range(n_repeats)
    half = n_repeats // 2
    out, seen = [], set()
    for a in itertools.combinations(cols, half):
        b = tuple(c for c in cols if c not in a)
        key = frozenset((a, b))
        if half and key not in seen:
            seen.add(key)
            out.append((a, b))
    if len(out) > MAX_SPLITS:
        pick = np.random.default_rng(seed).choice(len(out), MAX_SPLITS, replace=False)
        out = [out[i] for i in sorted(pick)]
    return out


def _row_means(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries; NaN for a row without any."""
    present = ~np.isnan(values)
    counts = present.sum(axis=1)
    sums = np.where(present, values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(len(values), np.nan), where=counts > 0)


def _half_agreement(values: np.ndarray, a, b, statistic=kendalltau) -> float | None:
    """``statistic`` between the per-row means of the repeat columns ``a`` and ``b``; rows
    without a value in one half are left out; None when < 2 rows remain or a half is constant."""
    x, y = _row_means(values[:, list(a)]), _row_means(values[:, list(b)])
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return None
    if np.array_equal(rankdata(x), rankdata(y)):
        return 1.0  # identical rankings; tau-b with ties can come out 1 - 1e-16 in floats
    return stat_or_none(statistic(x, y).statistic)


def split_half(values: np.ndarray, statistic=kendalltau) -> tuple[float | None, int]:
    """Mean split-half agreement over the distinct splits of the columns of ``values`` (rows:
    sources or pairs) and the number of splits with a defined value."""
    got = [v for a, b in distinct_splits(values.shape[1])
           if (v := _half_agreement(values, a, b, statistic)) is not None]
    return (float(np.mean(got)) if got else None), len(got)


# --- from split-half agreement to the ceiling ---------------------------------------------------


def reliability_of_mean(r, a, b, n):
    """Reliability of the mean of ``n`` repeats given the correlation ``r`` of the means of two
    disjoint halves of ``a`` and ``b`` repeats (see the module docstring). r <= 0 gives 0,
    r >= 1 gives 1. Arrays broadcast."""
    r, a, b, n = (np.asarray(v, dtype=float) for v in (r, a, b, n))
    r2 = np.clip(r, 0.0, 1.0) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = (r2 * (a + b) + np.sqrt(r2 * r2 * (a + b) ** 2 + 4 * a * b * (1 - r2) * r2)) / (
            2 * a * b * (1 - r2))
        rel = n * lam / (1 + n * lam)
    rel = np.where(r >= 1, 1.0, np.where(r <= 0, 0.0, rel))
    return np.where(np.isnan(r), np.nan, rel)


def reliability(split_half_tau, n_repeats):
    """rho_R from the split-half Kendall tau between means of floor(R/2) and ceil(R/2) repeats;
    NaN where tau is NaN or R < 2. Arrays broadcast."""
    tau = np.asarray(split_half_tau, dtype=float)
    n = np.asarray(n_repeats, dtype=float)
    a = np.floor(n / 2)
    rel = reliability_of_mean(np.sin(np.pi * tau / 2), a, n - a, n)
    return np.where(np.isnan(tau) | (n < 2), np.nan, rel)


def kendall_ceiling(rel):
    """The Kendall tau ceiling (2/pi) arcsin(sqrt(rho_R)); exactly 1 at rho_R = 1."""
    rel = np.asarray(rel, dtype=float)
    with np.errstate(invalid="ignore"):
        c = (2 / np.pi) * np.arcsin(np.sqrt(np.clip(rel, 0, 1)))
    return np.where(rel >= 1, 1.0, c)


def ceiling_curves(n_sources: int, seed: int = 0) -> dict[str, np.ndarray]:
    """E[M(latent, truth)] on :data:`GRID` of rho_R for S = ``n_sources`` candidates, per
    metric (regret standardised to truth sd 1); common random numbers over the grid, so each
    curve is smooth and exact at rho_R = 1 (the latent is the truth)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N_CURVE, n_sources))
    e = rng.standard_normal((N_CURVE, n_sources))
    out = {m: np.empty(len(GRID)) for m in METRICS}
    for g, rel in enumerate(GRID):
        truth = math.sqrt(rel) * z + math.sqrt(1 - rel) * e
        res = agreement_batch(truth, z, np.ones(z.shape, dtype=bool))
        for m in METRICS:
            out[m][g] = float(np.nanmean(res[m]))
    out["kendall_tau"] = kendall_ceiling(GRID)
    out["top1_regret"][-1] = 0.0
    return out


def _target_row(target: str, part: pd.DataFrame, curves: dict) -> dict:
    """One target's split-half tau, reliability and ceilings (see the module docstring)."""
    wide = part.pivot_table(index="source", columns="repeat", values="auc", aggfunc="mean")
    values = wide.to_numpy(dtype=float)
    row = {"scope": "target", "target": target, "n_sources": len(wide),
           "n_repeats": wide.shape[1], "n_splits": 0, "split_half": np.nan,
           "reliability": np.nan, "reason": None}
    why = (None if wide.shape[1] >= 2 else "fewer than 2 repeats: nothing to compare the truth with")
    why = why or (None if len(wide) >= 2 else "fewer than 2 sources: no ranking")
    if why is None and len(np.unique(values[~np.isnan(values)])) < 2:
        why = "all sources tie in every repeat: no ranking to reproduce"
    tau, n_splits = split_half(values) if why is None else (None, 0)
    if why is None and tau is None:
        why = "every split left a constant half or fewer than 2 sources"
    if why:
        return {**row, "reason": why, **{f"{m}_ceiling": np.nan for m in METRICS}}
    rel = float(reliability(tau, wide.shape[1]))
    if len(wide) not in curves:
        curves[len(wide)] = ceiling_curves(len(wide))
    curve = curves[len(wide)]
    ceil = {f"{m}_ceiling": float(np.interp(rel, GRID, curve[m])) for m in METRICS}
    ceil["kendall_tau_ceiling"] = float(kendall_ceiling(rel))
    spread = float(np.nanstd(_row_means(values), ddof=1))
    ceil["top1_regret_ceiling"] *= spread
    return {**row, "n_splits": n_splits, "split_half": tau, "reliability": rel, **ceil}


def noise_ceiling(results: pd.DataFrame, include_self: bool = False, seed: int = 0
                  ) -> pd.DataFrame:
    """The noise ceiling of every statistic, per target and pooled (columns
    :data:`CEILING_COLUMNS`; per-target rows have no interval, the pooled row has the
    evaluation's interval over targets, seeded; reason says why a value is undefined)."""
    require_columns(results, RESULT_COLUMNS, "results")
    rows = drop_self(results, include_self).dropna(subset=["auc"])
    curves: dict[int, dict] = {}
    per_target = [_target_row(t, part, curves)
                  for t, part in sorted(rows.groupby("target"), key=lambda kv: kv[0])]
    pooled = {"scope": "pooled", "target": None, "n_sources": None, "n_repeats": None,
              "n_splits": None}
    table = pd.DataFrame(per_target, columns=list(CEILING_COLUMNS))
    for col in ("split_half", "reliability"):
        pooled[col] = table[col].mean() if table[col].notna().any() else np.nan
    cap = float(rows.groupby("target")["auc"].agg(lambda a: a.max() - a.min()).max())
    for i, m in enumerate(METRICS):
        iv = mean_interval(table[f"{m}_ceiling"], m, np.random.default_rng([seed, i]), cap)
        pooled |= {f"{m}_ceiling": iv.mean, f"{m}_ceiling_low": iv.low,
                   f"{m}_ceiling_high": iv.high}
    pooled["reason"] = (None if table["kendall_tau_ceiling"].notna().any()
                        else "no target has a defined noise ceiling")
    table = pd.concat([table, pd.DataFrame([pooled], columns=list(CEILING_COLUMNS))],
                      ignore_index=True)
    counts = ["n_sources", "n_repeats", "n_splits"]
    floats = [c for c in CEILING_COLUMNS if c not in (*counts, "scope", "target", "reason")]
    return table.astype(dict.fromkeys(counts, "Int64") | dict.fromkeys(floats, float))


def transferability_ceiling(rows: pd.DataFrame) -> dict[str, float | None]:
    """Split-half noise ceiling of the Spearman rho that ``probes.correlation`` reports: per
    target and pooled over all pairs, the Spearman rho between the mean Eq. 1 transferability
    of the two halves of the repeats, averaged over the distinct splits.

    ``rows``: (source, target, repeat, transferability), one per repeat. Keys: each target and
    'pooled'; None where undefined (fewer than 2 repeats, fewer than 2 pairs, a constant half).
    """
    def ceiling(part: pd.DataFrame) -> float | None:
        wide = part.pivot_table(index=["source", "target"], columns="repeat",
                                values="transferability", aggfunc="mean")
        values = wide.to_numpy(dtype=float)
        if values.shape[1] < 2 or len(values) < 2:
            return None
        return split_half(values, spearmanr)[0]

    out = {str(t): ceiling(part) for t, part in sorted(rows.groupby("target"))}
    out["pooled"] = ceiling(rows) if len(rows) else None
    return out

