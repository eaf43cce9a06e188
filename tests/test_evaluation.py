"""Ranking agreement, baselines and the evaluation's per-target figures, against scipy/numpy and
hand-made tables (the noise ceiling: tests/test_ceiling.py; intervals and tests:
tests/test_inference.py, tests/test_nulls.py, tests/test_verdicts.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, spearmanr, weightedtau

from benchmark.analysis.ranking import EvaluationError, ranking_agreement
from benchmark.analysis.baselines import best_on_average_scores, static_size_scores
from benchmark.analysis.evaluation import evaluate, figures
from benchmark.analysis.ceiling import noise_ceiling, pair_spread
from registry.errors import BenchError

TRUTH = pd.Series({"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6})


def results_table(aucs: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """One row per repeat from {(source, target): [auc of repeat 0, repeat 1, ...]}."""
    return pd.DataFrame([{"source": s, "target": t, "repeat": r, "auc": v}
                         for (s, t), values in aucs.items() for r, v in enumerate(values)])


def scores_table(scores: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame([{"source": s, "target": t, "score": v} for (s, t), v in scores.items()])


def row_of(table: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    assert mask.sum() == 1, f"{mask.sum()} rows match {where}"
    return table[mask].iloc[0]


# --- ranking_agreement ------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_correlations_equal_scipy_on_the_same_vectors(ties):
    rng = np.random.default_rng(3)
    names = [f"s{i}" for i in range(9)]
    t = rng.random(9)
    p = t + rng.normal(0, 0.3, 9)
    if ties:
        t, p = np.round(t, 1), np.round(p, 1)
    # the sensitivity of the check: the rank argument (and the argument order) changes the value
    assert weightedtau(t, p, rank=None).statistic != pytest.approx(weightedtau(t, p).statistic)
    assert weightedtau(t, p, rank=None).statistic != pytest.approx(
        weightedtau(p, t, rank=None).statistic)
    order = rng.permutation(9)  # the prediction in another order: aligned by source name
    got = ranking_agreement(pd.Series(t, index=names),
                            pd.Series(p[order], index=[names[i] for i in order]))
    assert got["n_sources"] == 9
    assert got["kendall_tau"] == pytest.approx(kendalltau(t, p).statistic, abs=1e-12)
    assert got["weighted_tau"] == pytest.approx(weightedtau(t, p, rank=None).statistic, abs=1e-12)
    assert got["spearman_rho"] == pytest.approx(spearmanr(t, p).statistic, abs=1e-12)


def test_top1_regret_on_a_hand_made_table():
    picks_c = pd.Series({"a": 0.1, "b": 0.2, "c": 0.9, "d": 0.3})
    got = ranking_agreement(TRUTH, picks_c)
    assert got["top1_regret"] == pytest.approx(0.2)
    assert (got["recommended"], got["best"]) == ("c", "a")
    assert ranking_agreement(TRUTH, TRUTH * 10)["top1_regret"] == 0.0
    tie_c_d = pd.Series({"a": 0.1, "b": 0.2, "c": 0.9, "d": 0.9})  # mean of 0.2 and 0.3
    got = ranking_agreement(TRUTH, tie_c_d)
    assert got["top1_regret"] == pytest.approx(0.25)
    assert got["recommended"] == "c|d"


def test_nan_predictions_rank_last_and_sources_outside_the_truth_are_ignored():
    predicted = pd.Series({"a": np.nan, "b": 0.1, "c": 0.5, "d": 0.2, "zz": 99.0})
    got = ranking_agreement(TRUTH, predicted)
    assert got["n_sources"] == 4 and got["recommended"] == "c"
    last = pd.Series({"a": -1e9, "b": 0.1, "c": 0.5, "d": 0.2})
    assert got["kendall_tau"] == pytest.approx(kendalltau(TRUTH, last).statistic)
    assert got["weighted_tau"] == pytest.approx(weightedtau(TRUTH, last, rank=None).statistic)
    unknown = ranking_agreement(TRUTH.mask(TRUTH.index == "a"), TRUTH)  # NaN truth: no candidate
    assert unknown["n_sources"] == 3 and unknown["best"] == "b"


def _none_not_nan(row: dict) -> None:
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in row.values()), row


@pytest.mark.filterwarnings("error")  # nor scipy's warnings about constant input
def test_undefined_cases_are_none_not_nan_nor_exceptions():
    one = ranking_agreement(TRUTH, pd.Series({"a": 1.0, "x": 2.0}))
    assert one["n_sources"] == 1 and all(one[m] is None for m in
                                         ("kendall_tau", "weighted_tau", "spearman_rho",
                                          "top1_regret"))
    constant_prediction = ranking_agreement(TRUTH, pd.Series(0.5, index=TRUTH.index))
    assert constant_prediction["kendall_tau"] is None
    assert constant_prediction["weighted_tau"] is None
    assert constant_prediction["spearman_rho"] is None
    assert constant_prediction["top1_regret"] == pytest.approx(0.15)  # mean of 0, .1, .2, .3
    constant_truth = ranking_agreement(pd.Series(0.7, index=TRUTH.index), TRUTH)
    assert constant_truth["weighted_tau"] is None and constant_truth["top1_regret"] == 0.0
    for row in (one, constant_prediction, constant_truth):
        _none_not_nan(row)


def test_a_method_that_scored_no_candidate_is_not_judged_there():
    """No score is no ranking: the target is left out of the method's figures (before, the
    all-NaN prediction became a constant one and got a random pick's regret)."""
    got = ranking_agreement(TRUTH, pd.Series(np.nan, index=TRUTH.index))
    assert got["n_sources"] == 4
    assert all(got[m] is None for m in ("kendall_tau", "weighted_tau", "top1_regret"))


