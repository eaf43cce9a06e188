"""Inference over a handful of targets (benchmark/analysis/inference.py): the bootstrap-t
against the coverage benchmark's own implementation (what was measured is what is adopted),
the jackknife against the Student-t interval, the paired test, ties, and the verdict words
allowed at each number of targets."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.analysis.inference import (MIN_PAIRED, MIN_TARGETS, N_BOOT, TIE_TOL, TOO_FEW,
                                          bootstrap_t, interval_verdict, jackknife_interval,
                                          mean_interval, p_verdict, paired_difference)

_PATH = Path(__file__).parent / "bench" / "bench_coverage.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_coverage", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_coverage"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("values", [[0.52, 1.0, 1.0], [0.1, 0.4, -0.2, 0.9, 0.3, 0.35],
                                    [1.0, 1.0, 1.0, 0.8, 1.0]])
def test_the_bootstrap_t_is_the_one_the_coverage_benchmark_measured(values):
    bc = _bench()
    x = np.asarray(values)
    block = bc.Block(tab=x[None, None, :, None], probs=np.ones(1), full=0)
    low, high = bc.bootstrap_t(block, np.random.default_rng(7), bc.Config(n_boot=N_BOOT))
    iv, _ = bootstrap_t(x, np.random.default_rng(7), bounds=(-math.inf, math.inf))
    assert (iv.low, iv.high) == pytest.approx((float(low[0, 0]), float(high[0, 0])))
    assert iv.mean == pytest.approx(x.mean()) and iv.n == len(x)


def test_the_bootstrap_t_may_leave_the_observed_range_and_is_clipped_to_the_figures():
    """A percentile bootstrap cannot leave the observed targets' range: over 3 targets its
    ends were about the worst and best target (LEEP: [0.396, 1.000] where a t-interval on the
    same targets gives [-0.18, 1.73])."""
    values = np.array([0.52, 1.0, 1.0])
    raw, _ = bootstrap_t(values, np.random.default_rng(0), bounds=(-math.inf, math.inf))
    assert raw.low < values.min() and raw.high > 1.0
    clipped = mean_interval(values, "weighted_tau", np.random.default_rng(0))
    assert clipped.high == 1.0 and clipped.low == max(-1.0, raw.low)
    assert not clipped.enough and clipped.minimum == MIN_TARGETS["weighted_tau"]
    regret = mean_interval([0.0, 0.0, 0.01, 0.02], "top1_regret", np.random.default_rng(0))
    assert regret.low >= 0.0 and regret.minimum == MIN_TARGETS["top1_regret"]


def test_too_few_values_nan_and_constant_values():
    iv, p = bootstrap_t([], np.random.default_rng(0))
    assert math.isnan(iv.mean) and math.isnan(p)
    one, _ = bootstrap_t([0.4, np.nan], np.random.default_rng(0))
    assert one.mean == 0.4 and math.isnan(one.low) and one.n == 1
    same, p = bootstrap_t([0.0] * 6, np.random.default_rng(0))
    assert (same.low, same.high, p) == (0.0, 0.0, 1.0)


def test_the_bootstrap_t_p_rejects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    _, p_real = bootstrap_t(rng.normal(0.5, 0.2, 12), np.random.default_rng(2))
    _, p_null = bootstrap_t(rng.normal(0.0, 0.2, 12), np.random.default_rng(3))
    assert p_real < 0.01 < 0.05 < p_null
    assert p_real >= 1 / (1 + N_BOOT)             # add-one: never 0


def test_jackknife_of_the_mean_is_the_student_t_interval():
    rng = np.random.default_rng(0)
    values = rng.normal(0.3, 0.2, 7)
    jk = jackknife_interval(values, np.mean, bounds=(-math.inf, math.inf))
    low, high = stats.t.interval(0.95, 6, loc=values.mean(), scale=stats.sem(values))
    assert (jk.mean, jk.low, jk.high) == pytest.approx((values.mean(), low, high), abs=1e-12)


def test_paired_difference_of_aligned_targets():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.6, 0.2, 8), rng.normal(0.4, 0.2, 8)
    b[3] = np.nan                                   # a target only one of them has
    got = paired_difference(a, b, "weighted_tau", np.random.default_rng(5))
    keep = ~np.isnan(b)
    d = (a - b)[keep]
    iv, p = bootstrap_t(d, np.random.default_rng(5), bounds=(-math.inf, math.inf))
    assert got["n"] == 7 and got["diff"] == pytest.approx(d.mean())
    assert (got["low"], got["high"], got["p"]) == pytest.approx((iv.low, iv.high, p))
    assert (got["wins"], got["ties"], got["losses"]) == ((d > 0).sum(), 0, (d < 0).sum())
    # regret: lower is better, so the difference is other - method
    flipped = paired_difference(a, b, "top1_regret", np.random.default_rng(5))
    assert flipped["diff"] == pytest.approx(-got["diff"]) and flipped["wins"] == got["losses"]


def test_float_noise_is_a_tie_not_a_win():
    """The bootstrap's win share counted +2.8e-17 as a win (33 % where 24.5 % was right)."""
    base = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.4])
    noise = base + np.array([2.8e-17, -1e-16, 0.0, 5e-13, 0.0, 0.0])
    got = paired_difference(noise, base, "weighted_tau", np.random.default_rng(0))
    assert (got["wins"], got["ties"], got["losses"]) == (0, 6, 0)
    assert got["diff"] == 0.0 and got["p"] == 1.0 and got["verdict"] == "not distinguishable"
    real = paired_difference(base + 2 * TIE_TOL, base, "weighted_tau", np.random.default_rng(0))
    assert real["wins"] == 6


def test_paired_verdicts_need_the_measured_minimum_of_targets():
    """Over 3 targets an exact sign-flip test cannot go below p = 0.25: 'same sign on all 3
    targets' is no verdict."""
    big = paired_difference([0.9, 0.95, 1.0], [0.1, 0.2, 0.15], "weighted_tau",
                            np.random.default_rng(0))
    assert big["diff"] > 0.7 and big["wins"] == 3 and big["verdict"] == TOO_FEW
    n = MIN_PAIRED["weighted_tau"]
    rng = np.random.default_rng(2)
    better = paired_difference(rng.normal(0.9, 0.05, n), rng.normal(0.1, 0.05, n),
                               "weighted_tau", np.random.default_rng(3))
    assert better["verdict"] == "better"
    worse = paired_difference(rng.normal(0.1, 0.05, n), rng.normal(0.9, 0.05, n),
                              "weighted_tau", np.random.default_rng(3))
    assert worse["verdict"] == "worse"
    regret = paired_difference(rng.normal(0.01, 0.001, n), rng.normal(0.05, 0.001, n),
                               "top1_regret", np.random.default_rng(3))
    assert n < MIN_PAIRED["top1_regret"] and regret["verdict"] == TOO_FEW


def test_verdict_words():
    assert interval_verdict(mean_interval([], "weighted_tau", np.random.default_rng(0))) is None
    assert p_verdict(0.01, 0.99, 0.001) == "better"
    assert p_verdict(0.99, 0.01, 0.001) == "worse"
    assert p_verdict(0.03, 0.97, 0.001) == "not distinguishable"   # two-sided 0.06
    # one target of 4 candidates: the best possible two-sided p is 2/24
    assert p_verdict(1 / 24, 1.0, 2 / 24) == TOO_FEW
    assert p_verdict(math.nan, 0.5, 0.1) is None
