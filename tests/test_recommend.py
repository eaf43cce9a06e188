"""Recommendation: the method is chosen on the other targets only (a poisoned target changes
nothing of its own choice), with its interval and verdict against a random pick, said plainly
when nothing beats it; ranking by a probe and by the baselines; the CLI without results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.pair_features import LABEL
from benchmark.analysis.recommend import describe, judge, rank
from benchmark.analysis.selection import cost, pick
from registry.errors import BenchError

SOURCES = ["s1", "s2", "s3", "s4"]
TARGETS = ["t1", "t2", "t3", "t4", "t5"]
NAMES = SOURCES + TARGETS
SIZES = {"s1": 10, "s2": 300, "s3": 20, "s4": 40}


def _setup(seed: int = 0):
    """Repeat-level results where the 'good' probe's distance predicts the AUC and the 'bad'
    one's is random; no store pairs (the learned ranker then has nothing to learn from)."""
    rng = np.random.default_rng(seed)
    good, bad = np.zeros((9, 9)), rng.random((9, 9))
    rows = []
    for j, t in enumerate(TARGETS):
        d = rng.permutation([0.1, 0.4, 0.7, 0.9])
        for i, s in enumerate(SOURCES):
            good[i, 4 + j] = d[i]
            for r in range(3):
                rows.append({"source": s, "target": t, "repeat": r,
                             "auc": 0.9 - 0.2 * d[i] + rng.normal(0, 0.005)})
    probes = {"good": (NAMES, good), "bad": (NAMES, bad)}
    pairs = pd.DataFrame(columns=["source", "target", LABEL, "suite"])
    return pd.DataFrame(rows), probes, pairs


def test_auto_chooses_the_best_method_on_the_other_targets_with_its_interval():
    results, probes, pairs = _setup()
    evaluation, choice = judge("t1", "auto", results, probes, pairs, "s", SIZES)
    assert choice["method"] == "good" and choice["chosen_by"].startswith("best weighted tau")
    assert choice["weighted_tau"] == pytest.approx(1.0)
    assert choice["weighted_tau_low"] <= choice["weighted_tau"] <= choice["weighted_tau_high"]
    assert choice["n_targets"] == 4  # t1 itself takes no part
    assert choice["distinguishable_from_random"] and choice["vs_random"]["verdict"] == "better"
    assert choice["vs_random"]["p"] == pytest.approx(1 / 24 ** 4)  # exact: 4 perfect targets
    assert choice["runner_up_method"] != "good" and choice["tied_with"] == []
    assert "better than a random pick" in choice["message"]
    assert set(evaluation["method"]) >= {"random", "good", "bad", "learned", "best-on-average",
                                          "static-size"}


def test_the_choice_for_a_target_never_reads_its_results():
    results, probes, pairs = _setup()
    poisoned = results.copy()
    rows = poisoned["target"] == "t1"
    poisoned.loc[rows, "auc"] = 1.5 - poisoned.loc[rows, "auc"]  # its ranking reversed
    a = judge("t1", "auto", results, probes, pairs, "s", SIZES)
    b = judge("t1", "auto", poisoned, probes, pairs, "s", SIZES)
    pd.testing.assert_frame_equal(a[0], b[0])
    assert json.dumps(a[1], sort_keys=True, default=str) == \
        json.dumps(b[1], sort_keys=True, default=str)
    assert judge("t2", "auto", poisoned, probes, pairs, "s", SIZES)[0].equals(
        judge("t2", "auto", results, probes, pairs, "s", SIZES)[0]) is False


