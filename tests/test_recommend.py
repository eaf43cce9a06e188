"""Recommendation: ranking by a probe, the learned combination, leave-one-target-out regret."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.recommend import evaluate, rank, recommend
from registry.errors import BenchError

SOURCES = ["s1", "s2", "s3"]
TARGETS = ["t1", "t2", "t3"]
NAMES = SOURCES + TARGETS


def _setup():
    """Transferability falls with the 'good' probe's distance and rises with the 'bad' one's."""
    rng = np.random.default_rng(0)
    good = np.zeros((6, 6))
    rows = []
    for j, t in enumerate(TARGETS):
        d = rng.permutation([0.1, 0.5, 0.9])
        for i, s in enumerate(SOURCES):
            good[i, 3 + j] = d[i]
            tr = 5 - 5 * d[i]
            rows.append({"source": s, "target": t, "kind": "transfer",
                         "auc_mean": 0.9 * (1 + tr / 100), "transferability_mean": tr})
    bad = -good + 1
    probes = {"good": (NAMES, good), "bad": (NAMES, bad)}
    return pd.DataFrame(rows), probes


def test_rank_by_probe_distance():
    results, probes = _setup()
    ranked = rank("t1", SOURCES, "good", probes, results)
    d = probes["good"][1][:3, 3]
    assert list(ranked["source"]) == [SOURCES[i] for i in np.argsort(d)]


def test_regret_is_zero_for_a_perfect_probe_and_maximal_for_an_inverted_one():
    results, probes = _setup()
    ev = evaluate(results, probes, ["good", "bad", "learned"])
    mean = ev.groupby("method")["regret"].mean()
    gaps = results.groupby("target")["auc_mean"].agg(lambda a: a.max() - a.min())
    assert mean["good"] == 0.0
    assert mean["bad"] == pytest.approx(gaps.mean())
    assert mean["learned"] == 0.0  # learned from the other targets: distance predicts well
    per_target_random = results.groupby("target")["auc_mean"].agg(lambda a: (a.max() - a).mean())
    assert mean["random"] == pytest.approx(per_target_random.mean())


def test_learned_needs_other_targets_and_unknown_probe_is_an_error():
    results, probes = _setup()
    only = results[results["target"] == "t1"]
    with pytest.raises(BenchError, match="needs finished benchmark results of other targets"):
        rank("t1", SOURCES, "learned", probes, only)
    with pytest.raises(BenchError, match="No distances of probe 'simex'"):
        rank("t1", SOURCES, "simex", probes, results)


def test_recommend_for_a_new_target_uses_all_results():
    results, probes = _setup()
    names = NAMES + ["new"]
    good = np.pad(probes["good"][1], ((0, 1), (0, 1)))
    good[:3, 6] = [0.8, 0.05, 0.4]
    probes = {"good": (names, good)}
    rec = recommend("new", "learned", results, probes, SOURCES)
    assert list(rec.ranking["source"]) == ["s2", "s3", "s1"]
    assert set(rec.evaluation["method"]) == {"random", "good", "learned", "best-on-average",
                                             "largest-source"}


def test_probes_are_judged_beside_the_baselines():
    results, probes = _setup()
    ev = evaluate(results, probes, ["good", "bad"], sizes={"s1": 10, "s2": 300, "s3": 20})
    assert set(ev[ev["kind"] == "baseline"]["method"]) == {"random", "best-on-average",
                                                           "largest-source"}
    good = ev[ev["method"] == "good"]
    assert (good["weighted_tau"] == 1.0).all() and (good["regret"] == 0.0).all()
    assert ev[ev["method"] == "bad"]["weighted_tau"].to_numpy() == pytest.approx(-1.0)
    assert (ev[ev["method"] == "largest-source"]["recommended"] == "s2").all()



def test_best_on_average_looks_at_the_other_targets_only():
    auc = {("s1", "t1"): 0.70, ("s2", "t1"): 0.95, ("s3", "t1"): 0.80,  # t1's own: s2 best
           ("s1", "t2"): 0.90, ("s2", "t2"): 0.60, ("s3", "t2"): 0.85,
           ("s1", "t3"): 0.88, ("s2", "t3"): 0.70, ("s3", "t3"): 0.80}
    results = pd.DataFrame([{"source": s, "target": t, "kind": "transfer", "auc_mean": a,
                             "transferability_mean": 0.0} for (s, t), a in auc.items()])
    ev = evaluate(results, {}, [])
    row = ev[(ev["method"] == "best-on-average") & (ev["target"] == "t1")].iloc[0]
    assert row["recommended"] == "s1"  # mean over t2, t3: s1 0.89 > s3 0.825 > s2 0.65
    assert row["regret"] == pytest.approx(0.95 - 0.70)


def test_a_target_is_not_its_own_candidate_unless_asked():
    results, probes = _setup()
    own = pd.DataFrame([{"source": "t1", "target": "t1", "kind": "transfer", "auc_mean": 0.999,
                         "transferability_mean": 20.0}])
    with_self = pd.concat([results, own], ignore_index=True)
    names = NAMES
    probes = {"good": (names, probes["good"][1])}
    ev = evaluate(with_self, probes, ["good"])
    assert "t1" not in set(ev["best"]) and "t1" not in set(ev["recommended"].dropna())
    ev = evaluate(with_self, probes, ["good"], include_self=True)
    assert ev[ev["target"] == "t1"]["best"].iloc[0] == "t1"
    rec = recommend("t1", "good", with_self, probes, SOURCES + ["t1"])
    assert "t1" not in set(rec.ranking["source"])


def test_recommend_cli_without_results_fails_clearly(cli, bench_home):
    from mlflow.tracking import MlflowClient

    res = cli("recommend", "--target", "digits-noise")
    assert res.exit_code == 1 and "No finished results for suite 'mnist'" in res.stderr
    # the store it opened keeps artifacts beside it, not in MLflow's default ./mlruns
    exp = MlflowClient(f"sqlite:///{bench_home / 'mlflow.db'}").get_experiment_by_name(
        "transfer-bench/mnist")
    assert exp.artifact_location == (bench_home / "mlartifacts").as_uri()
