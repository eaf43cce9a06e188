"""How well each method ranks the candidate sources of a target, and how far that can be
trusted: the one judging path of the report, ``bench score``, ``bench probe`` and ``bench
recommend``.

For each target the candidates are ranked twice: by the ground truth (the mean fine-tuning AUC
of source -> target over repeats) and by a method's scores (higher = predicted better transfer;
callers negate distances). Agreement is Kendall tau, weighted Kendall tau, Spearman rho and
top-1 regret (:mod:`benchmark.analysis.ranking`). Per method over targets:

* the mean of each figure with its bootstrap-t interval over targets
  (:mod:`benchmark.analysis.inference`; its coverage was measured by simulation);
* against a random ranking: the exact permutation test within each target, combined over the
  targets (:mod:`benchmark.analysis.nulls`), with a p-value per target and for the mean; the row
  ``random`` shows the null's expectation and its central 95 % range, not a bare 0;
* against best-on-average and static-size (:mod:`benchmark.analysis.baselines`): the paired
  difference over the targets both are scored on, its interval, the two-sided p, the targets
  won, tied and lost, and a verdict that says "too few targets to judge" below
  :data:`~benchmark.analysis.inference.MIN_PAIRED`;
* beside the noise ceiling of the same statistic (:mod:`benchmark.analysis.ceiling`): a flag
  where the method reaches it.

Inputs are pandas DataFrames: ``results`` one row per fine-tuning repeat (source, target,
repeat, auc); ``scores`` name -> (source, target, score); ``sizes`` source -> training images.
A target is never its own candidate unless ``include_self``. Undefined figures are NaN, never
an exception. Pure functions: arguments are read, new tables returned.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.analysis.baselines import (BEST_ON_AVERAGE, RANDOM, STATIC_SIZE,
                                          baseline_score_tables)
from benchmark.analysis.ceiling import noise_ceiling, pair_spread
from benchmark.analysis.fidelity import fidelity
from benchmark.analysis.inference import (MIN_TARGETS, TIE_TOL, mean_interval, p_verdict,
                                          paired_difference)
from benchmark.analysis.nulls import (Null, compare_with_null, mean_null, target_nulls,
                                      tie_pattern)
from benchmark.analysis.ranking import (METRICS, EvaluationError, aligned, checked_scores,
                                        ranking_agreement, series_of, target_list, tied_names,
                                        truth_table)

LEARNED = "learned"   # the meta-learned ranker, scored leave-one-target-out
BASELINES = (RANDOM, BEST_ON_AVERAGE, STATIC_SIZE)
PAIRED_BASELINES = (BEST_ON_AVERAGE, STATIC_SIZE)
PAIRED_FIELDS = ("diff", "low", "high", "p", "wins", "ties", "losses", "n", "verdict")
RANDOM_FIELDS = ("diff", "p", "p_two_sided", "exact", "verdict")
DECIDING = "weighted_tau"  # the statistic verdicts and choices are made on


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """``per_target``: one row per (method, target) with the figures, the one-sided p against
    a random ranking per figure (``<metric>_p``), the picks and, with a ceiling, the ceiling
    of each figure and ``above_ceiling``; ``summary``: one row per method (see
    :func:`evaluate`); ``nulls``: the per-target null of each defined figure, for tests that
    combine several methods (the nested reliability of ``bench recommend``)."""

    per_target: pd.DataFrame
    summary: pd.DataFrame
    nulls: dict = field(default_factory=dict)  # (method, metric) -> {target: Null}
    regret_cap: float = np.inf  # the largest regret any target allows (bounds its intervals)


def _kind(name: str) -> str:
    return LEARNED if name == LEARNED else "probe"


def _methods(results, scores, sizes, include_self) -> list[tuple[str, str, pd.DataFrame]]:
    clash = sorted(set(scores) & set(BASELINES))
    if clash:
        raise EvaluationError(f"Method name(s) {clash} clash with the baselines' names.",
                              "Rename the method(s).")
    methods = [(n, _kind(n), checked_scores(s, n, include_self)) for n, s in scores.items()]
    return methods + [(n, "baseline", s) for n, s in
                      baseline_score_tables(results, sizes, include_self).items()]


class _Nulls:
    """Per-target nulls, shared by the methods with the same candidates and tie pattern."""

    def __init__(self, seed: int) -> None:
        self.seed, self.cache = seed, {}

    def get(self, target: str, truth: pd.Series, predicted: pd.Series) -> dict[str, Null]:
        key = (target, tuple(truth.index), tie_pattern(predicted.to_numpy()))
        if key not in self.cache:
            rng = np.random.default_rng([self.seed, zlib.crc32(target.encode())])
            self.cache[key] = target_nulls(truth.to_numpy(), predicted.to_numpy(), rng)
        return self.cache[key]


def _random_row(target: str, t: pd.Series, nulls: _Nulls | None) -> tuple[dict, dict]:
    """The random ranking on one target: its expected figures and their nulls."""
    present = t.dropna()
    best = tied_names(present.index[present.to_numpy() == present.max()]) if len(present) else None
    row = {"method": RANDOM, "kind": "baseline", "target": target, "n_sources": len(present),
           "recommended": None, "best": best}
    if len(present) < 2 or nulls is None:
        return row | dict.fromkeys(METRICS, np.nan), {}
    plain = nulls.get(target, present, pd.Series(np.arange(len(present)), index=present.index,
                                                 dtype=float))
    defined = {m: n for m, n in plain.items() if np.all(np.isfinite(n.values))}
    return row | {m: float((n.values * n.probs).sum()) if m in defined else np.nan
                  for m, n in plain.items()}, defined


def _per_target(truth, targets, methods, nulls: _Nulls | None) -> tuple[pd.DataFrame, dict]:
    """Rows per (method, target) and, with ``nulls``, the one-sided p against a random
    ranking of every defined figure and its null: {(method, metric): {target: Null}}."""
    rows, null_of = [], {}
    for target in targets:
        t = series_of(truth, target, "auc")
        row, plain = _random_row(target, t, nulls)
        rows.append(row)
        for m, null in plain.items():
            null_of.setdefault((RANDOM, m), {})[target] = null
        for name, kind, scores in methods:
            p = series_of(scores, target, "score")
            row = {"method": name, "kind": kind, "target": target, **ranking_agreement(t, p)}
            pair = aligned(t, p) if nulls is not None else None
            if pair is not None:
                own = nulls.get(target, *pair)
                for m in METRICS:
                    if row[m] is not None:
                        null_of.setdefault((name, m), {})[target] = own[m]
                        row[f"{m}_p"] = _one_sided(own[m], row[m], m)
            rows.append(row)
    table = pd.DataFrame(rows).astype({m: float for m in METRICS})
    return table, null_of


def _one_sided(null: Null, observed: float, metric: str) -> float:
    """P(a random ranking does at least as well as ``observed``)."""
    test = compare_with_null(null, observed)
    return test.p_less if metric == "top1_regret" else test.p_greater


def _vs_random(observed: float, nulls: dict[str, Null], metric: str,
               rng: np.random.Generator) -> dict:
    """The mean over targets against the null of the mean (targets where it is defined)."""
    if not nulls or np.isnan(observed):
        return dict.fromkeys(RANDOM_FIELDS)
    null = mean_null([nulls[t] for t in sorted(nulls)], rng)
    test = compare_with_null(null, observed)
    lower = metric == "top1_regret"
    better, worse = (test.p_less, test.p_greater) if lower else (test.p_greater, test.p_less)
    return {"diff": (test.expected - observed) if lower else (observed - test.expected),
            "p": better, "p_two_sided": min(1.0, 2 * min(better, worse)), "exact": test.exact,
            "verdict": p_verdict(better, worse, test.p_min)}


def _random_summary(null_of: dict, seed: int) -> dict:
    """The random ranking over targets: the null's expectation and central range."""
    row = {"method": RANDOM, "kind": "baseline",
           "n_targets": len(null_of.get((RANDOM, DECIDING), {}))}
    for m in METRICS:
        nulls = null_of.get((RANDOM, m), {})
        if not nulls:
            row |= {m: np.nan, f"{m}_low": np.nan, f"{m}_high": np.nan}
            continue
        test = compare_with_null(mean_null([nulls[t] for t in sorted(nulls)],
                                           _rng(seed, RANDOM, m)), 0.0)
        row |= {m: test.expected, f"{m}_low": test.low, f"{m}_high": test.high}
    return row | {"enough_targets": row["n_targets"] >= MIN_TARGETS[DECIDING]}


