"""OTDD probe: the exact cost against POT and hand computations, the Bures distance against
closed forms, self-distance 0 and invariances, sliced against exact, bad input."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import ot
import pytest
import scipy.linalg
import torch
from scipy.stats import spearmanr

from probes.base import ProbeContext, ProbeError
from probes.otdd import OTDDOptions, OTDDProbe
from probes.otdd_costs import (Labelled, bures_w2, class_factors, dataset_distance, exact_w2,
                               otdd_cost, stratified_subsample, w2_squared_1d)
from registry.catalog import Catalog
from registry.errors import CardError
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore


def _register(paths, *names, sizes=None):
    catalog = Catalog.load()
    for name in names:
        add_dataset(AddRequest(name, sizes=sizes), paths, catalog)
    store = RegistryStore(paths.registry_db)
    return [store.get(n) for n in names]


def _blobs(n: int, d: int, k: int, seed: int, shift: float = 0.0) -> Labelled:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)) + 3.0 * np.eye(k, d)[y] + shift
    return Labelled.of(torch.tensor(x), y)


# -- hand computations ------------------------------------------------------------------------


def test_exact_cost_is_pots_emd_on_a_cost_matrix_written_by_hand():
    """1-D, two classes of two points each. The classes' Gaussians: A0 (mean 1, sd 1),
    A1 (11, 1), B0 (3, 2), B1 (21, 1); 1-D W2^2 = dmean^2 + dsd^2: A0-B0 5, A0-B1 400,
    A1-B0 65, A1-B1 100. c = (x - x')^2 + W2^2(labels)."""
    a = Labelled.of(torch.tensor([[0.0], [2.0], [10.0], [12.0]]), np.array([0, 0, 1, 1]))
    b = Labelled.of(torch.tensor([[1.0], [5.0], [20.0], [22.0]]), np.array([0, 0, 1, 1]))
    cost = np.array([[1 + 5, 25 + 5, 400 + 400, 484 + 400],
                     [1 + 5, 9 + 5, 324 + 400, 400 + 400],
                     [81 + 65, 25 + 65, 100 + 100, 144 + 100],
                     [121 + 65, 49 + 65, 64 + 100, 100 + 100]], dtype=float)
    best = min(cost[range(4), list(p)].mean() for p in itertools.permutations(range(4)))
    assert ot.emd2(np.full(4, 0.25), np.full(4, 0.25), cost) == pytest.approx(best)
    assert otdd_cost(a, b, OTDDOptions()) == pytest.approx(best, rel=1e-12)
    assert dataset_distance(a, b, OTDDOptions()) == pytest.approx(best ** 0.5, rel=1e-12)
    half = cost - np.array([[5, 5, 400, 400]] * 2 + [[65, 65, 100, 100]] * 2) / 2
    half_best = min(half[range(4), list(p)].mean() for p in itertools.permutations(range(4)))
    assert otdd_cost(a, b, OTDDOptions(label_weight=0.5)) == pytest.approx(half_best)


def _bures_scipy(m1, s1, m2, s2) -> float:
    r1 = scipy.linalg.sqrtm(s1)
    cross = scipy.linalg.sqrtm(r1 @ s2 @ r1)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(cross)))