def test_the_nested_reliability_chooses_each_held_out_target_without_it():
    """For each other target h the procedure's pick is made without h: reversing h's results
    changes its figure there, never the pick; the reliability is the mean of the picks'
    figures on their held-out targets, beside (not instead of) the winner's figure."""
    results, probes, pairs = _setup()
    mixed = probes["good"][1].copy()
    mixed[:4, 6] = 1 - mixed[:4, 6]          # right on t2, t4, t5; reversed on t3
    probes = {"mixed": (NAMES, mixed), "bad": probes["bad"]}
    _, choice = judge("t1", "auto", results, probes, pairs, "s", SIZES)
    rel = choice["reliability"]
    assert [p["target"] for p in rel["picks"]] == ["t2", "t3", "t4", "t5"]
    assert rel["n_targets"] == 4
    assert rel["weighted_tau"] == pytest.approx(np.mean([p["weighted_tau"] for p in rel["picks"]]))
    assert "The whole procedure, nested" in choice["message"]
    json.dumps(choice, allow_nan=False)  # what --json prints: strict JSON, no NaN nor inf
    _, two = judge("t1", "auto", results[results["target"].isin(["t1", "t2", "t3"])], probes,
                   pairs, "s", SIZES)
    assert two["reliability"]["n_targets"] == 2 and two["weighted_tau_low"] is None
    json.dumps(two, allow_nan=False)
    poisoned = results.copy()
    rows = poisoned["target"] == "t3"
    poisoned.loc[rows, "auc"] = 1.5 - poisoned.loc[rows, "auc"]
    _, other = judge("t1", "auto", poisoned, probes, pairs, "s", SIZES)
    before = {p["target"]: p for p in rel["picks"]}
    after = {p["target"]: p for p in other["reliability"]["picks"]}
    assert after["t3"]["method"] == before["t3"]["method"]        # chosen without t3
    assert after["t3"]["weighted_tau"] != pytest.approx(before["t3"]["weighted_tau"])


def test_ties_are_named_and_broken_by_regret_then_cost_whatever_the_order():
    """MLflow returns probe runs in no fixed order: the choice must not depend on it."""
    means = pd.DataFrame([
        {"method": "otdd", "kind": "probe", "n_targets": 4, "weighted_tau": 0.8,
         "top1_regret": 0.01},
        {"method": "logme", "kind": "probe", "n_targets": 4, "weighted_tau": 0.8 + 1e-12,
         "top1_regret": 0.02},
        {"method": "expert", "kind": "probe", "n_targets": 4, "weighted_tau": 0.8,
         "top1_regret": 0.01},
        {"method": "knn", "kind": "probe", "n_targets": 4, "weighted_tau": 0.7,
         "top1_regret": 0.0}])
    for seed in range(4):
        shuffled = means.sample(frac=1, random_state=seed)
        got = pick(shuffled)
        # otdd and expert: same tau and regret; expert reads the card (cost 1), otdd solves
        # optimal transport (4); logme is within float noise of them but has a higher regret
        assert got["method"] == "expert" and got["tie_break"] == "its lower cost"
        assert got["tied_with"] == ["otdd", "logme"] and got["runner_up"] == "otdd"
    assert cost("expert") < cost("logme") < cost("otdd") < cost("learned")
    assert cost("static-size") == 0 and cost("someone-elses-score") == 9
    lower = means.assign(top1_regret=[0.02, 0.01, 0.03, 0.0])
    assert pick(lower) | {"runner_up": None} == {
        "method": "logme", "tied_with": ["otdd", "expert"], "tie_break": "its lower top-1 regret",
        "runner_up": None}


def test_twin_probes_tie_and_the_choice_is_the_same_in_any_order():
    results, probes, pairs = _setup()
    twins = {"twin-b": probes["good"], "twin-a": probes["good"], "bad": probes["bad"]}
    _, one = judge("t1", "auto", results, twins, pairs, "s", SIZES)
    _, two = judge("t1", "auto", results, dict(reversed(list(twins.items()))), pairs, "s",
                   SIZES)
    assert one["method"] == two["method"] == "twin-a"
    assert one["tied_with"] == two["tied_with"] == ["twin-b"]
    assert one["tie_break"].startswith("name") and "tied with twin-b" in one["message"]