def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator of its own for each figure: no result depends on the order of methods."""
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def regret_cap(truth: pd.DataFrame) -> float:
    """The largest gap between a target's best and worst candidate: no regret exceeds it."""
    gaps = truth.groupby("target")["auc"].agg(lambda a: a.max() - a.min())
    return float(gaps.max()) if len(gaps) else np.inf


def _summary_row(name: str, kind: str, part: pd.DataFrame, wide: dict, null_of: dict,
                 seed: int, cap: float, tests: bool) -> dict:
    row = {"method": name, "kind": kind}
    for m in METRICS:
        iv = mean_interval(part[m].to_numpy(dtype=float), m, _rng(seed, name, m), cap)
        row |= {m: iv.mean, f"{m}_low": iv.low, f"{m}_high": iv.high}
        if m == DECIDING:
            row |= {"n_targets": iv.n, "enough_targets": iv.enough}
        if not tests:
            continue
        vs = _vs_random(iv.mean, null_of.get((name, m), {}), m, _rng(seed, name, m, RANDOM))
        row |= {f"beats_random_{m}_{k}": v for k, v in vs.items()}
        for base in PAIRED_BASELINES:
            key = f"beats_{base.replace('-', '_')}_{m}"
            got = (paired_difference(wide[m][name], wide[m][base], m, _rng(seed, name, m, base),
                                     cap) if name != base else dict.fromkeys(PAIRED_FIELDS))
            row |= {f"{key}_{k}": v for k, v in got.items()}
    return row