def test_bures_equals_the_diagonal_closed_form_and_scipy_sqrtm():
    rng = np.random.default_rng(0)
    d = 6
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.1, 2, d), rng.uniform(0.1, 2, d)
    closed = ((m1 - m2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    f1, f2 = torch.tensor(np.diag(np.sqrt(v1)))[None], torch.tensor(np.diag(np.sqrt(v2)))[None]
    ours = bures_w2(torch.tensor(m1)[None], f1, torch.tensor(m2)[None], f2)
    assert float(ours) == pytest.approx(closed, rel=1e-10)
    g1, g2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = g1 @ g1.T + 0.1 * np.eye(d), g2 @ g2.T + 0.1 * np.eye(d)
    c1, c2 = np.linalg.cholesky(s1).T, np.linalg.cholesky(s2).T  # S = F^T F
    ours = bures_w2(torch.tensor(m1)[None], torch.tensor(c1)[None],
                    torch.tensor(m2)[None], torch.tensor(c2)[None])
    assert float(ours) == pytest.approx(_bures_scipy(m1, s1, m2, s2), rel=1e-8)


@pytest.mark.parametrize("n", [5, 40])  # fewer samples than dimensions, and more
def test_class_factors_give_the_ml_covariance_and_bures_of_a_class_to_itself_is_zero(n):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2 * n, 12)) * rng.uniform(0.5, 3, 12)
    data = Labelled.of(torch.tensor(x), np.repeat([7, 3], n))
    means, factors = class_factors(data)
    for c, label in enumerate([3, 7]):
        xc = x[n:] if label == 3 else x[:n]
        f = factors[c].numpy()
        np.testing.assert_allclose(f.T @ f, np.cov(xc, rowvar=False, bias=True), atol=1e-12)
        np.testing.assert_allclose(means[c].numpy(), xc.mean(0))
    w = bures_w2(means, factors, means, factors)
    assert float(w.diagonal().abs().max()) < 1e-10 * float(w.max())
    s = [np.cov(x[:n], rowvar=False, bias=True), np.cov(x[n:], rowvar=False, bias=True)]
    expected = _bures_scipy(x[n:].mean(0), s[1], x[:n].mean(0), s[0])
    assert float(w[0, 1]) == pytest.approx(expected, rel=1e-6)


def test_exact_and_gaussian_label_costs_agree_on_translated_classes():
    """Classes that are translates of one sample: the exact inner W2^2 is the squared shift
    of the means (the translation is the optimal map), and so is the Bures distance."""
    rng = np.random.default_rng(2)
    base, shifts = rng.normal(size=(30, 8)), rng.normal(size=(3, 8)) * 4
    x = np.concatenate([base + s for s in shifts])
    a = Labelled.of(torch.tensor(x), np.repeat([0, 1, 2], 30))
    expected = ((shifts[:, None] - shifts[None]) ** 2).sum(-1)
    np.testing.assert_allclose(exact_w2(a, a).numpy(), expected, atol=1e-9)
    np.testing.assert_allclose(bures_w2(*a.gaussians, *a.gaussians).numpy(), expected,
                               atol=1e-9)


def test_one_dimensional_w2_matches_pot_for_unequal_sizes():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(7, 4)), rng.normal(size=(11, 4)) + 1
    ours = w2_squared_1d(torch.tensor(np.sort(u, 0)), torch.tensor(np.sort(v, 0))).numpy()
    for col in range(4):
        cost = (u[:, col][:, None] - v[:, col][None]) ** 2
        assert ours[col] == pytest.approx(ot.emd2([], [], cost), rel=1e-10)


def test_stratified_subsample_is_proportional_seeded_and_complete_when_small():
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    idx = stratified_subsample(labels, 100, seed=4)
    assert np.bincount(labels[idx]).tolist() == [50, 30, 20]
    np.testing.assert_array_equal(idx, stratified_subsample(labels, 100, seed=4))
    assert not np.array_equal(idx, stratified_subsample(labels, 100, seed=5))
    np.testing.assert_array_equal(stratified_subsample(labels, 1000, seed=4), np.arange(1000))
    rare = np.repeat([0, 1], [997, 3])
    assert set(rare[stratified_subsample(rare, 10, seed=0)]) == {0, 1}


# -- properties -------------------------------------------------------------------------------

SETTINGS = [{}, {"label_cost": "exact"}, {"covariance": "diagonal"},
            {"solver": "sinkhorn", "reg": 0.1}, {"method": "sliced", "n_projections": 200}]


