"""How far each method's answer can be trusted, in one place: every probe, estimator, the learned
ranker and the baselines scored against the ground truth with bootstrap intervals (targets and
repeats resampled), paired against each baseline on the same resamples, beside the noise
ceiling corrected to the number of repeats; the fidelity of their score gaps and their figures
without the largest source (the checks of Singh, Hess & Vanschoren 2026)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from benchmark.analysis.ceiling import corrected_noise_ceiling, noise_ceiling, pair_spread
from benchmark.analysis.evaluation import evaluate_probes
from benchmark.analysis.fidelity import baseline_score_tables, fidelity, leave_largest_out
from benchmark.analysis.intervals import (bootstrap_evaluation, per_target_intervals,
                                          per_target_with_ceiling, summary_with_intervals)
from benchmark.analysis.ranking import EvaluationError

N_BOOT = 1000
SEED = 0
LEARNED = "learned"  # the meta-learned ranker, evaluated leave-one-target-out


@dataclass(frozen=True, kw_only=True)
class Assessment:
    summary: pd.DataFrame       # per method: metrics with intervals, paired verdicts, ceiling
    per_target: pd.DataFrame    # per method and target: metrics with intervals, picks
    ceiling: pd.DataFrame       # per target and pooled: split-half and corrected ceiling
    fidelity: pd.DataFrame      # per method, pooled and per target
    without_largest: pd.DataFrame | None  # per method: figures without the largest source
    spread: pd.DataFrame        # per pair: spread of the repeats


def assess(results: pd.DataFrame, scores: Mapping[str, pd.DataFrame],
           sizes: Mapping[str, float], *, include_self: bool = False, n_boot: int = N_BOOT,
           seed: int = SEED) -> Assessment:
    """Every method of ``scores`` (name -> source, target, score; higher = better; the
    learned ranker under :data:`LEARNED`) and the baselines against ``results`` (source,
    target, repeat, auc)."""
    split = noise_ceiling(results, seed=seed, include_self=include_self)
    ceiling = corrected_noise_ceiling(results, n_boot=n_boot, seed=seed,
                                      include_self=include_self, split_half=split)
    boot = bootstrap_evaluation(results, scores, sizes, n_boot=n_boot, seed=seed,
                                include_self=include_self)
    summary = _kinds(summary_with_intervals(boot, ceiling=ceiling))
    picks = evaluate_probes(results, scores, sizes, include_self=include_self)
    per_target = per_target_with_ceiling(per_target_intervals(boot), ceiling)
    per_target = _kinds(per_target.merge(picks[["method", "target", "recommended", "best"]],
                                         on=["method", "target"], how="left"))
    methods = {**scores, **baseline_score_tables(results, sizes, include_self)}
    return Assessment(summary=summary, per_target=per_target, ceiling=ceiling,
                      fidelity=fidelity(results, methods, n_boot, seed,
                                        include_self=include_self),
                      without_largest=_without_largest(results, scores, sizes, include_self,
                                                       n_boot, seed),
                      spread=pair_spread(results, include_self=include_self))


def _kinds(table: pd.DataFrame) -> pd.DataFrame:
    """The learned ranker is its own kind beside 'probe' and 'baseline'."""
    return table.assign(kind=table["kind"].where(table["method"] != LEARNED, LEARNED))


def _without_largest(results, scores, sizes, include_self, n_boot, seed
                     ) -> pd.DataFrame | None:
    """Leave-largest-out, or None when no source has a size or too few would be left."""
    try:
        return _kinds(leave_largest_out(results, scores, sizes, n_boot, seed,
                                        include_self=include_self))
    except EvaluationError:
        return None