def _summary(per_target: pd.DataFrame, targets: list[str], null_of: dict, seed: int,
             cap: float, tests: bool) -> pd.DataFrame:
    methods = per_target[per_target["method"] != RANDOM]
    wide = {m: methods.pivot(index="method", columns="target", values=m)
            .reindex(columns=targets).astype(float) for m in METRICS}
    wide = {m: {name: w.loc[name].to_numpy() for name in w.index} for m, w in wide.items()}
    rows = [_random_summary(null_of, seed)]
    for (name, kind), part in methods.groupby(["method", "kind"], sort=False):
        rows.append(_summary_row(name, kind, part, wide, null_of, seed, cap, tests))
    return pd.DataFrame(rows)


def figures(results: pd.DataFrame, scores: Mapping[str, pd.DataFrame],
            sizes: Mapping[str, float], *, include_self: bool = False) -> pd.DataFrame:
    """Each method's and baseline's figures per target, without any test (what choosing a
    method on other targets needs): columns method, kind, target, n_sources, METRICS,
    recommended, best; the random row's figures are NaN here."""
    truth = truth_table(results, include_self)
    methods = _methods(results, scores, sizes, include_self)
    return _per_target(truth, target_list(truth, None), methods, None)[0]


def mean_figures(per_target: pd.DataFrame) -> pd.DataFrame:
    """Per method (in order of first appearance): kind, n_targets (with a weighted tau) and
    the mean of each figure over the targets where it is defined."""
    rows = []
    for (name, kind), part in per_target.groupby(["method", "kind"], sort=False):
        rows.append({"method": name, "kind": kind,
                     "n_targets": int(part[DECIDING].notna().sum()),
                     **{m: float(part[m].mean()) if part[m].notna().any() else np.nan
                        for m in METRICS}})
    return pd.DataFrame(rows)


def evaluate(results: pd.DataFrame, scores: Mapping[str, pd.DataFrame],
             sizes: Mapping[str, float], *, include_self: bool = False, seed: int = 0,
             ceiling: pd.DataFrame | None = None, tests: bool = True) -> Evaluation:
    """Every method of ``scores`` and the baselines against ``results`` (see the module
    docstring). Summary columns: method, kind, n_targets (targets with a weighted tau),
    enough_targets, for each metric <metric>, <metric>_low, <metric>_high; against random
    beats_random_<metric>_{diff, p (one-sided: a random ranking does at least as well),
    p_two_sided, exact, verdict}; against each of best-on-average and static-size
    beats_<baseline>_<metric>_{diff, low, high, p, wins, ties, losses, n, verdict} (hyphens
    as underscores); with ``ceiling`` (a :func:`benchmark.analysis.ceiling.noise_ceiling`
    table) <metric>_ceiling, <metric>_above_ceiling and above_ceiling (on weighted tau).
    ``tests=False``: the figures and their intervals only, without the tests against random
    and the baselines (each figure draws from its own generator: the same numbers)."""
    truth = truth_table(results, include_self)
    targets = target_list(truth, None)
    if not targets:
        raise EvaluationError("The results have no (source, target) pair with an AUC.",
                              "Give results with at least one AUC.")
    methods = _methods(results, scores, sizes, include_self)
    per_target, null_of = _per_target(truth, targets, methods, _Nulls(seed))
    cap = regret_cap(truth)
    summary = _summary(per_target, targets, null_of, seed, cap, tests)
    if ceiling is not None:
        per_target, summary = flag_ceiling(per_target, summary, ceiling)
    return Evaluation(per_target=per_target, summary=summary, nulls=null_of, regret_cap=cap)


def _above(value: float, ceiling: float, metric: str) -> bool | None:
    """Whether ``value`` reaches ``ceiling`` (a regret: gets down to its floor), floating-point
    noise aside: a perfect ranking's mean tau of 0.9999999999999999 reaches a ceiling of 1."""
    if pd.isna(value) or pd.isna(ceiling):
        return None
    if metric == "top1_regret":
        return bool(value <= ceiling + TIE_TOL)
    return bool(value >= ceiling - TIE_TOL)


