"""AUC against scikit-learn, Eq. 1 by hand, splits stratified and disjoint."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils.class_weight import compute_class_weight

from benchmark.engine.metrics import MetricError, accuracy, auc, binary_auc, transferability
from benchmark.suite.splits import check_splittable, fold_splits, single_split
from registry.errors import DatasetFormatError


@pytest.mark.parametrize("seed", range(5))
def test_binary_auc_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.3 * y
    assert binary_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    p = np.stack([1 - s, s], axis=1)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_binary_auc_with_ties_equals_sklearn():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    s = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.1, 0.7, 0.7])
    assert binary_auc(y, s) == pytest.approx(roc_auc_score(y, s))


@pytest.mark.parametrize("k", [3, 5, 7])
def test_multiclass_weighted_ovr_equals_sklearn(k):
    rng = np.random.default_rng(k)
    y = rng.choice(k, size=300, p=np.linspace(1, 2, k) / np.linspace(1, 2, k).sum())
    logits = rng.normal(size=(300, k)) + np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ref = roc_auc_score(y, p, multi_class="ovr", average="weighted")
    assert auc(y, p) == pytest.approx(ref, abs=1e-12)


def test_degenerate_inputs_raise_instead_of_nan():
    with pytest.raises(MetricError, match="only one class"):
        binary_auc(np.ones(5), np.random.random(5))
    y = np.array([0, 0, 1, 1])
    with pytest.raises(MetricError, match=r"class\(es\) \[2\] are absent"):
        auc(y, np.full((4, 3), 1 / 3))


def test_perfect_and_constant_scores():
    y = np.array([0, 0, 1, 1])
    assert binary_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert binary_auc(y, np.zeros(4)) == 0.5


def test_accuracy():
    assert accuracy(np.array([0, 1, 2]), np.eye(3)[[0, 2, 2]]) == pytest.approx(2 / 3)


def test_transferability_eq1_by_hand():
    # van den Brandt et al. 2021 / anchors.md: imagenet -> isic 0.9463 against the baseline 0.8803
    assert transferability(0.9463, 0.8803) == pytest.approx((0.9463 - 0.8803) / 0.8803 * 100)
    assert transferability(0.9463, 0.8803) == pytest.approx(7.4975, abs=1e-3)
    assert transferability(0.9, 0.9) == 0.0
    with pytest.raises(MetricError):
        transferability(0.9, 0.0)


def test_folds_are_stratified_disjoint_and_cover_everything():
    y = np.repeat([0, 1, 2], [100, 60, 40])
    splits = fold_splits(y, 5, 0.5, seed=0)
    tests = np.concatenate([s.test for s in splits])
    vals = np.concatenate([s.val for s in splits])
    assert len(np.unique(tests)) == len(tests)  # test sets of different folds are disjoint
    assert sorted(np.concatenate([tests, vals]).tolist()) == list(range(200))
    for s in splits:
        assert not set(s.train) & set(s.val) and not set(s.train) & set(s.test)
        assert not set(s.val) & set(s.test)
        assert len(s.train) == 160 and len(s.val) == 20 and len(s.test) == 20
        for part in (s.train, s.val, s.test):
            share = np.bincount(y[part], minlength=3) / len(part)
            assert np.allclose(share, [0.5, 0.3, 0.2], atol=0.05)


def test_splits_are_deterministic_per_seed():
    y = np.repeat([0, 1], [50, 30])
    a, b, c = fold_splits(y, 3, 0.5, 1), fold_splits(y, 3, 0.5, 1), fold_splits(y, 3, 0.5, 2)
    assert all((x.test == z.test).all() for x, z in zip(a, b))
    assert any((x.test != z.test).any() for x, z in zip(a, c))


def test_single_split_80_10_10():
    y = np.repeat([0, 1], [500, 500])
    s = single_split(y, 0)
    assert (len(s.train), len(s.val), len(s.test)) == (800, 100, 100)


def test_too_small_class_is_a_plan_time_error():
    y = np.repeat([0, 1], [50, 7])
    with pytest.raises(DatasetFormatError, match=r"class\(es\) \{1: 7\} have fewer than 10"):
        check_splittable(y, 5, "tiny")
    check_splittable(y, 3, "tiny")


def test_balanced_class_weights_match_sklearn():
    import torch

    from bench_core.batches import class_weights

    y = np.repeat([0, 1, 2], [10, 30, 60])
    ours = class_weights(y, 3, torch.device("cpu")).numpy()
    ref = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
