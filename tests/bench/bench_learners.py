"""The learned rankers side by side on one suite's store (not a test; by hand, after a run):

    bench run --suite wide && python tests/bench/bench_learners.py --suite wide
    python tests/bench/bench_learners.py --synthetic 10     # no store needed

Every learner of ``benchmark.analysis.ranker.LEARNERS`` scores each target of the suite from a
model fitted on every other target's pairs in the store (leave-one-target-out), and all of them
are evaluated as the report evaluates every method (benchmark.analysis.evaluation: bootstrap-t
intervals over targets), with the paired difference of the default learner against each other
one on the same targets: weighted Kendall tau, top-1 regret and Kendall tau with 95 %
intervals, then what the default learned (the ridge's standardised weights) and the gain
importances of the LightGBM ranker.

``--synthetic N``: the same learners on ``tests/synthetic_pairs.realistic_pairs`` (N seeds, one
suite of 7 targets, then four suites of 6 = 24 targets): the mean and spread over seeds of each
learner's mean per-target Kendall tau, leave-one-target-out.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench_core.tracking import open_tracker
from benchmark.analysis.evaluation import evaluate
from benchmark.analysis.inference import paired_difference
from benchmark.analysis.meta_dataset import learned_scores, store_pairs
from benchmark.analysis.pair_features import feature_columns
from benchmark.analysis.ranker import (DEFAULT_LEARNER, LEARNERS, feature_importances,
                                       linear_weights, loto_scores)
from benchmark.analysis.ranking import ranking_agreement
from benchmark.analysis.results import repeat_results, results_tables
from registry.paths import BenchPaths, resolve_home
from registry.views import dataset_sizes

COLUMNS = ["method", "weighted_tau", "weighted_tau_low", "weighted_tau_high", "top1_regret",
           "top1_regret_low", "top1_regret_high", "kendall_tau", "kendall_tau_low",
           "kendall_tau_high"]


def mean_kendall(pairs: pd.DataFrame, scores: pd.DataFrame) -> float:
    """The mean over targets of the Kendall tau of ``scores`` against the pairs' AUC."""
    taus = []
    for t, part in pairs.groupby("target"):
        s = scores[scores["target"] == t]
        taus.append(ranking_agreement(pd.Series(part["auc"].to_numpy(), index=part["source"]),
                                      pd.Series(s["score"].to_numpy(), index=s["source"]))
                    ["kendall_tau"])
    return float(np.nanmean(np.array(taus, dtype=float)))


def synthetic(n_seeds: int) -> None:
    """Mean per-target Kendall tau of each learner, LOTO, over ``n_seeds`` synthetic stores."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from synthetic_pairs import realistic_pairs

    for sizes in ((7,), (6, 6, 6, 6)):
        taus: dict[str, list[float]] = {name: [] for name in LEARNERS}
        for seed in range(n_seeds):
            pairs = realistic_pairs(seed, sizes)
            for name, learner in LEARNERS.items():
                scores = loto_scores(pairs, learner)
                taus[name].append(mean_kendall(pairs, scores))
        print(f"{sum(sizes)} targets, {n_seeds} seeds: mean Kendall tau (sd over seeds)")
        for name, values in taus.items():
            print(f"  {name:<22} {np.mean(values):.3f} ({np.std(values, ddof=1):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="wide")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N_SEEDS")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.synthetic:
        synthetic(args.synthetic)
        return
    paths = BenchPaths(resolve_home())
    sizes = dataset_sizes(paths)
    pairs = store_pairs(paths, None, sizes)
    _, folds = results_tables(open_tracker(paths, f"transfer-bench/{args.suite}"), args.suite)
    learners = {n: f for n, f in LEARNERS.items() if n != "best-on-average"}  # a baseline too
    scores = {name: learned_scores(pairs, args.suite, learner)
              for name, learner in learners.items()}
    ev = evaluate(repeat_results(folds), scores, sizes)
    print(ev.summary[COLUMNS].round(3).to_string(index=False))
    wide = {m: ev.per_target.pivot(index="target", columns="method", values=m)
            for m in ("weighted_tau", "top1_regret")}
    for other in (n for n in learners if n != DEFAULT_LEARNER):
        for metric, table in wide.items():
            diff = paired_difference(table[DEFAULT_LEARNER], table[other], metric,
                                     np.random.default_rng(0), regret_cap=ev.regret_cap)
            print(f"{DEFAULT_LEARNER} - {other} ({metric}): {diff['diff']:+.3f} "
                  f"[{diff['low']:+.3f}, {diff['high']:+.3f}] {diff['verdict']}")
    features = [c for c in feature_columns(pairs) if pairs[c].notna().any()]
    print(f"\n{DEFAULT_LEARNER}: the largest standardised weights")
    print(linear_weights(pairs, features).head(12).round(3).to_string(index=False))
    print("\nlgbm-lambdarank: gain importances")
    print(feature_importances(pairs, features).head(10).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