def flag_ceiling(per_target: pd.DataFrame, summary: pd.DataFrame, ceiling: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables with each figure's noise ceiling (per target: the target's; summary: the
    pooled one) and whether the method reaches it (a regret at or below its floor)."""
    by_target = ceiling[ceiling["scope"] == "target"].set_index("target")
    pooled = ceiling[ceiling["scope"] == "pooled"].iloc[0]
    per_target, summary = per_target.copy(), summary.copy()
    for m in METRICS:
        col = f"{m}_ceiling"
        per_target[col] = per_target["target"].map(by_target[col]).astype(float)
        summary[col] = float(pooled[col]) if pd.notna(pooled[col]) else np.nan
        for frame in (per_target, summary):
            frame[f"{m}_above_ceiling"] = [None if meth == RANDOM else _above(v, c, m) for
                                           meth, v, c in zip(frame["method"], frame[m],
                                                             frame[col])]
    for frame in (per_target, summary):
        frame["above_ceiling"] = frame[f"{DECIDING}_above_ceiling"]
    return per_target, summary


# --- the figures without the largest source (Singh, Hess & Vanschoren 2026) -------------------


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


def without_sources(table: pd.DataFrame, sources: list[str]) -> pd.DataFrame:
    """The rows of a results or scores table whose source is not in ``sources`` (the same
    datasets stay as targets)."""
    return table[~table["source"].isin(list(sources))]


def leave_largest_out(results: pd.DataFrame, scores: Mapping[str, pd.DataFrame],
                      sizes: Mapping[str, float], full: pd.DataFrame, *,
                      include_self: bool = False, seed: int = 0) -> pd.DataFrame:
    """Every method's figures with the largest source removed from every target's candidates
    (the paper finds metrics "crater" once the largest models are gone), beside ``full`` (the
    :func:`evaluate` summary on all candidates). One row per method: method, kind, left_out
    ('|'-joined), and per metric <metric>_all, <metric>_without with its _low/_high interval,
    and <metric>_change (without - all). The baselines are recomputed on the reduced sets
    (static-size then puts the next largest first)."""
    left = largest_sources(results, sizes, include_self)
    reduced = evaluate(without_sources(results, left),
                       {k: without_sources(v, left) for k, v in scores.items()}, sizes,
                       include_self=include_self, seed=seed, tests=False
                       ).summary.set_index("method")
    rows = []
    for _, a in full.iterrows():
        if a["method"] not in reduced.index:
            continue
        b = reduced.loc[a["method"]]
        row = {"method": a["method"], "kind": a["kind"], "left_out": "|".join(left)}
        for m in METRICS:
            row |= {f"{m}_all": a[m], f"{m}_without": b[m], f"{m}_without_low": b[f"{m}_low"],
                    f"{m}_without_high": b[f"{m}_high"], f"{m}_change": b[m] - a[m]}
        rows.append(row)
    return pd.DataFrame(rows)


# --- everything the report shows about the methods --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Assessment:
    summary: pd.DataFrame       # per method: figures with intervals, verdicts, the ceiling
    per_target: pd.DataFrame    # per method and target: figures, p against random, picks
    ceiling: pd.DataFrame       # per target and pooled: the ceiling of every statistic
    fidelity: pd.DataFrame      # per method, pooled and per target
    without_largest: pd.DataFrame | None  # per method: figures without the largest source
    spread: pd.DataFrame        # per pair: spread of the repeats


def assess(results: pd.DataFrame, scores: Mapping[str, pd.DataFrame],
           sizes: Mapping[str, float], *, include_self: bool = False, seed: int = 0
           ) -> Assessment:
    """Every method of ``scores`` (the learned ranker under :data:`LEARNED`) and the baselines
    against ``results``: :func:`evaluate` beside the noise ceiling, the fidelity of the scores
    and the figures without the largest source (None when no source has a size)."""
    ceiling = noise_ceiling(results, include_self, seed)
    ev = evaluate(results, scores, sizes, include_self=include_self, seed=seed, ceiling=ceiling)
    try:
        without = leave_largest_out(results, scores, sizes, ev.summary,
                                    include_self=include_self, seed=seed)
    except EvaluationError:  # no sizes, or too few sources left
        without = None
    methods = {**scores, **baseline_score_tables(results, sizes, include_self)}
    return Assessment(summary=ev.summary, per_target=ev.per_target, ceiling=ceiling,
                      fidelity=fidelity(results, methods, include_self), without_largest=without,
                      spread=pair_spread(results, include_self))