def test_when_nothing_beats_a_random_pick_it_says_so():
    results, probes, pairs = _setup()
    mixed = probes["good"][1].copy()
    mixed[:4, 7:] = 1 - mixed[:4, 7:]  # right on t2 and t3, reversed on t4 and t5
    evaluation, _ = judge("t1", "auto", results, {"mixed": (NAMES, mixed)}, pairs, "s", SIZES)
    only = evaluation[evaluation["method"].isin(["random", "mixed"])]
    choice = describe(only, "mixed", "best weighted tau on the other targets")
    assert choice["method"] == "mixed" and not choice["distinguishable_from_random"]
    assert choice["vs_random"]["verdict"] == "not distinguishable"
    assert "No method is distinguishable from a random pick" in choice["message"]
    assert "treat this ranking as a guess" in choice["message"]


def test_a_named_method_is_used_and_still_judged():
    results, probes, pairs = _setup()
    mixed = probes["good"][1].copy()
    mixed[:4, 7:] = 1 - mixed[:4, 7:]  # right on t2 and t3, reversed on t4 and t5
    probes = {**probes, "mixed": (NAMES, mixed)}
    _, choice = judge("t1", "mixed", results, probes, pairs, "s", SIZES)
    assert choice["method"] == "mixed" and choice["chosen_by"] == "asked for"
    assert choice["runner_up_method"] == "good"  # the best of the others
    assert not choice["distinguishable_from_random"] and "good" in choice["better_than_random"]
    assert "not distinguishable from a random pick" in choice["message"]
    assert "Better than a random pick there: good" in choice["message"]


def test_a_named_method_on_a_single_target_suite_ranks_and_says_it_is_unjudged():
    results, probes, pairs = _setup()
    alone = results[results["target"] == "t1"]
    evaluation, choice = judge("t1", "good", alone, probes, pairs, "s", SIZES)
    assert evaluation.empty and choice["method"] == "good" and choice["n_targets"] == 0
    assert "no other finished target" in choice["message"]
    with pytest.raises(BenchError, match="no finished results on targets other than 't1'"):
        judge("t1", "auto", alone, probes, pairs, "s", SIZES)  # auto has nothing to choose on


def test_rank_by_probe_baselines_and_refusals(tmp_path):
    from registry.catalog import Catalog
    from registry.paths import BenchPaths

    results, probes, pairs = _setup()
    transfers = results.groupby(["source", "target"], as_index=False)["auc"].mean().rename(
        columns={"auc": "auc_mean"})
    args = (probes, pairs, results, SIZES, BenchPaths(tmp_path), Catalog.load())
    ranked = rank("t1", SOURCES, "good", *args)
    d = probes["good"][1][:4, 4]
    assert list(ranked["source"]) == [SOURCES[i] for i in np.argsort(d)]
    assert list(rank("t1", SOURCES, "static-size", *args)["source"]) == ["s2", "s4", "s3", "s1"]
    boa = transfers[transfers["target"] != "t1"].groupby("source")["auc_mean"].mean()
    assert list(rank("t1", SOURCES, "best-on-average", *args)["source"]) == \
        list(boa.sort_values(ascending=False).index)
    with pytest.raises(BenchError, match="No method 'simex'"):
        rank("t1", SOURCES, "simex", *args)
    with pytest.raises(BenchError, match="learned ranker cannot rank 't1'"):
        rank("t1", SOURCES, "learned", *args)
    with pytest.raises(BenchError, match="has no score for any source of 'new'"):
        rank("new", SOURCES, "good", *args)