# --- baselines --------------------------------------------------------------------------------


def three_targets() -> dict[tuple[str, str], list[float]]:
    return {("a", "t1"): [0.9], ("b", "t1"): [0.5], ("c", "t1"): [0.6], ("d", "t1"): [0.7],
            ("a", "t2"): [0.5, 0.9], ("b", "t2"): [0.8, 0.8], ("c", "t2"): [0.7, 0.7],
            ("a", "t3"): [0.6], ("b", "t3"): [0.8], ("c", "t3"): [0.75]}


def test_best_on_average_is_the_mean_over_the_other_targets():
    scores = best_on_average_scores(results_table(three_targets()))
    for_t1 = scores[scores["target"] == "t1"].set_index("source")["score"]
    # a: mean(mean(.5, .9), .6) = .65, b: .8, c: .725; d has no other target: NaN
    assert for_t1[["a", "b", "c"]].to_dict() == pytest.approx({"a": 0.65, "b": 0.8, "c": 0.725})
    assert math.isnan(for_t1["d"])
    for_t2 = scores[scores["target"] == "t2"].set_index("source")["score"]
    assert for_t2.to_dict() == pytest.approx({"a": 0.75, "b": 0.65, "c": 0.675})
    row = row_of(figures(results_table(three_targets()), {}, {}),
                 method="best-on-average", target="t1")
    assert row["recommended"] == "b" and row["best"] == "a"
    assert row["top1_regret"] == pytest.approx(0.4)


def test_best_on_average_never_reads_the_targets_own_results():
    table = three_targets()
    before = best_on_average_scores(results_table(table))
    table.update({("a", "t1"): [0.1], ("b", "t1"): [0.99], ("c", "t1"): [0.3], ("d", "t1"): [0.2]})
    after = best_on_average_scores(results_table(table))
    pd.testing.assert_frame_equal(before[before["target"] == "t1"].reset_index(drop=True),
                                  after[after["target"] == "t1"].reset_index(drop=True))
    # ... while the other targets do see it (the check is not vacuous)
    assert not before[before["target"] == "t2"]["score"].equals(
        after[after["target"] == "t2"]["score"])


