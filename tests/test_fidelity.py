"""Fidelity of score gaps and the figures without the largest source (Singh, Hess &
Vanschoren 2026), against numpy and the evaluation run on the reduced tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.baselines import baseline_score_tables, static_size_scores
from benchmark.analysis.evaluation import (evaluate, figures, largest_sources,
                                           leave_largest_out, without_sources)
from benchmark.analysis.fidelity import fidelity
from benchmark.analysis.inference import jackknife_interval
from benchmark.analysis.ranking import METRICS, truth_table


def suite(seed: int, n_targets: int = 4, n_sources: int = 6, repeats: int = 3,
          noise: float = 0.05, n_probes: int = 2):
    """A synthetic suite: results, sizes, latent truth and random probes."""
    rng = np.random.default_rng(seed)
    names = [f"d{i}" for i in range(n_sources)]
    latent = {(s, t): rng.random() for t in names[:n_targets] for s in names if s != t}
    rows = [{"source": s, "target": t, "repeat": r, "auc": mu + rng.normal(0, noise)}
            for (s, t), mu in latent.items() for r in range(repeats)]
    sizes = {s: int(rng.integers(100, 100_000)) for s in names}
    probes = {f"p{k}": pd.DataFrame([{"source": s, "target": t, "score": rng.random()}
                                     for (s, t) in latent]) for k in range(n_probes)}
    return pd.DataFrame(rows), sizes, probes


def test_fidelity_against_numpy():
    results, _, probes = suite(12, n_probes=1)
    probes["p0"].loc[2, "score"] = np.nan      # a source without a score drops out
    table = fidelity(results, probes)
    truth = truth_table(results)
    all_dx, all_dy, per = [], [], []
    for target in sorted(truth["target"].unique()):
        t = truth[truth["target"] == target].set_index("source")["auc"]
        p = probes["p0"][probes["p0"]["target"] == target].set_index("source")["score"]
        common = [s for s in t.index if s in p.index and not np.isnan(p[s])]
        dx = [t[i] - t[j] for i in common for j in common if i != j]
        dy = [p[i] - p[j] for i in common for j in common if i != j]
        all_dx += dx
        all_dy += dy
        per.append([np.dot(dx, dy), np.dot(dx, dx), np.dot(dy, dy)])
        row = table.query("scope == 'target' and target == @target").iloc[0]
        assert row["fidelity"] == pytest.approx(np.corrcoef(dx, dy)[0, 1], abs=1e-12)
        assert row["n_pairs"] == len(dx) // 2
    pooled = table.query("scope == 'pooled'").iloc[0]
    assert pooled["fidelity"] == pytest.approx(np.corrcoef(all_dx, all_dy)[0, 1], abs=1e-12)
    # the jackknife over targets, by hand
    sums = np.array(per)
    jk = jackknife_interval(sums, lambda r: r[:, 0].sum() / math.sqrt(r[:, 1].sum() *
                                                                      r[:, 2].sum()))
    assert (pooled["fidelity_low"], pooled["fidelity_high"]) == pytest.approx((jk.low, jk.high))
    perfect = fidelity(results, {"t": truth.rename(columns={"auc": "score"})})
    assert perfect.query("scope == 'pooled'")["fidelity"].iloc[0] == pytest.approx(1.0)


def test_leave_largest_out_removes_exactly_the_largest_source():
    results, sizes, probes = suite(13, n_sources=7)
    largest = max(sizes, key=sizes.get)
    assert largest_sources(results, sizes) == [largest]
    reduced = without_sources(results, [largest])
    assert set(reduced["source"]) == set(results["source"]) - {largest}
    assert set(reduced["target"]) == set(results["target"])   # still a target if it was one
    full = evaluate(results, probes, sizes).summary
    table = leave_largest_out(results, probes, sizes, full).set_index("method")
    assert (table["left_out"] == largest).all()
    expected = evaluate(reduced, {k: without_sources(v, [largest]) for k, v in probes.items()},
                        sizes).summary.set_index("method")
    for metric in METRICS:
        for m in expected.index:
            assert table.loc[m, f"{metric}_without"] == pytest.approx(expected.loc[m, metric],
                                                                      abs=1e-12, nan_ok=True)
            assert table.loc[m, f"{metric}_all"] == pytest.approx(
                full.set_index("method").loc[m, metric], abs=1e-12, nan_ok=True)


def test_static_size_is_one_list_for_every_target_and_a_method_table():
    results, sizes, _ = suite(14)
    static = static_size_scores(results, sizes)
    assert list(static.columns) == ["source", "target", "score"]
    assert (static.groupby("source")["score"].nunique() == 1).all()
    for s, v in static.groupby("source")["score"].first().items():
        assert v == pytest.approx(math.log10(sizes[s]))
    table = figures(results, {"static": static}, sizes)
    a = table[table["method"] == "static"].set_index("target")
    b = table[table["method"] == "static-size"].set_index("target")
    for metric in METRICS:
        np.testing.assert_allclose(a[metric].astype(float), b[metric].astype(float))
    assert set(baseline_score_tables(results, sizes)) == {"best-on-average", "static-size"}
