"""Inference over a handful of targets: the interval of a mean over targets, the paired test of
two methods, the verdict words they allow, and when there are too few targets to say anything.

Every figure that judges a method is a mean over the targets of a per-target figure (weighted
tau, Kendall tau, Spearman rho, top-1 regret). The targets are the sampling unit: a suite holds 3
to 8 of them, drawn from the datasets a user might meet; a target's figure already carries the
noise of its repeats. The interval is the studentized bootstrap (bootstrap-t) over the
per-target figures, clipped to the figure's range: of the candidates measured by simulation on
stores with a known truth (``tests/bench/bench_coverage.py``: the two-stage percentile bootstrap
used before, the Student-t interval, the Bayesian bootstrap, BCa, a random-effects model with
the Hartung-Knapp interval, a t-interval on Fisher's z and this one) it is the only one that
keeps at least 93 % coverage at nominal 95 % for weighted tau from 5 targets up, in both suite
designs and every scenario (docs/results.md#coverage-of-the-intervals). A percentile bootstrap
cannot leave the range of the observed targets: with 3 targets its "95 %" interval covered the
truth three times in four; the plain t-interval collapses to a point when every target's tau
is 1.

Below the number of targets from which the interval was measured to cover
(:data:`MIN_TARGETS` for a mean, :data:`MIN_PAIRED` for a paired difference, per figure) the
interval is still shown, but no verdict is drawn from it: the verdict is "too few targets to
judge" (an exact sign-flip test over n targets cannot go below p = 2^(1-n): 0.25 at n = 3).
Differences within :data:`TIE_TOL` of 0 are ties: floating-point noise (2.8e-17) is no win. The
test against a random ranking is different: an exact permutation test within each target
(:mod:`benchmark.analysis.nulls`) that can reach significance with few targets; its verdict is
withheld only when the smallest p-value it can reach is not below :data:`ALPHA`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
ALPHA = 1 - LEVEL
N_BOOT = 999        # bootstrap-t resamples (as measured by the coverage benchmark)
# the fewest targets from which the bootstrap-t covered at least 93 % in every measured
# scenario and design (docs/results.md#coverage-of-the-intervals)
MIN_TARGETS = {"weighted_tau": 5, "kendall_tau": 8, "spearman_rho": 50, "top1_regret": 20}
MIN_PAIRED = {"weighted_tau": 5, "kendall_tau": 5, "spearman_rho": 5, "top1_regret": 8}
TIE_TOL = 1e-9      # |difference| at or below this is a tie, not a win
TOO_FEW = "too few targets to judge"
MIN_VALUES = 3      # fewer values than this: a mean, but no interval (2 values resample 4 ways)


def metric_range(metric: str, regret_cap: float = math.inf, paired: bool = False
                 ) -> tuple[float, float]:
    """The values a per-target figure (``paired``: a difference of two) can take: [-1, 1] for
    a tau, [0, regret_cap] for the regret, ``regret_cap`` being the largest gap between a
    target's best and worst candidate. Intervals are clipped to it."""
    if metric == "top1_regret":
        return (-regret_cap, regret_cap) if paired else (0.0, regret_cap)
    return (-2.0, 2.0) if paired else (-1.0, 1.0)


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values with its interval (NaN where undefined: n < 2 for the ends);
    ``minimum``: the targets from which this kind of interval was measured to cover."""

    mean: float
    low: float
    high: float
    n: int
    minimum: int = 2

    @property
    def enough(self) -> bool:
        """Whether there are enough targets for an interval whose coverage was checked."""
        return self.n >= self.minimum


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v)]


def _studentized(v: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """t* = (mean* - mean) / se* of ``n_boot`` resamples of ``v`` with replacement; +-inf where
    a resample's sd is 0 (0 where its mean is also the data's)."""
    idx = rng.integers(0, len(v), (n_boot, len(v)))
    draws = v[idx]
    m, se = draws.mean(1), draws.std(1, ddof=1) / math.sqrt(len(v))
    gap = m - v.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se > 1e-12, gap / se, np.sign(gap) * np.inf)
    return np.where((se <= 1e-12) & (np.abs(gap) <= 1e-12), 0.0, stat)


def bootstrap_t(values, rng: np.random.Generator, *, level: float = LEVEL,
                bounds: tuple[float, float] = (-math.inf, math.inf), minimum: int = MIN_VALUES,
                n_boot: int = N_BOOT) -> tuple[Interval, float]:
    """The mean of the finite ``values`` with its studentized bootstrap interval
    [mean - q(1 - a) se, mean - q(a) se] (q: quantiles of t*, a = (1 - level) / 2; se = s /
    sqrt(n)), clipped to ``bounds``, and the two-sided p of mean = 0 from the same t*
    (2 min(P(t* >= t), P(t* <= t)), t = mean / se; (1 + k) / (1 + B), never 0). Values that do
    not vary give the point interval and p = 1 at a mean of 0, else p = NaN; fewer than
    MIN_VALUES values give no interval and no p."""
    v = _finite(values)
    n = len(v)
    if n < MIN_VALUES:
        return Interval(float(v.mean()) if n else math.nan, math.nan, math.nan, n, minimum), \
            math.nan
    mean, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(n))
    if se <= 1e-12:
        return Interval(mean, mean, mean, n, minimum), (1.0 if abs(mean) <= TIE_TOL else math.nan)
    star = _studentized(v, rng, n_boot)
    a = (1 - level) / 2
    q_hi, q_lo = np.quantile(star, [1 - a, a], method="inverted_cdf")
    low, high = max(bounds[0], mean - q_hi * se), min(bounds[1], mean - q_lo * se)
    t = mean / se
    p = 2 * min((1 + (star >= t).sum()) / (1 + n_boot), (1 + (star <= t).sum()) / (1 + n_boot))
    return Interval(mean, low, high, n, minimum), min(1.0, p)


def mean_interval(values, metric: str, rng: np.random.Generator,
                  regret_cap: float = math.inf) -> Interval:
    """The evaluation's interval for the mean of a figure over targets (:func:`bootstrap_t`),
    clipped to :func:`metric_range`."""
    return bootstrap_t(values, rng, bounds=metric_range(metric, regret_cap),
                       minimum=MIN_TARGETS[metric])[0]


def jackknife_interval(per_group: np.ndarray, statistic, level: float = LEVEL,
                       bounds: tuple[float, float] = (-1.0, 1.0)) -> Interval:
    """A statistic of ``per_group`` (one row per target) with the delete-one-target jackknife
    t-interval (for the mean of the rows: the Student-t interval, mean +- t_{n-1} s / sqrt(n)),
    for statistics that are no mean over targets (the pooled fidelity, a ratio of sums).
    ``statistic`` maps an array of rows to a float (NaN where undefined)."""
    rows = np.asarray(per_group, dtype=float)
    n = len(rows)
    point = float(statistic(rows))
    if n < 2 or not math.isfinite(point):
        return Interval(point, math.nan, math.nan, n)
    keep = np.ones(n, dtype=bool)
    leave = np.empty(n)
    for i in range(n):
        keep[i] = False
        leave[i] = statistic(rows[keep])
        keep[i] = True
    if not np.all(np.isfinite(leave)):
        return Interval(point, math.nan, math.nan, n)
    se = math.sqrt((n - 1) / n * float(((leave - leave.mean()) ** 2).sum()))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return Interval(point, max(bounds[0], point - half), min(bounds[1], point + half), n)


def paired_difference(method, other, metric: str, rng: np.random.Generator,
                      regret_cap: float = math.inf) -> dict:
    """``method`` against ``other`` on the targets where both have a figure (arrays aligned by
    target): diff = mean of method - other (other - method for top1_regret: positive = the
    method is better), low/high its bootstrap-t interval, p the two-sided bootstrap-t p,
    wins/ties/losses the targets where the method is better/within TIE_TOL/worse, n the
    targets, verdict (needs :data:`MIN_PAIRED` targets)."""
    a, b = np.asarray(method, dtype=float), np.asarray(other, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    d = (b - a if metric == "top1_regret" else a - b)[both]
    d = np.where(np.abs(d) <= TIE_TOL, 0.0, d)
    iv, p = bootstrap_t(d, rng, bounds=metric_range(metric, regret_cap, paired=True),
                        minimum=MIN_PAIRED[metric])
    return {"diff": iv.mean, "low": iv.low, "high": iv.high, "p": p,
            "wins": int((d > 0).sum()), "ties": int((d == 0).sum()),
            "losses": int((d < 0).sum()), "n": iv.n, "verdict": interval_verdict(iv)}


def interval_verdict(iv: Interval) -> str | None:
    """'better' / 'worse' when the interval of a difference (positive = better) excludes 0
    with at least ``iv.minimum`` targets; 'too few targets to judge' with fewer; else 'not
    distinguishable'; None when there is no figure at all."""
    if iv.n == 0:
        return None
    if not iv.enough:
        return TOO_FEW
    if iv.low > 0:
        return "better"
    if iv.high < 0:
        return "worse"
    return "not distinguishable"


def p_verdict(p_greater: float, p_less: float, p_min: float, alpha: float = ALPHA
              ) -> str | None:
    """The verdict of a two-sided test from its one-sided p-values: better (p_greater small),
    worse (p_less small), 'too few targets to judge' when even the most extreme outcome could
    not reach two-sided significance (``p_min``: the smallest attainable two-sided p)."""
    if math.isnan(p_greater) or math.isnan(p_less):
        return None
    if p_min >= alpha:
        return TOO_FEW
    if 2 * p_greater < alpha:
        return "better"
    if 2 * p_less < alpha:
        return "worse"
    return "not distinguishable"
