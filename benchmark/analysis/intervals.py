"""Bootstrap intervals for the ranking metrics of :mod:`benchmark.analysis.evaluation`, and paired
comparisons of each method with each baseline on the same resamples.

With three to six targets a bare difference of means says little: a method "beats" a baseline
by chance as often as not. Two sources of uncertainty are resampled together:

* the TARGETS (drawn with replacement: which datasets the benchmark happens to hold), and
* inside each drawn target, the REPEATS that make its ground truth (drawn with replacement,
  as whole columns: repeat r of every source of the target is kept or dropped together, as the
  noise ceiling splits them); the truth of each source is re-averaged over the drawn repeats.

This is a two-stage (cluster) bootstrap: a target drawn twice gets two independent repeat
draws. On every resample each method's per-target metrics are recomputed against the resampled
truth and pooled as the mean over the drawn targets where defined (as ``summarize`` does).
Method scores are fixed inputs (a probe never sees the fine-tuning noise), except for:

* ``random``: the exact expectation against the resampled truth (correlations 0, regret the
  mean gap to the best), as :func:`benchmark.analysis.baselines.random_expectation`;
* ``best-on-average``: by default RECOMPUTED on each resample from the resampled truths of the
  other drawn targets (each drawn slot counting once; every copy of the target itself is left
  out, otherwise a duplicated target would see its own answer). This is the faithful choice:
  the baseline is itself an estimate from the same noisy data, and holding it fixed would
  understate its variance and make a probe look distinguishable from it too easily. Set
  ``resample_best_on_average=False`` to hold it at its full-data scores. In the per-target
  intervals (only that target's repeats resampled) the other targets are not resampled, so the
  baseline's scores stay at their full-data values there.

Point estimates are computed by the same vectorised code on the full data (every repeat once,
every target once); they equal ``summarize(evaluate_probes(...))`` up to float rounding (tested
to 1e-12). Intervals are percentile intervals (``level``, default 95 %) from a seeded
``numpy.random.default_rng(seed)``. A resample on which a figure is undefined (e.g.
best-on-average when every drawn slot is the same target) is left out of that figure's interval.

Paired comparisons use the same resamples: per resample, the mean over the drawn targets where
both are defined of method - baseline (baseline - method for top1_regret: positive = the method
is better), its percentile interval, the win share (resamples with a defined difference where
the method is strictly better) and a verdict: 'better' / 'worse' when the interval excludes 0,
else 'not distinguishable'.

The metrics are computed in batch over (resample, target) with ties handled as scipy does:
Kendall tau-b, scipy's ``weightedtau(truth, predicted, rank=None)`` (additive hyperbolic
weigher, weights from the decreasing lexicographic rank by (truth, prediction, position)),
Spearman rho on average ranks and top-1 regret (mean over sources tied at the predicted top).
NaN predictions rank last; undefined figures are NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.analysis.baselines import static_size_scores
from benchmark.analysis.batch_metrics import (ResultArrays, agreement_batch, best_on_average_batch,
                                              draw_counts, random_batch, result_arrays)
from benchmark.analysis.ranking import (BASELINES, METRICS, EvaluationError, checked_scores,
                                        drop_self)

VERDICTS = ("better", "worse", "not distinguishable")


# --- the methods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    name: str
    kind: str              # 'probe' or 'baseline'
    rule: str              # 'scores', 'random' or 'best-on-average'
    scores: np.ndarray | None = None   # [T, S]
    present: np.ndarray | None = None  # [T, S] bool: a score row exists


def score_arrays(data: ResultArrays, scores: pd.DataFrame, name: str,
                  include_self: bool) -> tuple[np.ndarray, np.ndarray]:
    rows = checked_scores(scores, name, include_self)
    t_of = {t: i for i, t in enumerate(data.targets)}
    s_of = {s: i for i, s in enumerate(data.sources)}
    keep = rows["target"].isin(t_of) & rows["source"].isin(s_of)
    rows = rows[keep]
    y = np.full(data.ref.shape, np.nan)
    present = np.zeros(data.ref.shape, dtype=bool)
    ti = rows["target"].map(t_of).to_numpy(dtype=int)
    si = rows["source"].map(s_of).to_numpy(dtype=int)
    y[ti, si] = rows["score"].to_numpy(dtype=float)
    present[ti, si] = True
    return y, present


def build_methods(data: ResultArrays, results: pd.DataFrame,
                  probe_scores: Mapping[str, pd.DataFrame], sizes: Mapping[str, float],
                  include_self: bool = False,
                  extra_baselines: Mapping[str, pd.DataFrame] | None = None) -> list[Method]:
    """random, the probes, best-on-average, static-size and extra baselines."""
    extra = dict(extra_baselines or {})
    names = [*probe_scores, *extra]
    taken = set(BASELINES)
    clash = sorted((set(probe_scores) | set(extra)) & taken)
    if clash or len(set(names)) < len(names):
        raise EvaluationError(f"Method name(s) {clash or names} clash or repeat.",
                              "Give every probe and extra baseline its own name.")
    methods = [Method("random", "baseline", "random")]
    for name, table in probe_scores.items():
        methods.append(Method(name, "probe", "scores",
                              *score_arrays(data, table, name, include_self)))
    methods.append(Method("best-on-average", "baseline", "best-on-average"))
    tables = {"static-size": static_size_scores(results, sizes, data.targets, include_self),
              **extra}
    for name, table in tables.items():
        methods.append(Method(name, "baseline", "scores",
                              *score_arrays(data, table, name, include_self)))
    return methods


def slot_metrics(data: ResultArrays, methods: Sequence[Method], slots: np.ndarray,
                 counts: np.ndarray, boa_scores: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every method's metrics on every slot: values [M, 4 (METRICS), *slots.shape] and
    n_sources [M, *slots.shape]. ``slots`` [B, K]: target index of each drawn slot; ``counts``
    [B, K, R]: the repeat draw of each slot. ``boa_scores`` [T, S]: hold best-on-average at
    these scores; None recomputes it from the slots' truths (leave the slot's target out)."""
    truth = data.truth(slots, counts)
    has = ~np.isnan(truth)
    values = np.full((len(methods), len(METRICS), *slots.shape), np.nan)
    n_src = np.zeros((len(methods), *slots.shape), dtype=np.int64)
    for i, m in enumerate(methods):
        if m.rule == "random":
            res = random_batch(truth, has)
        else:
            if m.rule == "best-on-average":
                if boa_scores is None:
                    y, present = best_on_average_batch(truth, slots, data.candidate)
                else:
                    y, present = boa_scores[slots], data.candidate[slots]
            else:
                y, present = m.scores[slots], m.present[slots]
            res = agreement_batch(truth, y, has & present)
        for j, metric in enumerate(METRICS):
            values[i, j] = res[metric]
        n_src[i] = res["n_sources"]
    return values, n_src