def test_static_size_ranks_by_size():
    sizes = {"a": 100, "b": 5000, "c": 300}  # d: unknown size, ranked last
    results = results_table(three_targets())
    scores = static_size_scores(results, sizes, targets=["t1"])
    got = scores.set_index("source")["score"]
    assert got[["a", "b", "c"]].to_dict() == pytest.approx({"a": 2.0, "b": math.log10(5000),
                                                            "c": math.log10(300)})
    assert math.isnan(got["d"])
    row = row_of(figures(results, {}, sizes), method="static-size", target="t1")
    assert row["recommended"] == "b" and row["top1_regret"] == pytest.approx(0.4)
    truth = [0.9, 0.5, 0.6, 0.7]
    ranks = [100, 5000, 300, 0]  # d last
    assert row["kendall_tau"] == pytest.approx(kendalltau(truth, ranks).statistic)


# --- a target is not its own candidate --------------------------------------------------------


def with_self() -> pd.DataFrame:
    return results_table({("a", "t1"): [0.7, 0.72], ("b", "t1"): [0.6, 0.61],
                          ("t1", "t1"): [0.99, 0.98], ("a", "t2"): [0.5, 0.55],
                          ("t1", "t2"): [0.8, 0.7]})


def test_the_target_is_excluded_as_its_own_candidate_by_default():
    results = with_self()
    probe = scores_table({("a", "t1"): 0.0, ("b", "t1"): 1.0, ("t1", "t1"): 9.0})
    sizes = {"a": 1, "b": 2, "t1": 3}
    default = figures(results, {"p": probe}, sizes)
    for method in ("p", "random", "best-on-average", "static-size"):
        row = row_of(default, method=method, target="t1")
        assert row["n_sources"] == 2 and row["best"] == "a", method
    assert row_of(default, method="p", target="t1")["recommended"] == "b"
    baseline = best_on_average_scores(results)
    assert not (baseline["source"] == baseline["target"]).any()
    spread = pair_spread(results)
    assert not ((spread["source"] == "t1") & (spread["target"] == "t1")).any()
    assert row_of(noise_ceiling(results), target="t1")["n_sources"] == 2

    included = figures(results, {"p": probe}, sizes, include_self=True)
    for method in ("p", "random", "best-on-average", "static-size"):
        assert row_of(included, method=method, target="t1")["n_sources"] == 3, method
    row = row_of(included, method="p", target="t1")
    assert row["best"] == "t1" and row["recommended"] == "t1" and row["top1_regret"] == 0.0
    assert len(pair_spread(results, include_self=True)) == len(spread) + 1
    assert row_of(noise_ceiling(results, include_self=True), target="t1")["n_sources"] == 3


# --- spread over repeats ---------------------------------------------------------------------


def test_pair_spread_matches_numpy():
    values = {("a", "t"): [0.7, 0.75, 0.9], ("b", "t"): [0.6, 0.61], ("c", "t"): [0.5]}
    results = results_table(values)
    results["transferability"] = np.arange(len(results), dtype=float) ** 2
    spread = pair_spread(results)
    for (source, target), aucs in values.items():
        row = row_of(spread, source=source, target=target)
        assert row["n_repeats"] == len(aucs)
        assert row["auc_mean"] == pytest.approx(np.mean(aucs))
        assert (row["auc_min"], row["auc_max"]) == (min(aucs), max(aucs))
        if len(aucs) > 1:
            assert row["auc_std"] == pytest.approx(np.std(aucs, ddof=1))
        else:
            assert math.isnan(row["auc_std"])
        tr = results.loc[results["source"] == source, "transferability"].to_numpy()
        assert row["transferability_mean"] == pytest.approx(tr.mean())
    assert row_of(spread, source="a", target="t")["transferability_std"] == pytest.approx(
        np.std([0.0, 1.0, 4.0], ddof=1))
    assert "transferability_mean" not in pair_spread(results.drop(columns="transferability"))


# --- evaluate ---------------------------------------------------------------------------------


