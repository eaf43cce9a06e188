"""Transferability vs probe distance: joins and statistics against scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, spearmanr

from probes.correlation import PAPER, correlations, pair_distances


def _data():
    names = ["a", "b", "c", "t1", "t2"]
    rng = np.random.default_rng(0)
    m = rng.random((5, 5))
    rows = [{"source": s, "target": t, "transferability_mean": float(rng.normal())}
            for t in ("t1", "t2") for s in ("a", "b", "c", "x")]  # x: not covered by the probe
    return pd.DataFrame(rows), names, m


def test_pairs_use_matrix_source_row_target_column_and_drop_uncovered():
    transfers, names, m = _data()
    joined = pair_distances(transfers, names, m)
    assert len(joined) == 6 and "x" not in set(joined["source"])
    row = joined[(joined["source"] == "b") & (joined["target"] == "t2")].iloc[0]
    assert row["distance"] == m[1, 4]


def test_statistics_equal_scipy_pooled_and_per_target():
    transfers, names, m = _data()
    corr, joined = correlations(transfers, {"task2vec": (names, m)})
    pooled = corr[corr["scope"] == "pooled"].iloc[0]
    j = joined["task2vec"]
    s = spearmanr(j["distance"], j["transferability_mean"])
    k = kendalltau(j["distance"], j["transferability_mean"])
    assert pooled["n"] == 6
    assert pooled["spearman_rho"] == pytest.approx(s.statistic)
    # n = 6: the exact permutation p, which the large-sample formula only approximates
    x, y = j["distance"].to_numpy(), j["transferability_mean"].to_numpy()
    obs = abs(s.statistic)
    exact = np.mean([abs(spearmanr(x, np.array(p)).statistic) >= obs - 1e-12
                     for p in itertools.permutations(y)])   # all 720 pairings, by scipy
    assert pooled["spearman_p"] == pytest.approx(exact) and pooled["p_method"] == "exact"
    assert pooled["spearman_p"] != pytest.approx(s.pvalue)
    assert pooled["kendall_tau"] == pytest.approx(k.statistic)
    assert pooled["paper_r"] == PAPER["task2vec"]["r"] == -0.11
    per = corr[corr["scope"] == "t1"].iloc[0]
    g = j[j["target"] == "t1"]
    assert per["spearman_rho"] == pytest.approx(spearmanr(g["distance"], g["transferability_mean"]).statistic)


def test_too_few_points_give_no_statistic_instead_of_nan():
    transfers = pd.DataFrame([{"source": "a", "target": "t", "transferability_mean": 1.0},
                              {"source": "b", "target": "t", "transferability_mean": 2.0}])
    corr, _ = correlations(transfers, {"expert": (["a", "b", "t"], np.ones((3, 3)))})
    assert corr.iloc[0]["spearman_rho"] is None and corr.iloc[0]["n"] == 2


def test_small_samples_get_exact_permutation_p_values():
    """At n = 4 spearmanr's large-sample p prints 0.000 for rho = 1; the exact p over the 24
    pairings is 2/24 = 0.083."""
    from probes.correlation import _stats

    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 5.0, 9.0])
    got = _stats(x, y)
    assert got["spearman_rho"] == 1.0 and got["p_method"] == "exact"
    assert got["spearman_p"] == pytest.approx(2 / 24) and got["kendall_p"] == pytest.approx(2 / 24)
    rho = [spearmanr(x, np.array(p)).statistic for p in itertools.permutations(y)]
    z = np.array([0.3, 0.1, 0.9, 0.5, 0.2])
    w = np.array([1.0, 0.4, 0.8, 0.9, 0.1])
    obs = spearmanr(z, w).statistic
    brute = np.mean([abs(spearmanr(z, np.array(p)).statistic) >= abs(obs) - 1e-12
                     for p in itertools.permutations(w)])
    assert _stats(z, w)["spearman_p"] == pytest.approx(brute)
    assert max(rho) == 1.0
    big = _stats(np.arange(12.0), np.random.default_rng(0).random(12))
    assert big["p_method"] == "asymptotic"