# --- the bootstrap ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    """Draws of every method's metrics, on the full data and on each resample.

    point [M, 4, T], n_sources [M, T]: per target on the full data. draws [M, 4, B, T]: per
    drawn slot of each resample (targets AND repeats resampled); slots [B, T] the target index
    of each slot, counts [B, T, R] its repeat draw. target_draws [M, 4, B, T]: per target with
    only that target's repeats resampled (target_counts [B, T, R]). Metrics in METRICS order.
    """

    methods: list[str]
    kinds: list[str]
    targets: list[str]
    repeat_ids: list[list]     # per target: the repeat id of each repeat column
    point: np.ndarray
    n_sources: np.ndarray
    draws: np.ndarray
    slots: np.ndarray
    counts: np.ndarray
    target_draws: np.ndarray
    target_counts: np.ndarray
    level: float
    resample_best_on_average: bool

    def index(self, method: str) -> int:
        try:
            return self.methods.index(method)
        except ValueError:
            raise EvaluationError(f"No method {method!r} in the bootstrap.",
                                  f"Use one of {self.methods}.") from None


def nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def percentile_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval over the last axis, ignoring NaN draws (NaN when none)."""
    q = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [q, 100 - q], axis=-1)
    return low, high


def bootstrap_evaluation(results: pd.DataFrame, probe_scores: Mapping[str, pd.DataFrame],
                         sizes: Mapping[str, float], n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95, include_self: bool = False,
                         extra_baselines: Mapping[str, pd.DataFrame] | None = None,
                         resample_best_on_average: bool = True) -> Bootstrap:
    """Bootstrap every probe and baseline (see the module docstring) -> :class:`Bootstrap`.

    ``results``, ``probe_scores`` and ``sizes`` as for ``evaluate_probes``; the baselines are
    random, best-on-average, static-size and ``extra_baselines`` (name -> score table). Draw order from ``default_rng(seed)``: the target
    slots [n_boot, T], their repeat draws, then the per-target repeat draws.
    """
    if n_boot < 1:
        raise EvaluationError(f"n_boot must be at least 1, not {n_boot}.", "Give n_boot >= 1.")
    data = result_arrays(results, include_self)
    if not data.targets:
        raise EvaluationError("The results have no (source, target) pair with an AUC.",
                              "Give results with at least one AUC.")
    methods = build_methods(data, results, probe_scores, sizes, include_self, extra_baselines)
    n_t, r_max = len(data.targets), data.dev.shape[-1]
    all_t = np.arange(n_t)[None, :]
    point, n_src = slot_metrics(data, methods, all_t, data.full_counts(all_t))
    boa_point, _ = best_on_average_batch(data.truth(all_t, data.full_counts(all_t)), all_t,
                                         data.candidate)
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, n_t, size=(n_boot, n_t))
    counts = draw_counts(rng, data.n_repeats[slots], r_max)
    draws, _ = slot_metrics(data, methods, slots, counts,
                            None if resample_best_on_average else boa_point[0])
    fixed = np.broadcast_to(all_t, (n_boot, n_t))
    t_counts = draw_counts(rng, data.n_repeats[fixed], r_max)
    t_draws, _ = slot_metrics(data, methods, fixed, t_counts, boa_point[0])
    repeat_ids = _repeat_ids(results, data, include_self)
    return Bootstrap([m.name for m in methods], [m.kind for m in methods], data.targets,
                     repeat_ids, point[:, :, 0], n_src[:, 0], draws, slots, counts, t_draws,
                     t_counts, level, resample_best_on_average)