def noisy(sd: float, repeats: int = 6, targets: int = 4, seed: int = 1,
          shuffle: bool = False) -> pd.DataFrame:
    """8 sources 0.02 AUC apart plus Gaussian noise per repeat; ``shuffle``: a different order
    of the sources for every target."""
    rng = np.random.default_rng(seed)
    aucs = {}
    for k in range(targets):
        base = 0.7 + 0.02 * (rng.permutation(8) if shuffle else np.arange(8))
        for i, auc in enumerate(base):
            aucs[(f"s{i}", f"t{k}")] = list(auc + rng.normal(0, sd, repeats))
    return results_table(aucs)


def test_evaluate_rows_and_summary():
    results = noisy(0.005, repeats=3, targets=3, shuffle=True)
    truth = results.groupby(["source", "target"], as_index=False)["auc"].mean()
    oracle = truth.rename(columns={"auc": "score"})
    reverse = oracle.assign(score=-oracle["score"])
    sizes = {f"s{i}": 10 * (8 - i) for i in range(8)}
    by_size = oracle.assign(score=oracle["source"].map(sizes).astype(float))
    ev = evaluate(results, {"oracle": oracle, "reverse": reverse, "size": by_size}, sizes)
    table = ev.per_target
    assert len(table) == 3 * 6
    for target in ("t0", "t1", "t2"):
        row = row_of(table, method="oracle", target=target)
        assert row["kind"] == "probe" and row["n_sources"] == 8
        assert row["kendall_tau"] == pytest.approx(1.0) and row["top1_regret"] == 0.0
        assert row["recommended"] == row["best"]
        assert row["weighted_tau_p"] == pytest.approx(1 / math.factorial(8))
        assert row_of(table, method="reverse", target=target)["kendall_tau"] == pytest.approx(-1)
        assert row_of(table, method="random", target=target)["kind"] == "baseline"

    summary = ev.summary.set_index("method")
    assert summary.loc["oracle", "top1_regret"] == 0.0
    assert summary.loc["oracle", "weighted_tau"] == pytest.approx(1.0)
    assert summary.loc["oracle", "beats_random_weighted_tau_verdict"] == "better"
    assert summary.loc["reverse", "beats_random_weighted_tau_verdict"] == "worse"
    assert summary.loc["reverse", "beats_random_top1_regret_verdict"] == "worse"
    # paired verdicts over 3 targets: too few, whatever the differences
    for base in ("best_on_average", "static_size"):
        assert summary.loc["oracle", f"beats_{base}_weighted_tau_verdict"] == \
            "too few targets to judge"
    # a probe that ranks like the static-size baseline does not beat it: ties are no win
    size_rows = table[table["method"] == "size"].drop(columns=["method", "kind"])
    baseline_rows = table[table["method"] == "static-size"].drop(columns=["method", "kind"])
    pd.testing.assert_frame_equal(size_rows.reset_index(drop=True),
                                  baseline_rows.reset_index(drop=True))
    assert summary.loc["size", "beats_static_size_weighted_tau_diff"] == 0.0
    assert (summary.loc["size", "beats_static_size_weighted_tau_wins"],
            summary.loc["size", "beats_static_size_weighted_tau_ties"]) == (0, 3)


def test_bad_input_is_a_bench_error():
    results = results_table({("a", "t"): [0.5], ("b", "t"): [0.6]})
    with pytest.raises(BenchError, match="auc"):
        evaluate(results.drop(columns="auc"), {}, {})
    with pytest.raises(EvaluationError, match="random"):
        evaluate(results, {"random": scores_table({("a", "t"): 1.0})}, {})
    twice = pd.concat([scores_table({("a", "t"): 1.0})] * 2)
    with pytest.raises(EvaluationError, match="more than one row"):
        evaluate(results, {"p": twice}, {})
    with pytest.raises(EvaluationError, match="no .source, target. pair with an AUC"):
        evaluate(results.assign(auc=np.nan), {}, {})