@pytest.mark.parametrize("opts", SETTINGS, ids=lambda o: "-".join(map(str, o.values())) or "default")
def test_symmetric_zero_on_itself_and_invariant_to_label_ids(opts):
    o = OTDDOptions(**opts)
    a, b = _blobs(60, 10, 3, seed=0), _blobs(45, 10, 3, seed=1, shift=0.5)
    d = dataset_distance(a, b, o)
    assert d > 0 and dataset_distance(b, a, o) == pytest.approx(d, rel=1e-6)
    assert dataset_distance(a, a, o) == pytest.approx(0.0, abs=1e-6 * d)
    permuted = Labelled.of(a.x, np.array([2, 0, 1])[a.y.numpy()] + 10)
    assert dataset_distance(permuted, b, o) == pytest.approx(d, rel=1e-9)


def test_sinkhorn_divergence_approaches_the_exact_cost_as_reg_shrinks():
    a, b = _blobs(50, 5, 2, seed=0), _blobs(50, 5, 2, seed=1, shift=1.0)
    exact = otdd_cost(a, b, OTDDOptions())
    coarse = otdd_cost(a, b, OTDDOptions(solver="sinkhorn", reg=0.2))
    fine = otdd_cost(a, b, OTDDOptions(solver="sinkhorn", reg=0.01))
    assert abs(fine - exact) < abs(coarse - exact) and fine == pytest.approx(exact, rel=0.05)


def test_sliced_is_on_the_scale_of_the_exact_cost_for_a_translation():
    """Well-separated classes moved by v: the exact cost is 2 ||v||^2 (features and class
    means move alike); the sliced estimate matches it in expectation."""
    a = _blobs(200, 16, 2, seed=0)
    v = torch.full((16,), 0.5, dtype=torch.float64)
    b = Labelled(a.x + v, a.y, a.k)
    exact = otdd_cost(a, b, OTDDOptions())
    assert exact == pytest.approx(2 * float(v @ v), rel=1e-6)
    sliced = dataset_distance(a, b, OTDDOptions(method="sliced", n_projections=4000)) ** 2
    assert sliced == pytest.approx(exact, rel=0.15)


# -- the probe on registered datasets ---------------------------------------------------------


def test_probe_on_three_datasets(paths):
    records = _register(paths, "digits", "digits-noise", "lfw-faces")
    opts = {"max_samples": 150}
    result = OTDDProbe(opts, ProbeContext(paths)).compute(records)
    d = result.distances
    assert result.datasets == ["digits", "digits-noise", "lfw-faces"] and d.shape == (3, 3)
    assert np.all(np.isfinite(d)) and np.all(np.diag(d) == 0) and np.array_equal(d, d.T)
    assert d[0, 1] < d[0, 2] and d[0, 1] < d[1, 2]  # digits are closer to noisy digits
    assert result.details["subsample"] == {"digits": 150, "digits-noise": 150, "lfw-faces": 150}
    assert result.details["image_size"] == [32, 32] and len(result.details["pair_seconds"]) == 3
    again = OTDDProbe(opts, ProbeContext(paths)).compute(records)
    np.testing.assert_array_equal(again.distances, d)


@pytest.mark.parametrize("features", [{}, {"features": "embedding", "weights": "random",
                                           "arch": "resnet10t"}], ids=["pixels", "embedding"])
@pytest.mark.parametrize("max_samples", [1000, 60], ids=["full", "subsampled"])
def test_a_dataset_is_at_distance_zero_from_itself(paths, features, max_samples):
    record, = _register(paths, "lfw-faces")  # 200 images
    probe = OTDDProbe({**features, "max_samples": max_samples}, ProbeContext(paths))
    (a, b), info = probe.samples([record, record])  # loaded and subsampled twice
    assert len(a.x) == min(max_samples, 200) == info["subsample"]["lfw-faces"]
    assert torch.equal(a.x, b.x)
    other = Labelled(a.x.flip(0), a.y.flip(0), a.k)  # the same points in another order
    scale = dataset_distance(a, Labelled(a.x + 0.1, a.y, a.k), probe.opts)
    assert dataset_distance(a, b, probe.opts) == pytest.approx(0.0, abs=1e-6 * scale)
    assert dataset_distance(a, other, probe.opts) == pytest.approx(0.0, abs=1e-6 * scale)