def _repeat_ids(results: pd.DataFrame, data: ResultArrays, include_self: bool) -> list[list]:
    rows = drop_self(results, include_self).dropna(subset=["auc"])
    return [sorted(rows.loc[rows["target"] == t, "repeat"].unique()) for t in data.targets]


# --- tables -----------------------------------------------------------------------------------


def _metric_columns(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict:
    out = {}
    for j, metric in enumerate(METRICS):
        out[metric], out[f"{metric}_low"], out[f"{metric}_high"] = values[j], low[j], high[j]
    return out


def pooled_intervals(boot: Bootstrap) -> pd.DataFrame:
    """Per method: the mean over targets of each metric with its percentile interval.

    Columns method, kind, n_targets (the targets where the method's weighted tau is defined:
    a method scored on fewer targets is averaged over those only, and says so), then for each
    metric <metric>, <metric>_low, <metric>_high (NaN where undefined).
    """
    point = nanmean(boot.point, -1)                 # [M, 4]
    pooled = nanmean(boot.draws, -1)                # [M, 4, B]
    low, high = percentile_interval(pooled, boot.level)
    covered = (~np.isnan(boot.point[:, METRICS.index("weighted_tau")])).sum(-1)  # [M]
    rows = [{"method": m, "kind": k, "n_targets": int(covered[i]),
             **_metric_columns(point[i], low[i], high[i])}
            for i, (m, k) in enumerate(zip(boot.methods, boot.kinds))]
    return pd.DataFrame(rows)


def per_target_intervals(boot: Bootstrap) -> pd.DataFrame:
    """Per (method, target): each metric on the full data with its interval from resampling
    only that target's repeats. Columns method, kind, target, n_sources, <metric>,
    <metric>_low, <metric>_high."""
    low, high = percentile_interval(np.moveaxis(boot.target_draws, 2, -1), boot.level)  # [M,4,T]
    rows = [{"method": m, "kind": k, "target": t, "n_sources": int(boot.n_sources[i, ti]),
             **_metric_columns(boot.point[i, :, ti], low[i, :, ti], high[i, :, ti])}
            for ti, t in enumerate(boot.targets)
            for i, (m, k) in enumerate(zip(boot.methods, boot.kinds))]
    return pd.DataFrame(rows)


def _paired(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Mean over the targets where both are defined of a - b (b - a for top1_regret)."""
    both = ~(np.isnan(a) | np.isnan(b))
    d = (b - a) if metric == "top1_regret" else (a - b)
    return nanmean(np.where(both, d, np.nan), -1)


def verdict(low: float, high: float) -> str | None:
    """'better' when the interval of (method better by) lies above 0, 'worse' below, else
    'not distinguishable'; None when undefined."""
    if np.isnan(low) or np.isnan(high):
        return None
    return "better" if low > 0 else "worse" if high < 0 else "not distinguishable"


def paired_comparison(boot: Bootstrap, method: str, other: str, metric: str) -> dict:
    """``method`` against ``other`` on ``metric``, paired over the same resamples and targets.

    diff: the mean over targets (where both are defined) of method - other, other - method for
    top1_regret, so that positive always means the method is better; low, high: its percentile
    interval; win_share: the share of resamples (with a defined difference) where the method
    is strictly better; verdict: see :func:`verdict`.
    """
    i, j, k = boot.index(method), boot.index(other), METRICS.index(metric)
    diff = float(_paired(boot.point[i, k], boot.point[j, k], metric))
    d = _paired(boot.draws[i, k], boot.draws[j, k], metric)      # [B]
    low, high = (float(v) for v in percentile_interval(d, boot.level))
    defined = d[~np.isnan(d)]
    win = float((defined > 0).mean()) if len(defined) else np.nan
    return {"diff": diff, "low": low, "high": high, "win_share": win,
            "verdict": verdict(low, high)}


def _baselines_of(boot: Bootstrap, baselines: Sequence[str] | None) -> list[str]:
    if baselines is None:
        return [b for b in BASELINES if b in boot.methods]
    return list(baselines)


def paired_comparisons(boot: Bootstrap, baselines: Sequence[str] | None = None
                       ) -> pd.DataFrame:
    """Long table: one row per (method, baseline, metric) with diff, low, high, win_share and
    verdict (see :func:`paired_comparison`); every method against every baseline (default: the
    standard baselines present in ``boot``), itself included (difference 0)."""
    rows = [{"method": m, "kind": k, "baseline": b, "metric": metric,
             **paired_comparison(boot, m, b, metric)}
            for m, k in zip(boot.methods, boot.kinds)
            for b in _baselines_of(boot, baselines) for metric in METRICS]
    return pd.DataFrame(rows)


def summary_with_intervals(boot: Bootstrap, baselines: Sequence[str] | None = None,
                           ceiling: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`pooled_intervals` with, for each baseline b ('-' as '_') and metric,
    beats_<b>_<metric>_diff, _low, _high, _win_share and _verdict; with a
    :func:`benchmark.analysis.ceiling.corrected_noise_ceiling` table also noise_ceiling, noise_ceiling_low,
    noise_ceiling_high (pooled) and above_ceiling (the method's kendall_tau point above the
    ceiling's upper bound; None where either is undefined). JSON-friendly: one flat row per
    method."""
    table = pooled_intervals(boot)
    extra = []
    for m in boot.methods:
        row = {}
        for b in _baselines_of(boot, baselines):
            for metric in METRICS:
                key = f"beats_{b.replace('-', '_')}_{metric}"
                for field, value in paired_comparison(boot, m, b, metric).items():
                    row[f"{key}_{field}"] = value
        extra.append(row)
    table = pd.concat([table, pd.DataFrame(extra)], axis=1)
    if ceiling is not None:
        pooled = ceiling[ceiling["scope"] == "pooled"].iloc[0]
        table = flag_above_ceiling(table, pooled)
    return table


def flag_above_ceiling(table: pd.DataFrame, ceiling_row: pd.Series | Mapping) -> pd.DataFrame:
    """``table`` with noise_ceiling, noise_ceiling_low, noise_ceiling_high from ``ceiling_row``
    and above_ceiling: kendall_tau > noise_ceiling_high (the ceiling is a Kendall tau)."""
    c, lo, hi = (float(ceiling_row[k]) if pd.notna(ceiling_row[k]) else np.nan
                 for k in ("noise_ceiling", "noise_ceiling_low", "noise_ceiling_high"))
    tau = table["kendall_tau"].to_numpy(dtype=float)
    above = [None if (np.isnan(t) or np.isnan(hi)) else bool(t > hi) for t in tau]
    return table.assign(noise_ceiling=c, noise_ceiling_low=lo, noise_ceiling_high=hi,
                        above_ceiling=above)


def per_target_with_ceiling(per_target: pd.DataFrame, ceiling: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_target_intervals` with each target's ceiling columns and above_ceiling."""
    rows = ceiling[ceiling["scope"] == "target"].set_index("target")
    parts = []
    for target, part in per_target.groupby("target", sort=False):
        ceiling_row = (rows.loc[target] if target in rows.index else
                       dict.fromkeys(("noise_ceiling", "noise_ceiling_low",
                                      "noise_ceiling_high"), np.nan))
        parts.append(flag_above_ceiling(part, ceiling_row))
    return pd.concat(parts).loc[per_target.index]


def evaluate_with_intervals(results: pd.DataFrame, probe_scores: Mapping[str, pd.DataFrame],
                            sizes: Mapping[str, float], n_boot: int = 1000, seed: int = 0,
                            level: float = 0.95, include_self: bool = False,
                            ceiling: pd.DataFrame | None = None, **kwargs
                            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary (:func:`summary_with_intervals`) and the per-target table
    (:func:`per_target_intervals`, with ceiling columns when ``ceiling`` is given) in one call;
    ``kwargs`` go to :func:`bootstrap_evaluation`."""
    boot = bootstrap_evaluation(results, probe_scores, sizes, n_boot, seed, level,
                                include_self, **kwargs)
    per_target = per_target_intervals(boot)
    if ceiling is not None:
        per_target = per_target_with_ceiling(per_target, ceiling)
    return summary_with_intervals(boot, ceiling=ceiling), per_target
