"""Repeated k-fold, target subsets, official splits and the probe network of Task2Vec inside a
suite."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark import api
from benchmark.suite.splits import target_subset
from registry.errors import BenchError
from stores import store_client
from test_run import write_suite


def plan(tmp_path, paths, **changes):
    return api.plan_suite(write_suite(tmp_path, **changes), paths)


def test_repeats_add_fold_jobs_and_keep_the_first_repeats_hashes(tmp_path, paths):
    one, two = plan(tmp_path, paths), plan(tmp_path, paths, repeats=2)
    for a, b in zip(one.pairs, two.pairs):
        assert b.repeats == 2 and len(b.fold_hashes) == 2 * len(a.fold_hashes)
        assert b.fold_hashes[:a.n_folds] == a.fold_hashes  # repeat 0 resumes earlier runs
        assert len(set(b.fold_hashes)) == len(b.fold_hashes)
        assert a.config_hash != b.config_hash  # the pair's mean is over other runs
        assert [b.slot(j) for j in range(4)] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert two.summary()["runs"] == len(two.pretrain) + 2 * sum(
        len(p.fold_hashes) for p in one.pairs)


def test_max_samples_is_a_nested_stratified_subset_and_part_of_the_hash(tmp_path, paths):
    full = plan(tmp_path, paths)
    small = plan(tmp_path, paths, targets=[{"name": "lfw-faces", "max_samples": 60}])
    assert all(a.config_hash != b.config_hash for a, b in zip(full.pairs, small.pairs))
    assert all(p.max_samples == 60 for p in small.pairs)
    labels = np.repeat([0, 1, 2], [100, 50, 30])
    a, b = target_subset(labels, 60, 0), target_subset(labels, 90, 0)
    assert len(a) == 60 and set(a) <= set(b)  # nested
    assert np.bincount(labels[a]).tolist() == [33, 17, 10]  # stratified
    np.testing.assert_array_equal(target_subset(labels, None, 0), np.arange(180))


def test_max_samples_larger_than_the_target_fails_at_plan_time(cli, tmp_path):
    path = write_suite(tmp_path, targets=[{"name": "lfw-faces", "max_samples": 5000}])
    res = cli("run", "--suite", path, "--dry-run")
    assert res.exit_code == 1
    assert "asks for max_samples=5000, and it has 200 samples" in res.stderr


def _probe_job(tmp_path, paths, options):
    from benchmark.engine.graph import build_graph
    from benchmark.engine.session import job_env
    from registry.catalog import Catalog

    p = plan(tmp_path, paths, probes=[{"method": "task2vec", "options": options}])
    tracker = api.open_tracker(paths, "transfer-bench/tiny", None, "sess")
    env = job_env(p, paths, tracker, api.RunOptions(), None)
    graph = build_graph(p, env, tracker, Catalog.load(), accelerated=False, grid=False)
    return p, next(j for j in graph.jobs if j.kind == "probe")


def test_task2vec_in_a_suite_uses_the_suites_network_by_default(tmp_path, paths):
    p, job = _probe_job(tmp_path, paths, {"subsets": 1})
    options = job.call.task.spec.options
    pretrain = p.pretrain[0]
    assert options["weights"] == f"file:{paths.home / 'models' / pretrain.config_hash}" \
        ".safetensors"
    assert options["arch"] == "resnet10t"
    assert job.deps == (f"pretrain:{pretrain.config_hash}",)  # waits for that network


def test_task2vec_random_network_only_by_name(tmp_path, paths):
    _, job = _probe_job(tmp_path, paths, {"weights": "random", "subsets": 1})
    assert job.call.task.spec.options["weights"] == "random" and job.deps == ()
    with pytest.raises(BenchError, match="the suite pretrains no source 'stl10'"):
        _probe_job(tmp_path, paths, {"weights": "suite:stl10"})


@pytest.mark.slow
def test_repeats_end_to_end_give_spread_ceiling_and_baselines(cli, tmp_path, bench_home):
    suite = write_suite(tmp_path, repeats=2, generality={"ks": []},
                        sources=[{"name": "digits"}, {"name": "texture-patches"}],
                        targets=[{"name": "lfw-faces"}, {"name": "histology-dab",
                                                         "max_samples": 120}])
    res = cli("run", "--suite", suite, "--json")
    assert res.exit_code == 0, res.stderr
    runs = store_client(bench_home).search_runs(
        [store_client(bench_home).get_experiment_by_name("transfer-bench/tiny").experiment_id],
        "tags.level = 'fold'", max_results=1000)
    slots = {(r.data.tags["source"], r.data.tags["target"], r.data.tags["fold"],
              r.data.tags["repeat"]) for r in runs}
    assert len(slots) == len(runs) == 2 * 3 * 2 * 2  # targets x (scratch + 2) x folds x repeats
    histology = [r for r in runs if r.data.tags["target"] == "histology-dab"]
    assert {int(r.data.params["n_train"]) + int(r.data.params["n_val"])
            + int(r.data.params["n_test"]) for r in histology} == {120}

    rep = cli("report", "--suite", suite, "--json")
    assert rep.exit_code == 0, rep.stderr
    doc = rep.json()
    files = doc["report"]
    ceiling = pd.read_csv(files["noise_ceiling_csv"])
    assert set(ceiling["n_repeats"].dropna()) == {2}
    spread = pd.read_csv(files["spread_csv"])
    assert len(spread) == 4 and (spread["n_repeats"] == 2).all()
    folds = [r for r in runs if r.data.tags["source"] == "digits"
             and r.data.tags["target"] == "lfw-faces"]
    by_repeat = [np.mean([r.data.metrics["test_auc"] for r in folds
                          if r.data.tags["repeat"] == k]) for k in "01"]
    row = spread[(spread["source"] == "digits") & (spread["target"] == "lfw-faces")].iloc[0]
    assert row["auc_std"] == pytest.approx(np.std(by_repeat, ddof=1))
    methods = {r["method"]: r for r in doc["evaluation"]}
    assert {"random", "best-on-average", "static-size", "expert", "learned"} <= set(methods)
    expert = methods["expert"]  # the --json contract of the evaluation
    for metric in ("weighted_tau", "kendall_tau", "spearman_rho", "top1_regret"):
        assert {metric, f"{metric}_low", f"{metric}_high"} <= set(expert)
        for field in ("diff", "p", "p_two_sided", "exact", "verdict"):
            assert f"beats_random_{metric}_{field}" in expert
        for base in ("best_on_average", "static_size"):
            for field in ("diff", "low", "high", "p", "wins", "ties", "losses", "n", "verdict"):
                assert f"beats_{base}_{metric}_{field}" in expert
        assert {f"{metric}_ceiling", f"{metric}_above_ceiling"} <= set(expert)
    assert "above_ceiling" in expert and expert["enough_targets"] is False  # 2 targets
    assert expert["beats_random_weighted_tau_verdict"] in ("better", "worse",
                                                           "not distinguishable",
                                                           "too few targets to judge")
    assert expert["beats_static_size_weighted_tau_verdict"] in (None,
                                                                "too few targets to judge")
    assert {r["target"] for r in doc["evaluation_per_target"]} == {"lfw-faces", "histology-dab"}
    pooled_ceiling = next(r for r in doc["noise_ceiling"] if r["scope"] == "pooled")
    assert pooled_ceiling["kendall_tau_ceiling"] >= pooled_ceiling["split_half"]  # corrected up
    assert all(r["n_splits"] == 1 for r in doc["noise_ceiling"] if r["scope"] == "target")
    assert {r["method"] for r in doc["fidelity"]} >= {"expert", "static-size"}
    corr = pd.read_csv(files["correlations_csv"])  # each rho beside its own ceiling
    pooled = corr[corr["scope"] == "pooled"]
    assert len(pooled) and pooled["rho_ceiling"].between(-1, 1).all()
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN


def test_official_split_is_one_fold_and_needs_a_published_split(cli, tmp_path, paths):
    from benchmark.suite.splits import official_split
    from test_add_dataset import fixture_card

    import formats

    fx = formats.write_medmnist(tmp_path / "data")
    card = fixture_card(tmp_path, "medmnist", fx)
    assert cli("add-dataset", "fx-medmnist", "--card", card, "--path", fx.root).exit_code == 0
    official = {"scheme": "official", "n": 2, "val_fraction": 0.5, "seed": 0}
    p = plan(tmp_path, paths, folds=official, targets=[{"name": "fx-medmnist"}], repeats=2)
    assert all(pair.n_folds == 1 and len(pair.fold_hashes) == 2 for pair in p.pairs)
    split = official_split(np.array([0, 0, 1, 2, 0, 2], dtype=np.int8))
    assert split.train.tolist() == [0, 1, 4] and split.val.tolist() == [2]
    assert split.test.tolist() == [3, 5]
    res = cli("run", "--suite", write_suite(tmp_path, folds=official), "--dry-run")
    assert res.exit_code == 1
    assert "Target 'lfw-faces' has no official train/val/test split" in res.stderr


def test_a_probe_whose_method_changed_is_not_reused(tmp_path, paths, monkeypatch):
    from benchmark.engine.graph import build_graph
    from benchmark.engine.session import job_env
    from probes.simex import SimExProbe
    from registry.catalog import Catalog

    def probe_key():
        p = plan(tmp_path, paths, probes=[{"method": "simex"}])
        tracker = api.open_tracker(paths, "transfer-bench/tiny", None, "sess")
        env = job_env(p, paths, tracker, api.RunOptions(), None)
        graph = build_graph(p, env, tracker, Catalog.load(), accelerated=False, grid=False)
        return next(j.key for j in graph.jobs if j.kind == "probe")

    now = probe_key()
    monkeypatch.setattr(SimExProbe, "version", SimExProbe.version + 1)
    assert probe_key() != now  # results of the earlier version are not found under it