@pytest.mark.slow
def test_sliced_ranks_pairs_as_the_exact_one_does(paths):
    """8 embedded datasets, 300 samples each, pixels: Spearman of the 28 off-diagonal
    distances, sliced (500 directions) vs exact, was 0.953 (0.967 with 2,000 directions)."""
    names = ["digits", "digits-noise", "digits-rotated", "digits-background",
             "digits-inverted", "lfw-faces", "font-letters", "picture-crops"]
    records = _register(paths, *names)
    exact = OTDDProbe({"max_samples": 300}, ProbeContext(paths)).compute(records).distances
    sliced = OTDDProbe({"max_samples": 300, "method": "sliced"},
                       ProbeContext(paths)).compute(records).distances
    upper = np.triu_indices(len(names), 1)
    rho = spearmanr(exact[upper], sliced[upper])[0]
    print(f"sliced vs exact Spearman rho over {len(upper[0])} pairs: {rho:.3f}")
    assert rho > 0.85


# -- bad input --------------------------------------------------------------------------------


def test_bad_input_fails_with_what_and_what_to_do(paths):
    digits, lfw = _register(paths, "digits", "lfw-faces")
    ctx = ProbeContext(paths)
    one = dataclasses.replace(digits, classes=["0"])
    with pytest.raises(ProbeError, match="'digits' has a single class.*Leave it out"):
        OTDDProbe({}, ctx).compute([one, lfw])
    multi = dataclasses.replace(digits, card={**digits.card, "task": "multilabel"})
    with pytest.raises(ProbeError, match="'digits' is multilabel"):
        OTDDProbe({}, ctx).compute([multi, lfw])
    with pytest.raises(ProbeError, match="needs a probe network.*weights=random"):
        OTDDProbe({"features": "embedding"}, ctx).compute([digits, lfw])
    with pytest.raises(CardError, match="Options for probe 'otdd' are invalid.*bogus"):
        OTDDProbe({"bogus": 1}, ctx)
    with pytest.raises(CardError, match="max_samples"):
        OTDDProbe({"max_samples": 1}, ctx)


def test_datasets_cached_at_different_sizes_need_image_size(paths):
    small, = _register(paths, "digits", sizes=((16, 16),))
    lfw, = _register(paths, "lfw-faces")
    with pytest.raises(ProbeError, match=r"digits: 16x16; lfw-faces: 32x32.*image_size=\[H,W\]"):
        OTDDProbe({}, ProbeContext(paths)).compute([small, lfw])
    result = OTDDProbe({"image_size": [16, 16], "max_samples": 100},
                       ProbeContext(paths)).compute([small, lfw])
    assert result.details["feature_dim"] == 256 and result.distances[0, 1] > 0


def test_colour_becomes_luma_when_channel_counts_differ(paths):
    digits, histology = _register(paths, "digits", "histology-dab")  # 1 and 3 channels
    result = OTDDProbe({"max_samples": 100}, ProbeContext(paths)).compute([digits, histology])
    assert result.details["luma"] == ["histology-dab"] and result.details["feature_dim"] == 1024
    assert result.details["options"]["weights"] is None  # pixels: no probe network


def test_only_embedding_features_ask_a_suite_for_a_probe_network():
    from probes.otdd import OTDDProbe

    assert not OTDDProbe.wants_probe_network({})
    assert not OTDDProbe.wants_probe_network({"features": "pixels"})
    assert OTDDProbe.wants_probe_network({"features": "embedding"})
