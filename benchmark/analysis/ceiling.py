"""How far the ground truth can be trusted: the spread of the repeats per pair, the split-half
noise ceiling (how well the truth agrees with a re-run of itself), and that ceiling corrected to
the number of repeats the truth averages, with bootstrap intervals.

The correction (classical test theory, per target, the sources being the "subjects"):

1. Split-half tau -> Pearson-like r by Greiner's relation r = sin(pi * tau / 2) (exact for a
   bivariate normal; Kendall's tau is used because that is the statistic the benchmark
   reports and it is robust with few sources).
2. Each source's AUC in one repeat is its latent transfer quality plus independent noise of
   equal variance; lambda = var(latent) / var(noise of one repeat). The mean of m repeats has
   reliability rho_m = m*lambda / (1 + m*lambda), and the correlation of the means of two
   disjoint halves of sizes a and b is r = sqrt(rho_a * rho_b). Solving for lambda:
   ab(1 - r^2) lambda^2 - r^2 (a + b) lambda - r^2 = 0 (the positive root). For a = b this is
   the Spearman-Brown formula rho_R = 2r / (1 + r); unlike plugging halves of R/2 into it, it
   stays exact for odd R (R = 3 splits 1 + 2, the usual case here).
3. rho_R = R*lambda / (1 + R*lambda): the reliability of the R-repeat mean, the truth.
4. No predictor that knows the latent quality perfectly, but not the fine-tuning noise, can
   correlate with the observed R-mean better than sqrt(rho_R) (the reliability index); mapped
   back to Kendall's tau: ceiling = (2 / pi) * arcsin(sqrt(rho_R)).

A split-half tau <= 0 gives reliability 0 and ceiling 0 (the truth is indistinguishable from
noise); a split-half tau of 1 gives exactly 1. Assumptions: equal noise variance across
sources of a target, near-normal scores; with few sources the split-half value is itself noisy,
which the bootstrap interval shows. The per-target correction uses the target's number of
repeat columns R (sources with missing repeats average fewer).

Bootstrap: targets with replacement and, inside each drawn target, the repeats. Duplicated
repeats must never land in both halves (that would inflate the agreement), so each resample
first splits the target's repeat columns at random into halves and then resamples with
replacement WITHIN each half; the split-half tau of a drawn target is averaged over
``splits_per_draw`` such splits, corrected with the target's R, and the pooled figure is the
mean over the drawn targets. Per-target intervals resample only that target's repeats; they are
NaN for a target with 2 repeats (each half is a single repeat, so nothing can vary: a [x, x]
interval would claim a certainty the data do not have); its uncertainty shows only in the
pooled interval, through the resampling of targets. With R = 3 the repeat level is coarse (a
half of 2 drawn as one repeat twice is less reliable than the correction assumes, so the lower
bound leans low). With identical repeats every half-mean equals the truth bit for bit, every
tau is 1 and the interval is [1, 1].
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata, spearmanr

from benchmark.analysis.batch_metrics import ResultArrays, kendall_batch, result_arrays
from benchmark.analysis.intervals import nanmean, percentile_interval
from benchmark.analysis.ranking import (CEILING_COLUMNS, RESULT_COLUMNS, EvaluationError,
                                        drop_self, require_columns, stat_or_none)

CORRECTED_COLUMNS = ("scope", "target", "n_sources", "n_repeats", "n_splits", "split_half",
                     "split_half_low", "split_half_high", "noise_ceiling", "noise_ceiling_low",
                     "noise_ceiling_high", "reason")


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


def reliability_of_mean(r, a, b, n):
    """Reliability of the mean of ``n`` repeats given the correlation ``r`` of the means of two
    disjoint halves of ``a`` and ``b`` repeats (classical test theory, see the module
    docstring). r <= 0 gives 0, r >= 1 gives 1. Arrays broadcast."""
    r, a, b, n = (np.asarray(v, dtype=float) for v in (r, a, b, n))
    r2 = np.clip(r, 0.0, 1.0) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = (r2 * (a + b) + np.sqrt(r2 * r2 * (a + b) ** 2 + 4 * a * b * (1 - r2) * r2)) / (
            2 * a * b * (1 - r2))
        rel = n * lam / (1 + n * lam)
    rel = np.where(r >= 1, 1.0, np.where(r <= 0, 0.0, rel))
    return np.where(np.isnan(r), np.nan, rel)


def corrected_ceiling(split_half_tau, n_repeats):
    """The ceiling of Kendall's tau against the mean of ``n_repeats`` repeats, from the
    split-half tau between means of floor(R/2) and ceil(R/2) repeats:
    (2/pi) arcsin(sqrt(rho_R)), rho_R from :func:`reliability_of_mean` at r = sin(pi tau / 2).
    NaN where tau is NaN or R < 2; exactly 1 where tau is 1. Arrays broadcast."""
    tau = np.asarray(split_half_tau, dtype=float)
    n = np.asarray(n_repeats, dtype=float)
    a = np.floor(n / 2)
    r = np.sin(np.pi * tau / 2)
    rel = reliability_of_mean(r, a, n - a, n)
    with np.errstate(invalid="ignore"):
        c = np.where(rel >= 1, 1.0, (2 / np.pi) * np.arcsin(np.sqrt(np.clip(rel, 0, 1))))
    return np.where(np.isnan(tau) | (n < 2), np.nan, c)


def split_half_draws(data: ResultArrays, slots: np.ndarray, rng: np.random.Generator,
                     splits: int, resample_halves: bool = True) -> np.ndarray:
    """Mean split-half Kendall tau of each slot (target index) over ``splits`` random splits
    of its repeat columns, resampling with replacement within each half when
    ``resample_halves``; NaN where no split gives a defined tau (or R < 2)."""
    shape = slots.shape
    flat = slots.reshape(-1)
    n_rep = data.n_repeats[flat][:, None, None]              # [N, 1, 1]
    r_max = data.dev.shape[-1]
    j = np.arange(r_max)
    keys = np.where(j < n_rep, rng.random((len(flat), splits, r_max)), np.inf)
    perm = np.argsort(keys, axis=-1)                          # column at each position
    a = n_rep // 2
    in_a, in_b = j < a, (j >= a) & (j < n_rep)
    if resample_halves:
        u = rng.random((len(flat), splits, r_max))
        pos = np.where(in_a, np.floor(u * a), a + np.floor(u * (n_rep - a))).astype(np.int64)
    else:
        pos = np.broadcast_to(j, in_a.shape)
    onehot = pos[..., :, None] == j                           # [N, J, draw, position]
    cnt_a = (onehot & in_a[..., :, None]).sum(-2)
    cnt_b = (onehot & in_b[..., :, None]).sum(-2)
    w_a, w_b = np.zeros_like(cnt_a), np.zeros_like(cnt_b)
    np.put_along_axis(w_a, perm, cnt_a, axis=-1)
    np.put_along_axis(w_b, perm, cnt_b, axis=-1)
    rep = np.repeat(flat[:, None], splits, axis=1)
    half_a, half_b = data.truth(rep, w_a), data.truth(rep, w_b)   # [N, J, S]
    keep = ~(np.isnan(half_a) | np.isnan(half_b))
    taus = kendall_batch(half_a, half_b, keep)
    taus = np.where(n_rep[..., 0] >= 2, taus, np.nan)
    return nanmean(taus, -1).reshape(shape)


def corrected_noise_ceiling(results: pd.DataFrame, splits: int = 200, n_boot: int = 1000,
                            seed: int = 0, level: float = 0.95, include_self: bool = False,
                            splits_per_draw: int = 8, split_half: pd.DataFrame | None = None
                            ) -> pd.DataFrame:
    """The corrected noise ceiling per target and pooled, with bootstrap intervals.

    Columns: scope ('target'/'pooled'), target, n_sources, n_repeats, n_splits (as
    ``noise_ceiling``), split_half (today's uncorrected value, ``noise_ceiling(results, splits,
    seed)``) with split_half_low/high, noise_ceiling (corrected, :func:`corrected_ceiling` of the
    target's split_half and R; pooled: the mean over targets with a value),
    noise_ceiling_low/high (see the module docstring) and reason (why undefined).
    ``split_half``: a ``noise_ceiling`` table already computed for these results (it takes
    most of the time), instead of computing it again.
    """
    if n_boot < 1:
        raise EvaluationError(f"n_boot must be at least 1, not {n_boot}.", "Give n_boot >= 1.")
    base = (split_half if split_half is not None else
            noise_ceiling(results, splits=splits, seed=seed, include_self=include_self))
    data = result_arrays(results, include_self)
    rows = base[base["scope"] == "target"].set_index("target")
    n_t = len(data.targets)
    split = np.array([rows.loc[t, "noise_ceiling"] if t in rows.index else np.nan
                      for t in data.targets], dtype=float)
    corrected = corrected_ceiling(split, data.n_repeats)
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, n_t, size=(n_boot, n_t))
    raw = split_half_draws(data, slots, rng, splits_per_draw)            # [B, T]
    pooled_raw = nanmean(raw, -1)
    pooled_cor = nanmean(corrected_ceiling(raw, data.n_repeats[slots]), -1)
    fixed = np.broadcast_to(np.arange(n_t), (n_boot, n_t))
    raw_t = split_half_draws(data, fixed, rng, splits_per_draw)          # [B, T]
    cor_t = corrected_ceiling(raw_t, data.n_repeats[None, :])
    lo_raw, hi_raw = percentile_interval(raw_t.T, level)
    lo_cor, hi_cor = percentile_interval(cor_t.T, level)
    out = []
    for i, t in enumerate(data.targets):
        info = rows.loc[t] if t in rows.index else {}
        # with 2 repeats each half is one repeat: resampling within halves changes nothing
        # and the only split is symmetric, so a per-target interval would be a false [x, x]
        defined = not np.isnan(corrected[i]) and data.n_repeats[i] >= 3
        out.append({"scope": "target", "target": t,
                    "n_sources": info.get("n_sources", pd.NA),
                    "n_repeats": int(data.n_repeats[i]), "n_splits": info.get("n_splits", pd.NA),
                    "split_half": split[i],
                    "split_half_low": lo_raw[i] if defined else np.nan,
                    "split_half_high": hi_raw[i] if defined else np.nan,
                    "noise_ceiling": corrected[i],
                    "noise_ceiling_low": lo_cor[i] if defined else np.nan,
                    "noise_ceiling_high": hi_cor[i] if defined else np.nan,
                    "reason": info.get("reason", "no repeat with an AUC")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled_point = float(np.nanmean(corrected)) if (~np.isnan(corrected)).any() else np.nan
    (plo, phi), (clo, chi) = (percentile_interval(pooled_raw, level),
                              percentile_interval(pooled_cor, level))
    pooled_split = base.loc[base["scope"] == "pooled", "noise_ceiling"].iloc[0]
    out.append({"scope": "pooled", "target": None, "n_sources": pd.NA, "n_repeats": pd.NA,
                "n_splits": pd.NA, "split_half": pooled_split, "split_half_low": float(plo),
                "split_half_high": float(phi), "noise_ceiling": pooled_point,
                "noise_ceiling_low": float(clo), "noise_ceiling_high": float(chi),
                "reason": None if not np.isnan(pooled_point)
                else "no target has a defined noise ceiling"})
    table = pd.DataFrame(out, columns=list(CORRECTED_COLUMNS))
    counts = ["n_sources", "n_repeats", "n_splits"]
    floats = [c for c in CORRECTED_COLUMNS if c.startswith(("split_half", "noise_ceiling"))]
    return table.astype(dict.fromkeys(counts, "Int64") | dict.fromkeys(floats, float))