def test_auto_never_chooses_a_method_scored_on_fewer_targets():
    """A probe with a perfect figure on one target only must not beat one judged on all of
    them; its row says on how many targets its figure stands."""
    results, probes, pairs = _setup()
    partial = np.full((9, 9), np.nan)
    truth = results[results["target"] == "t2"].groupby("source")["auc"].mean()
    partial[:4, 5] = [-truth[s] for s in SOURCES]  # t2 exactly, no other target
    noisy = probes["good"][1] + np.random.default_rng(1).normal(0, 0.2, (9, 9))
    probes = {"partial": (NAMES, partial), "noisy": (NAMES, noisy)}
    evaluation, choice = judge("t1", "auto", results, probes, pairs, "s", SIZES)
    rows = evaluation.set_index("method")
    assert rows.loc["partial", "n_targets"] == 1 and rows.loc["noisy", "n_targets"] == 4
    assert rows.loc["partial", "weighted_tau"] > rows.loc["noisy", "weighted_tau"]
    assert choice["method"] != "partial" and choice["runner_up_method"] != "partial"
    assert choice["n_targets"] == 4 and "4 other target(s)" in choice["message"]


def test_best_on_average_ranks_without_a_sources_transfer_to_itself(tmp_path):
    """As its evaluation does (best_on_average_scores): a dataset that is a source and a
    target (cats-scans' isic2018, chest-xray) does not carry its own AUC into its average."""
    from registry.catalog import Catalog
    from registry.paths import BenchPaths

    results = pd.DataFrame([("isic", "isic", 0.99), ("imagenet", "isic", 0.80),
                            ("chest", "isic", 0.70), ("chest", "chest", 0.99),
                            ("imagenet", "chest", 0.80), ("isic", "chest", 0.60)],
                           columns=["source", "target", "auc"]).assign(repeat=0)
    args = ({}, pairs_frame(), results, {}, BenchPaths(tmp_path), Catalog.load())
    ranked = rank("pcam", ["imagenet", "isic", "chest"], "best-on-average", *args)
    assert list(ranked["source"]) == ["imagenet", "chest", "isic"]  # 0.80, 0.70, 0.60
    assert ranked["score"].tolist() == pytest.approx([0.80, 0.70, 0.60])
    with_self = rank("pcam", ["imagenet", "isic", "chest"], "best-on-average", *args,
                     include_self=True)
    assert with_self["source"].tolist()[0] == "chest"  # (0.99 + 0.70) / 2 with itself


def pairs_frame() -> pd.DataFrame:
    return pd.DataFrame(columns=["source", "target", LABEL, "suite"])


def test_recommend_cli_without_results_fails_clearly(cli, bench_home):
    from mlflow.tracking import MlflowClient

    res = cli("recommend", "--target", "digits-noise")
    assert res.exit_code == 1 and "No finished results for suite 'mnist'" in res.stderr
    # the store it opened keeps artifacts beside it, not in MLflow's default ./mlruns
    exp = MlflowClient(f"sqlite:///{bench_home / 'mlflow.db'}").get_experiment_by_name(
        "transfer-bench/mnist")
    assert exp.artifact_location == (bench_home / "mlartifacts").as_uri()


def test_recommend_refuses_an_unknown_target_and_estimator_before_any_work(cli, bench_home):
    res = cli("recommend", "--target", "digitz", "--method", "static-size")
    assert res.exit_code == 1
    flat = " ".join(res.stderr.split())
    assert "Unknown target 'digitz'. Did you mean 'digits'" in flat and "bench datasets" in flat
    assert not (bench_home / "mlflow.db").exists()  # refused before the store was opened
    res = cli("recommend", "--target", "mnist-5k-rotated", "--estimator", "bogus")
    assert res.exit_code == 1 and "'bogus' is not a transferability estimator" in res.stderr
    assert "logme" in res.stderr and not (bench_home / "mlflow.db").exists()


def test_probe_refuses_a_dataset_named_twice(cli, bench_home):
    res = cli("probe", "expert", "--datasets", "digits,DIGITS,lfw-faces")
    assert res.exit_code == 1
    assert "names the same dataset more than once: ['digits']" in res.stderr
    assert not (bench_home / "mlflow.db").exists()  # no probe run was opened (none left FAILED)
