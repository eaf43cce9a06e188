"""Transferability vs probe distance: joins and statistics against scipy."""

from __future__ import annotations

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
    assert pooled["spearman_p"] == pytest.approx(s.pvalue)
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
