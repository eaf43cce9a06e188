"""The permutation null of a random ranking (benchmark/analysis/nulls.py), against brute force
with scipy over every permutation, and the batch metrics against ranking_agreement."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.batch_metrics import agreement_batch
from benchmark.analysis.nulls import (N_PERMUTATIONS, compare_with_null, mean_null,
                                      target_nulls, tie_pattern)
from benchmark.analysis.ranking import METRICS, ranking_agreement


def brute_force(truth: np.ndarray, scores: np.ndarray, metric: str) -> list[float]:
    names = [f"s{i}" for i in range(len(truth))]
    t = pd.Series(truth, index=names)
    return [ranking_agreement(t, pd.Series(scores[list(p)], index=names))[metric]
            for p in itertools.permutations(range(len(truth)))]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("scores", [[0.1, 0.4, 0.3, 0.9, 0.5], [1.0, 1.0, 2.0, 3.0, 3.0]])
def test_a_target_null_is_every_permutation_scored_by_scipy(metric, scores):
    truth = np.array([0.81, 0.79, 0.79, 0.9, 0.6])    # a tie in the truth too
    null = target_nulls(truth, np.array(scores), np.random.default_rng(0))[metric]
    want = pd.Series(brute_force(truth, np.array(scores), metric)).round(12).value_counts(
        normalize=True).sort_index()
    assert null.exact and null.values == pytest.approx(want.index.to_numpy(), abs=1e-12)
    assert null.probs == pytest.approx(want.to_numpy())


def test_a_random_ranking_of_four_has_the_spread_of_a_pick_not_zero():
    truth = np.array([0.9, 0.8, 0.7, 0.6])
    null = target_nulls(truth, np.arange(4.0), np.random.default_rng(0))["weighted_tau"]
    mean = (null.values * null.probs).sum()
    sd = math.sqrt((null.probs * (null.values - mean) ** 2).sum())
    assert mean == pytest.approx(0.0, abs=1e-12) and sd == pytest.approx(0.53, abs=0.01)


def test_the_mean_null_of_three_targets_is_exact_and_a_perfect_method_has_p_one_in_13824():
    rng = np.random.default_rng(0)
    truths = [rng.random(4) for _ in range(3)]
    nulls = [target_nulls(t, np.arange(4.0), rng)["weighted_tau"] for t in truths]
    joint = mean_null(nulls, rng)
    assert joint.exact and joint.probs.sum() == pytest.approx(1.0)
    test = compare_with_null(joint, 1.0)
    assert test.p_greater == pytest.approx(1 / 24 ** 3) and test.p_min == pytest.approx(2 / 24 ** 3)
    # brute force over the 13,824 joint permutations
    per = [brute_force(t, np.arange(4.0), "weighted_tau") for t in truths]
    means = np.array([np.mean(c) for c in itertools.product(*per)])
    observed = 0.6
    assert compare_with_null(joint, observed).p_greater == pytest.approx(
        np.mean(means >= observed - 1e-12))
    low, high = np.quantile(means, [0.025, 0.975], method="inverted_cdf")
    test = compare_with_null(joint, observed)
    assert (test.low, test.high) == pytest.approx((low, high))
    assert test.low < 0 < test.high        # the random baseline is not [0, 0]


def test_nine_candidates_are_sampled_and_their_p_is_never_zero():
    rng = np.random.default_rng(3)
    truth = rng.random(9)
    null = target_nulls(truth, truth.copy(), rng)["kendall_tau"]
    assert not null.exact and null.n_sampled == N_PERMUTATIONS
    test = compare_with_null(null, 1.0)
    assert 0 < test.p_greater <= 2 / (1 + N_PERMUTATIONS)   # (1 + k) / (1 + N), k about 0
    assert test.expected == pytest.approx(0.0, abs=0.02)


def test_the_tie_pattern_is_what_the_null_depends_on():
    assert tie_pattern(np.array([3.0, 1.0, 2.0])) == tie_pattern(np.array([0.1, 5.0, 9.0]))
    assert tie_pattern(np.array([1.0, 1.0, 2.0])) != tie_pattern(np.array([1.0, 2.0, 3.0]))


def test_agreement_batch_equals_ranking_agreement_row_by_row():
    rng = np.random.default_rng(5)
    x = np.round(rng.random((200, 6)), 1)                 # ties in the truth
    y = np.round(rng.random((200, 6)), 1)                 # and in the prediction
    y[rng.random((200, 6)) < 0.1] = np.nan                # NaN ranked last
    y[7] = np.nan                                         # a row with no score: undefined
    mask = rng.random((200, 6)) < 0.9
    got = agreement_batch(x, y, mask)
    names = np.array([f"s{i}" for i in range(6)])
    for r in range(200):
        m = mask[r]
        want = ranking_agreement(pd.Series(x[r][m], index=names[m]),
                                 pd.Series(y[r][m], index=names[m]))
        for metric in METRICS:
            if want[metric] is None:
                assert np.isnan(got[metric][r]), (r, metric)
            else:
                assert got[metric][r] == pytest.approx(want[metric], abs=1e-12), (r, metric)
    assert all(np.isnan(got[m][7]) for m in METRICS)
