"""Distribution shift (Recht et al. 2019): shifted test sets, the probit fit and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats

from benchmark.suite.spec import ShiftSpec
from benchmark.analysis.shift_stats import (clopper_pearson, line_band, probit, probit_fit, shift_analysis)
from benchmark.report.figures import shift_figure
from benchmark.transforms import transform_images
from registry.errors import BenchError
from stores import store_client
from test_run import write_suite


def synthetic(u: float, v: float, n: int, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0.55, 0.97, n)
    y = stats.norm.cdf(u * probit(x) + v + rng.normal(0, noise, n))
    return x, y


def test_probit_fit_recovers_the_line_and_its_intervals_cover_it():
    rng = np.random.default_rng(0)
    x, y = synthetic(0.8, -0.3, 60, 0.0, rng)
    fit = probit_fit(x, y)
    assert fit.u == pytest.approx(0.8, abs=1e-9) and fit.v == pytest.approx(-0.3, abs=1e-9)
    covered = 0
    for _ in range(200):
        fit = probit_fit(*synthetic(0.8, -0.3, 30, 0.1, rng))
        covered += fit.u_ci[0] <= 0.8 <= fit.u_ci[1] and fit.v_ci[0] <= -0.3 <= fit.v_ci[1]
    assert 0.85 <= covered / 200 <= 1.0  # 95 % intervals (both at once: about 0.9 or more)
    assert probit_fit(x[:2], y[:2]) is None


def test_sources_above_the_line_are_effectively_robust():
    rng = np.random.default_rng(1)
    rows = []
    for source, offset in (("robust", 0.3), ("plain", 0.0), ("fragile", -0.3)):
        x, y = synthetic(1.0, -0.5, 10, 0.02, rng)
        y = stats.norm.cdf(probit(y) + offset)
        rows += [{"target": "t", "shift": "s", "source": source, "orig_accuracy": a,
                  "shift_accuracy": b} for a, b in zip(x, y)]
    lines, sources = shift_analysis(pd.DataFrame(rows))
    assert len(lines) == 1 and lines.iloc[0]["models"] == 30
    verdict = dict(zip(sources["source"], sources["effective_robustness"]))
    assert verdict == {"robust": "above", "plain": "on the line", "fragile": "below"}
    plain = sources[sources["source"] == "plain"].iloc[0]
    assert plain["residual_low"] < 0 < plain["residual_high"]
    drops = dict(zip(sources["source"], sources["drop"]))
    assert drops["fragile"] > drops["plain"] > drops["robust"]


def test_clopper_pearson_matches_the_exact_binomial_interval():
    low, high = clopper_pearson(np.array([0.5, 0.0, 1.0]), np.array([10, 10, 20]))
    # by hand: 5/10 -> Beta(0.025; 5, 6), Beta(0.975; 6, 5); 0/10 -> 1 - 0.025^(1/10)
    np.testing.assert_allclose(low, [0.187086, 0.0, 0.025 ** (1 / 20)], atol=1e-6)
    np.testing.assert_allclose(high, [0.812914, 1 - 0.025 ** (1 / 10), 1.0], atol=1e-6)
    ci = stats.binomtest(37, 80).proportion_ci(0.95, method="exact")
    assert clopper_pearson(37 / 80, 80) == pytest.approx((ci.low, ci.high))


def test_accuracies_are_clipped_half_a_count_from_0_and_1():
    assert probit(1.0, 100) == pytest.approx(stats.norm.ppf(0.995))  # a perfect 100 of 100
    assert probit(0.0, 100) == pytest.approx(stats.norm.ppf(0.005))
    assert probit(0.9, 100) == pytest.approx(stats.norm.ppf(0.9))  # inside: unchanged
    assert probit(1.0) == pytest.approx(stats.norm.ppf(1 - 1e-4))  # AUC: no count


def test_the_bootstrap_band_covers_the_true_line():
    rng = np.random.default_rng(2)
    grid = probit(np.array([0.6, 0.8, 0.95]))
    covered = []
    for seed in range(60):
        x, y = synthetic(0.8, -0.3, 30, 0.1, rng)
        low, high = line_band(probit(x), probit(y), grid, n_boot=400, seed=seed)
        covered.append((low <= 0.8 * grid - 0.3) & (0.8 * grid - 0.3 <= high))
    assert 0.85 <= np.mean(covered) <= 1.0  # a 95 % band, pointwise
    x, y = synthetic(0.8, -0.3, 30, 0.1, rng)
    a, b = line_band(probit(x), probit(y), grid), line_band(probit(x), probit(y), grid)
    np.testing.assert_array_equal(a, b)  # seeded


def test_the_plot_draws_each_model_with_error_bars_y_equals_x_the_line_and_its_band():
    rng = np.random.default_rng(3)
    rows = []
    for source in ("a", "b"):
        x, y = synthetic(0.9, -0.4, 8, 0.05, rng)
        rows += [{"target": "t", "shift": "s", "source": source, "orig_accuracy": round(a * 200)
                  / 200, "shift_accuracy": round(b * 150) / 150, "orig_n": 200, "shift_n": 150}
                 for a, b in zip(x, y)]
    models = pd.DataFrame(rows)
    lines, _ = shift_analysis(models)
    fig = shift_figure(models, lines, "t", "s")
    ax = fig.axes[0]
    drawn = {line.get_label(): line for line in ax.get_lines()}
    diagonal, fit = drawn["y = x"], next(v for k, v in drawn.items() if k.startswith("fit:"))
    np.testing.assert_allclose(diagonal.get_ydata(), diagonal.get_xdata())
    u, v = lines.iloc[0]["u"], lines.iloc[0]["v"]
    np.testing.assert_allclose(fit.get_ydata(), u * fit.get_xdata() + v)
    band = next(c for c in ax.collections if c.get_label() == "95 % bootstrap band")
    assert len(band.get_paths()[0].vertices) > 50
    bars = [c for c in ax.containers if c.get_label() in ("a", "b")]
    assert len(bars) == 2 and all(c.has_xerr and c.has_yerr for c in bars)
    xs = np.concatenate([c.lines[0].get_xdata() for c in bars])
    np.testing.assert_allclose(np.sort(xs), np.sort(probit(models["orig_accuracy"], 200)))


def test_transforms_are_deterministic_and_do_what_they_say():
    images = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8)
    noise = ShiftSpec(transform="noise", level=0.2, seed=3)
    a, b = transform_images(images, noise), transform_images(images, noise)
    assert torch.equal(a, b) and not torch.equal(a, images) and a.dtype == torch.uint8
    assert torch.equal(transform_images(images, ShiftSpec(transform="contrast", level=1.0)),
                       images)
    flat = transform_images(images, ShiftSpec(transform="contrast", level=0.1)).float()
    assert flat.std() < images.float().std() * 0.2
    blurred = transform_images(images, ShiftSpec(transform="blur", level=1.5)).float()
    assert blurred.diff(dim=-1).abs().mean() < images.float().diff(dim=-1).abs().mean() / 2
    low = transform_images(images, ShiftSpec(transform="resolution", level=0.25))
    assert low.shape == images.shape


def test_a_shift_names_a_dataset_or_a_transform():
    with pytest.raises(ValueError, match="either a dataset or a transform"):
        ShiftSpec(level=0.2)
    with pytest.raises(ValueError, match="either a dataset or a transform"):
        ShiftSpec(dataset="x", transform="noise")
    with pytest.raises(ValueError, match="0 < level < 1"):
        ShiftSpec(transform="resolution", level=2.0)


def test_a_shifted_set_with_other_classes_fails_at_plan_time(cli, tmp_path, bench_home):
    suite = write_suite(tmp_path, targets=[{"name": "lfw-faces",
                                            "shifts": [{"dataset": "digits"}]}])
    res = cli("run", "--suite", suite, "--dry-run")
    assert res.exit_code == 1
    assert "Shifted test set 'digits' of target 'lfw-faces' has classes" in res.stderr
    assert not (bench_home / "mlflow.db").exists()  # nothing ran, nothing was written


@pytest.fixture(scope="module")
def shifted_run(tmp_path_factory):
    """One tiny suite run shared by the tests below (its own BENCH_HOME and MLflow store):
    target digits (300 images, 2 folds) with a dataset shift and a transform shift, two
    sources and the scratch baseline, and the features probe (Garcia-Gasulla et al. 2018)."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    folder = tmp_path_factory.mktemp("shifted-run")
    home, path = folder / "bench-home", folder / "tiny.yaml"
    shifts = [{"dataset": "digits-rotated"}, {"transform": "noise", "level": 0.3}]
    features = {"method": "features", "options": {"suite": str(path), "max_samples": 100}}
    write_suite(folder, sources=[{"name": "texture-patches"}, {"name": "digits-noise"}],
                targets=[{"name": "digits", "max_samples": 300, "shifts": shifts}],
                generality={"ks": []}, probes=[features])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        res = CliRunner().invoke(app, ["run", "--suite", str(path), "--json"],
                                 catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return home, path, json.loads(res.stdout)


@pytest.fixture
def in_run(shifted_run, cli, monkeypatch):
    """``cli`` on the shared run's store."""
    monkeypatch.setenv("BENCH_HOME", str(shifted_run[0]))
    return cli


@pytest.mark.slow
def test_every_model_of_the_grid_is_tested_on_each_shift(shifted_run):
    home, _, doc = shifted_run
    client = store_client(home)
    exp = client.get_experiment_by_name("transfer-bench/tiny")
    folds = client.search_runs([exp.experiment_id], "tags.level = 'fold'")
    assert len(folds) == 6  # (scratch + 2 sources) x 2 folds
    for run in folds:
        for key in ("shift_digits-rotated_auc", "shift_digits-rotated_accuracy",
                    "shift_noise-0.3_auc", "shift_noise-0.3_accuracy"):
            assert 0.0 <= run.data.metrics[key] <= 1.0, key
        assert run.data.params["shift.noise-0.3"].startswith("noise level=0.3")
    lines = pd.DataFrame(doc["shift"]["lines"])
    assert set(zip(lines["shift"], lines["metric"])) == {
        (s, m) for s in ("digits-rotated", "noise-0.3") for m in ("accuracy", "auc")}
    assert (lines["models"] == 6).all()
    sources = pd.DataFrame(doc["shift"]["sources"])
    assert set(sources["source"]) == {"scratch", "texture-patches", "digits-noise"}
    rotated = sources[(sources["shift"] == "digits-rotated") & (sources["metric"] == "auc")]
    assert (rotated["drop"] > 0).all()  # rotating digits costs every model AUC
    assert any(k.startswith("shift_fig_digits_") for k in doc["report"])
    _transform_shift_is_a_recorded_derived_dataset(client, folds, home)
    _pairs_carry_the_mean_shift_scores(client, exp, folds)


@pytest.mark.slow
def test_report_json_and_the_report_run_carry_the_fit(shifted_run, in_run):
    client = store_client(shifted_run[0])
    _report_logs_the_fit(in_run, client, client.get_experiment_by_name("transfer-bench/tiny"))


@pytest.mark.slow
def test_the_features_probe_is_in_report_and_recommend(shifted_run, in_run):
    _, path, _ = shifted_run
    res = in_run("report", "--suite", "tiny", "--json", "--no-html")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    correlations = pd.read_csv(doc["report"]["correlations_csv"])
    pooled = correlations[(correlations["probe"] == "features")
                          & (correlations["scope"] == "pooled")]
    assert len(pooled) == 1 and pooled.iloc[0]["n"] == 2  # two sources for the one target
    beside = {r["method"]: r for r in doc["evaluation"]}  # the probe beside the baselines
    assert {"features", "random", "static-size"} <= set(beside)
    assert beside["features"]["kind"] == "probe" and beside["features"]["n_targets"] == 1
    assert -1 <= beside["features"]["weighted_tau"] <= 1
    rec = in_run("recommend", "--target", "digits", "--suite", str(path), "--method",
                 "features", "--json", "--device", "cpu")
    assert rec.exit_code == 0, rec.stderr
    ranking = pd.DataFrame(rec.json()["ranking"])
    assert set(ranking["source"]) == {"texture-patches", "digits-noise"}
    assert list(ranking["score"]) == sorted(ranking["score"], reverse=True)  # best first
    choice = rec.json()["choice"]  # one target: nothing else to judge the method on
    assert choice["chosen_by"] == "asked for" and choice["n_targets"] == 0
    assert "unknown" in choice["message"] and rec.json()["evaluation"] == []
    probe = in_run("probe", "features", "--datasets", "texture-patches,digits-noise,digits",
                   "--option", f"suite={path}", "--option", "max_samples=60",
                   "--option", "stages=[layer4]", "--device", "cpu", "--json")
    assert probe.exit_code == 0, probe.stderr
    out = probe.json()
    d = np.array(out["distances"], dtype=float)
    assert out["datasets"] == ["texture-patches", "digits-noise", "digits"]
    assert np.isfinite(d[0, 2]) and -1 <= d[0, 2] <= 0  # minus the summary score
    assert np.isnan(d[2, 0])  # digits is no source of the suite: no network, no score
    counts = out["details"]["counts"]["texture-patches"]["digits"]
    assert counts["layers"] == ["layer4"]


def _transform_shift_is_a_recorded_derived_dataset(client, folds, bench_home):
    """The noise shift of each fold run reads back from MLflow as a derived dataset input:
    its derivation and the digest of the pixels a fold's test split gives under the noise."""
    import hashlib

    from bench_core.data import load_device_data
    from benchmark.suite.splits import target_subset
    from benchmark.suite.splits import fold_splits
    from registry.store import RegistryStore

    record = RegistryStore(bench_home / "registry.db").get("digits")
    data = load_device_data(record, (16, 16), torch.device("cpu"))
    for run in folds:
        inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
        noise = inputs["digits+noise-0.3"]
        tags = {t.key: t.value for t in noise.tags}
        assert tags == {"mlflow.data.context": "shift:noise-0.3",
                        "derived_from.parent": "digits", "derived_from.method": "shift-noise",
                        "derived_from.seed": "0", "derived_from.params.level": "0.3",
                        "derived_from.description": tags["derived_from.description"]}
        assert {t.value for t in inputs["digits-rotated"].tags} == {"shift:digits-rotated"}
        fold = int(run.data.params["fold"])
        subset = target_subset(data.labels_np, 300, 0)  # as the suite: max_samples, seed 0
        test = subset[fold_splits(data.labels_np[subset], 2, 0.5, 0)[fold].test]
        pixels = transform_images(data.images[torch.as_tensor(test)],
                                  ShiftSpec(transform="noise", level=0.3))
        want = hashlib.sha256(pixels.numpy().tobytes()
                              + data.labels_np[test].astype(np.int64).tobytes()).hexdigest()
        assert noise.dataset.digest == want[:16]
        card = yaml.safe_load(Path(client.download_artifacts(
            run.info.run_id, "shifts/noise-0.3.yaml")).read_text())
        assert card["derived_from"]["params"] == {"level": 0.3}
        m = run.data.metrics  # the images behind each score: the fold's test split
        assert m["shift_noise-0.3_n"] == m["shift_digits-rotated_n"] == len(test) \
            == m["shift_noise-0.3_n_orig"] == int(run.data.params["n_test"])


def _pairs_carry_the_mean_shift_scores(client, exp, folds):
    pairs = client.search_runs([exp.experiment_id], "tags.level = 'pair'")
    for pair in pairs:
        mine = [f.data.metrics["shift_noise-0.3_accuracy"] for f in folds
                if f.data.tags["mlflow.parentRunId"] == pair.info.run_id]
        assert len(mine) == 2
        assert pair.data.metrics["shift_noise-0.3_accuracy_mean"] == pytest.approx(np.mean(mine))
        assert pair.data.metrics["shift_noise-0.3_accuracy_std"] == pytest.approx(np.std(mine))
        assert "shift_digits-rotated_auc_mean" in pair.data.metrics


def _report_logs_the_fit(cli, client, exp):
    """`bench report --json` has the shift section; the report run holds the fit's metrics."""
    res = cli("report", "--suite", "tiny", "--json", "--no-html")
    assert res.exit_code == 0, res.stderr
    doc = res.json()  # strict JSON: no NaN
    line = next(r for r in doc["shift"]["lines"]
                if (r["shift"], r["metric"]) == ("noise-0.3", "accuracy"))
    assert line["u_low"] <= line["u"] <= line["u_high"]
    assert line["v_low"] <= line["v"] <= line["v_high"]
    assert -1 <= line["r"] <= 1 and line["resid_std"] >= 0
    source = next(r for r in doc["shift"]["sources"] if (r["shift"], r["metric"], r["source"])
                  == ("noise-0.3", "accuracy", "texture-patches"))
    assert source["effective_robustness"] in ("above", "below", "on the line")
    assert source["residual_low"] <= source["residual"] <= source["residual_high"]
    report = client.search_runs([exp.experiment_id], "tags.level = 'report'",
                                order_by=["attributes.start_time DESC"])[0]
    m, key = report.data.metrics, "digits_noise-0.3_accuracy"
    for name in ("u", "u_low", "u_high", "v", "v_low", "v_high", "r", "resid_std"):
        assert m[f"probit_{name}_{key}"] == pytest.approx(line[name]), name
    for name in ("drop", "residual", "residual_low", "residual_high"):
        assert m[f"shift_{name}_{key}_texture-patches"] == pytest.approx(source[name]), name
    sign = {"above": 1, "below": -1, "on the line": 0}[source["effective_robustness"]]
    assert m[f"shift_robustness_{key}_texture-patches"] == sign


def _fold_env(plan, paths):
    """What a fold task sees, for the plan's first pair: its JobEnv and FoldTask (no run)."""
    from bench_core.stores import TrackingTarget
    from benchmark.engine.tasks import FoldTask, JobEnv

    suite, pair = plan.suite, plan.pairs[0]
    env = JobEnv(paths=paths, tracking=TrackingTarget("sqlite://", "x"), session="s",
                 device="cpu", suite=suite.name, suite_yaml="", seed=suite.seed,
                 arch=suite.architecture, folds=suite.folds, baseline=suite.baseline)
    task = FoldTask(pair=pair, fold=1, record=plan.records[pair.target], parent_run_id="",
                    shift_records={s.dataset: plan.records[s.dataset]
                                   for s in pair.shifts if s.dataset})
    return env, task


def _evaluated(plan, paths):
    """Per shift label of the plan's first pair: the fold's test indices, the labels of the
    target there, and the images and indices a model of fold 1 is tested on."""
    from benchmark.engine.shifted import _shifted_set
    from benchmark.engine.fold import _split

    env, task = _fold_env(plan, paths)
    data = env.data.get(task.record, task.pair.settings.image_size, torch.device("cpu"))
    split = _split(env, task, data.labels_np, 1, 0)
    out = {}
    for spec in task.pair.shifts:
        shifted, idx = _shifted_set(env, task, spec, data, split, torch.device("cpu"))
        out[spec.label] = (split, data.labels_np[split.test], shifted.labels_np[idx], idx)
    return out


@pytest.mark.slow
def test_a_variant_of_the_targets_own_images_is_tested_on_the_fold_test_split_only(
        tmp_path, paths):
    from benchmark.api import plan_suite

    shifts = [{"dataset": "mnist-5k"}, {"dataset": "mnist-5k-rotated-background-image"},
              {"dataset": "digits"}]
    suite = write_suite(tmp_path, sources=[{"name": "digits"}], generality={"ks": []},
                        probes=[], targets=[{"name": "mnist-5k-rotated", "max_samples": 400,
                                             "shifts": shifts}])
    evaluated = _evaluated(plan_suite(suite, paths), paths)
    for label in ("mnist-5k", "mnist-5k-rotated-background-image"):  # parent, sibling
        split, labels, shifted_labels, idx = evaluated[label]
        np.testing.assert_array_equal(idx, split.test)  # the fold's test images, nothing else
        assert not set(idx) & set(split.train) and 0 < len(idx) < 400
        np.testing.assert_array_equal(shifted_labels, labels)  # their counterparts
    split, _, shifted_labels, idx = evaluated["digits"]  # other images: tested whole
    np.testing.assert_array_equal(idx, np.arange(1797))
    assert len(shifted_labels) == 1797


def test_lineage_pairs_a_parent_a_child_and_a_sibling_and_not_other_images(tmp_path, paths):
    import dataclasses

    from benchmark.suite.prepare import register_embedded
    from benchmark.suite.lineage import paired
    from registry.catalog import Catalog
    from registry.store import RegistryStore

    names = ["digits", "digits-rotated", "digits-noise", "texture-patches"]
    register_embedded(names, paths, Catalog.load())
    digits, rotated, noise, texture = (RegistryStore(paths.registry_db).get(n) for n in names)
    assert paired(rotated, digits) and paired(digits, rotated)  # child, parent
    assert paired(noise, rotated) and paired(digits, digits)  # sibling, itself
    assert not paired(texture, digits)
    lookalike = dataclasses.replace(digits, name="digits-subset", n_samples=900, card={
        **digits.card, "derived_from": {"parent": "digits", "method": "rescale"}})
    with pytest.raises(BenchError, match=r"Shifted test set 'digits-subset' of target "
                       r"'digits-rotated' shares its images with the target \(both derived "
                       r"from 'digits'\), but it has 900 samples and the target 1797"):
        paired(lookalike, rotated)
    subset = dataclasses.replace(digits, name="digits-pick", card={
        **digits.card, "derived_from": {"parent": "digits", "method": "stratified-nested-subset"}})
    with pytest.raises(BenchError, match="'digits-pick' is a subset of its parent"):
        paired(subset, digits)


def test_a_related_shifted_set_of_another_size_fails_at_plan_time(cli, tmp_path, paths):
    import dataclasses

    from benchmark.suite.prepare import register_embedded
    from registry.catalog import Catalog
    from registry.store import RegistryStore

    register_embedded(["digits", "digits-rotated"], paths, Catalog.load())
    store = RegistryStore(paths.registry_db)
    rotated = store.get("digits-rotated")
    store.add(dataclasses.replace(rotated, name="digits-rotated-half", n_samples=900))
    suite = write_suite(tmp_path, sources=[{"name": "digits-rotated"}], probes=[],
                        generality={"ks": []},
                        targets=[{"name": "digits", "shifts": [{"dataset": "digits-rotated-half"}]}])
    res = cli("run", "--suite", suite, "--dry-run")
    assert res.exit_code == 1
    assert "Shifted test set 'digits-rotated-half' of target 'digits' shares its images" in \
        res.stderr
    assert not (paths.home / "mlflow.db").exists()


def test_the_bootstrap_verdicts_do_not_depend_on_the_order_runs_come_back_in():
    """The tracking store returns fold runs in no fixed order; the seeded bootstrap must give
    the same intervals and verdicts for the same results in any order."""
    from benchmark.analysis.results import shift_models
    from benchmark.analysis.shift_stats import shift_analysis

    rng = np.random.default_rng(0)
    rows = []
    for source, gain in (("a", 0.3), ("b", 0.0), ("c", -0.2), ("scratch", -0.1)):
        for repeat in range(2):
            for fold in range(3):
                acc = float(rng.uniform(0.55, 0.9))
                shifted = min(0.99, max(0.01, acc - 0.2 + gain * 0.3 + rng.normal(0, 0.03)))
                rows.append({"kind": "transfer", "target": "t", "source": source, "fold": fold,
                             "repeat": repeat, "accuracy": acc, "auc": acc,
                             "shift_metrics": {"shift_s_accuracy": shifted,
                                               "shift_s_auc": shifted, "shift_s_n": 100.0,
                                               "shift_s_n_orig": 100.0}})
    folds = pd.DataFrame(rows)
    shuffled = folds.sample(frac=1.0, random_state=3).reset_index(drop=True)
    first = shift_analysis(shift_models(folds))[1]
    again = shift_analysis(shift_models(shuffled))[1]
    pd.testing.assert_frame_equal(first, again)
