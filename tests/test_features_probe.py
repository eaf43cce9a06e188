"""The feature-behaviour probe (Garcia-Gasulla et al. 2018): planted presence / absence / below-threshold features
are found and noise is not, the discretization and the rank test against hand values and
scipy, and the probe end to end on a small network and through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from probes.base import PROBES, ProbeContext, ProbeError
from probes.features import (behaviour_score, counts_figure, discretize,
                             discriminative_counts, discriminative_features, rank_sum_pvalues,
                             stage_features, standardize)
from registry.catalog import Catalog
from registry.errors import CardError
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore

# -- numerical core ---------------------------------------------------------------------------


def _planted(n: int, shift2: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three equal classes, 40 noise features; feature 0 +2 in class 0, feature 1 -2 in class
    1, feature 2 +``shift2`` in class 2."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    x = rng.normal(size=(len(y), 40))
    x[y == 0, 0] += 2.0
    x[y == 1, 1] -= 2.0
    x[y == 2, 2] += shift2
    return x, y


def test_planted_presence_and_absence_are_found_and_noise_is_not():
    x, y = _planted(300)
    found = discriminative_features(x, y)
    present, absent, below = found["present"], found["absent"], found["below"]
    assert list(found["classes"]) == [0, 1, 2] and present.shape == (3, 40)
    assert present[0, 0] and not absent[0, 0] and not below[0, 0]
    assert absent[1, 1] and not present[1, 1]
    assert absent[1, 0] and absent[2, 0]  # the classes without feature 0: it is absent there
    noise = present[:, 3:] | absent[:, 3:] | below[:, 3:]
    assert noise.sum() <= 2  # BH at alpha 0.05: at most a few false discoveries


def test_a_small_significant_shift_is_below_threshold():
    """+0.15 in one of three classes: the class mean of the standardized feature is about 0.1,
    between the thresholds, yet n = 6000 makes the difference significant."""
    x, y = _planted(6000, shift2=0.15)
    z_mean = standardize(x)[y == 2, 2].mean()
    assert -0.25 < z_mean < 0.15
    found = discriminative_features(x, y)
    assert found["below"][2, 2]
    assert not found["below"][0, 0] and not found["below"][1, 1]  # strong ones are beyond
    strict = discriminative_features(x, y, alpha=1e-12)
    assert not strict["below"][2, 2] and strict["present"][0, 0]


def test_counts_and_score():
    x, y = _planted(300)
    counts = discriminative_counts(x, y)
    assert counts["classes"] == [0, 1, 2] and counts["n_features"] == 40
    found = discriminative_features(x, y)
    assert counts["n_present"] == found["present"].sum(1).tolist()
    assert counts["n_absent"][1] >= 1 and counts["n_present"][0] >= 1
    layers = [{"n_present": [2, 0], "n_absent": [1, 1], "n_features": 10},
              {"n_present": [5, 5], "n_absent": [0, 5], "n_features": 20}]
    assert behaviour_score(layers) == pytest.approx((0.3 + 0.1 + 0.25 + 0.5) / 4)
    assert np.isnan(behaviour_score([]))
    one_class = discriminative_counts(x, np.zeros(len(x), int))
    assert one_class["classes"] == [] and np.isnan(behaviour_score([one_class]))


def test_discretize_by_hand():
    z = np.array([[-1.0, -0.25, -0.2, 0.0], [0.15, 0.16, 2.0, -0.26]])
    assert discretize(z).tolist() == [[-1, 0, 0, 0], [0, 1, 1, -1]]
    assert discretize(z, absent=-0.1, present=0.5).tolist() == [[-1, -1, -1, 0], [0, 0, 1, -1]]


def test_standardize_constant_feature_gives_zeros():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(3, 2, 50), np.full(50, 0.1), np.zeros(50)])
    z = standardize(x)
    assert np.all(z[:, 1:] == 0.0)
    assert z[:, 0].mean() == pytest.approx(0, abs=1e-12)
    assert z[:, 0].std() == pytest.approx(1)
    found = discriminative_features(x, np.repeat([0, 1], 25))
    assert not found["present"][:, 1:].any() and not found["absent"][:, 1:].any()


def test_rank_test_matches_scipy_with_ties_and_a_tiny_class():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 6))
    x[:, 1] = np.round(x[:, 1])  # many ties
    x[:, 2] = np.maximum(x[:, 2], 0)  # a ReLU-like mass at 0
    y = rng.integers(0, 3, 120)
    y[:3] = 3  # a class of 3 samples
    classes = np.unique(y)
    p = rank_sum_pvalues(x, y, classes)
    for k, c in enumerate(classes):
        for row, side in enumerate(("greater", "less")):
            ref = mannwhitneyu(x[y == c], x[y != c], alternative=side, axis=0,
                               method="asymptotic").pvalue
            np.testing.assert_allclose(p[row, k], ref, rtol=1e-10)


# -- the probe on a real (small) network ------------------------------------------------------


@pytest.fixture
def source(tmp_path):
    """A randomly initialised resnet10t standing for a digits-pretrained source (10 classes)."""
    import timm
    from safetensors.torch import save_file

    from bench_core.sources import SourceModel

    torch.manual_seed(0)
    net = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    path = tmp_path / "digits.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return SourceModel("digits", "resnet10t", str(path), (32, 32))


@pytest.fixture
def two(paths):
    catalog = Catalog.load()
    for name in ("digits", "lfw-faces"):
        add_dataset(AddRequest(name), paths, catalog)
    store = RegistryStore(paths.registry_db)
    return [store.get(n) for n in ("digits", "lfw-faces")]


@pytest.mark.slow
def test_probe_end_to_end(paths, two, source):
    import matplotlib.pyplot as plt

    opts = {"max_samples": 400}
    probe = PROBES.get("features")(opts, ProbeContext(paths, source_models={"digits": source}))
    assert probe.uses_source_models and not probe.symmetric
    result = probe.compute(two)
    d = result.distances
    assert result.datasets == ["digits", "lfw-faces"] and d.shape == (2, 2)
    assert np.allclose(np.diag(d), 0) and np.isnan(d[1, 0])  # lfw-faces has no model
    assert np.isfinite(d[0, 1]) and -1 <= d[0, 1] <= 0
    found = result.details["counts"]["digits"]["lfw-faces"]
    assert found["layers"] == ["act1", "layer1", "layer2", "layer3", "layer4"]
    assert [c["n_features"] for c in found["counts"]] == [64, 64, 128, 256, 512]
    for layer in found["counts"]:
        assert layer["classes"] == ["face", "non-face"]
        assert all(0 <= v <= layer["n_features"]
                   for k in ("n_present", "n_absent", "n_below") for v in layer[k])
    assert -d[0, 1] == pytest.approx(found["score"])
    assert set(result.details["counts"]) == {"digits"}
    json.dumps(result.as_json(), allow_nan=False)  # details are plain JSON
    fig = counts_figure(result.details, "digits", "lfw-faces")
    assert len(fig.axes) == 3  # present, absent, colour bar
    plt.close(fig)
    with pytest.raises(ProbeError, match="No counts for source 'lfw-faces'"):
        counts_figure(result.details, "lfw-faces", "digits")
    again = PROBES.get("features")(opts, ProbeContext(paths, source_models={"digits": source}))
    np.testing.assert_allclose(again.compute(two).distances, d)  # seeded sample: deterministic
    scores = again.score_models({"digits": source}, two[1])
    assert scores["digits"] == pytest.approx(found["score"])

    from bench_core.tracking import Tracker, tracking_target
    from probes.tracking import log_probe

    tracker = Tracker(tracking_target(paths, None, "transfer-bench/probes"))
    run_id = log_probe(tracker, result, opts)
    logged = {a.path for a in tracker.client.list_artifacts(run_id)}
    assert {"counts", "details.json", "heatmap.png"} <= logged  # counts heatmaps and numbers
    assert [a.path for a in tracker.client.list_artifacts(run_id, "counts")] == \
        ["counts/digits -> lfw-faces.png"]


@pytest.mark.slow
def test_stages_option_and_hook_fallback(paths, two, source):
    from bench_core.batches import BatchPrep
    from bench_core.data import load_device_data
    from bench_core.models import load_source_model

    ctx = ProbeContext(paths, source_models={"digits": source})
    one = PROBES.get("features")({"stages": ["layer4"], "max_samples": 100}, ctx).compute(two)
    assert one.details["counts"]["digits"]["lfw-faces"]["layers"] == ["layer4"]
    with pytest.raises(ProbeError, match="Unknown stages"):
        PROBES.get("features")({"stages": ["layer9"], "max_samples": 50}, ctx).compute(two)
    model = load_source_model(source).eval()
    images = load_device_data(two[1], (32, 32), torch.device("cpu")).images[:40]
    prep = BatchPrep(torch.device("cpu"))
    timm_way = stage_features(model, images, prep, batch=16)
    model.feature_info = []  # a model without timm's feature_info: hooks on layer1..layer4
    hooked = stage_features(model, images, prep, batch=16)
    assert list(hooked) == ["layer1", "layer2", "layer3", "layer4"]
    for name, f in hooked.items():
        np.testing.assert_allclose(f, timm_way[name], rtol=1e-5, atol=1e-6)


def test_probe_rejects_bad_options_and_missing_models(paths):
    with pytest.raises(CardError, match="Options for probe 'features' are invalid"):
        PROBES.get("features")({"absent": 0.5}, ProbeContext(paths))
    with pytest.raises(CardError, match="Options for probe 'features' are invalid"):
        PROBES.get("features")({"alpha": 0}, ProbeContext(paths))
    probe = PROBES.get("features")({}, ProbeContext(paths))
    assert (probe.opts.absent, probe.opts.present, probe.opts.alpha) == (-0.25, 0.15, 0.05)
    with pytest.raises(ProbeError, match="none were given"):
        probe.compute([])


def test_cli_without_models_fails_clearly(cli):
    res = cli("probe", "features", "--datasets", "digits,lfw-faces")
    assert res.exit_code == 1
    assert "Suite 'mnist' has no pretrained source models" in res.stderr
    assert "bench run --suite mnist" in res.stderr
