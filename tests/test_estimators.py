"""The transferability estimators' scores against hand and matrix-form computations."""

from __future__ import annotations

import numpy as np
import pytest

from probes.base import ProbeError
from probes.estimators.hscore import hscore
from probes.estimators.leep import leep
from probes.estimators.logme import logme
from probes.estimators.nce import nce


# -- estimators -------------------------------------------------------------------------------


def _logme_direct(f: np.ndarray, y: np.ndarray) -> float:
    """Independent LogME: matrix form of the evidence with the same fixed point."""
    n, d = f.shape
    scores = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        alpha, beta = 1.0, 1.0
        for _ in range(300):
            a = alpha * np.eye(d) + beta * f.T @ f
            m = beta * np.linalg.solve(a, f.T @ t)
            eig = np.linalg.eigvalsh(f.T @ f)
            gamma = (beta * eig / (alpha + beta * eig)).sum()
            alpha, beta = gamma / (m @ m), (n - gamma) / ((f @ m - t) @ (f @ m - t))
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.solve(a, f.T @ t)
        ev = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
              - beta / 2 * (f @ m - t) @ (f @ m - t) - alpha / 2 * m @ m
              - np.linalg.slogdet(a)[1] / 2)
        scores.append(ev / n)
    return float(np.mean(scores))


def test_logme_matches_the_matrix_form():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 80)
    f = rng.normal(size=(80, 6)) + np.eye(6)[y] * 2
    assert logme(f, y) == pytest.approx(_logme_direct(f, y), rel=1e-4)


def test_logme_n_smaller_than_d_is_finite_and_ranks_informative_features_higher():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 10)
    good = rng.normal(size=(20, 100)) * 0.1 + y[:, None]
    bad = rng.normal(size=(20, 100))
    assert np.isfinite(logme(good, y)) and np.isfinite(logme(bad, y))
    assert logme(good, y) > logme(bad, y)


def test_leep_by_hand():
    theta = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    joint = np.zeros((2, 2))
    for t, yi in zip(theta, y):
        joint[yi] += t / 3
    cond = joint / joint.sum(0)
    expected = np.mean([np.log(theta[i] @ cond[y[i]]) for i in range(3)])
    assert leep(theta, y) == pytest.approx(expected)
    with pytest.raises(ProbeError, match="probabilities"):
        leep(theta * 3, y)


def test_nce_by_hand():
    z = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 1, 1])  # H(Y|Z) = 0.5 * H(0.5) + 0.5 * 0 = 0.5 ln 2
    assert nce(z, y) == pytest.approx(-0.5 * np.log(2))
    assert nce(y, y) == pytest.approx(0.0)


def test_hscore_by_hand_and_shrinkage():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 50)
    f = rng.normal(size=(100, 4)) + y[:, None] * np.array([2.0, 0, 0, 0])
    fc = f - f.mean(0)
    means = np.stack([fc[y == c].mean(0) for c in y])
    expected = np.trace(np.linalg.pinv(np.cov(fc, rowvar=False)) @ np.cov(means, rowvar=False))
    assert hscore(f, y) == pytest.approx(expected)
    assert 0 < hscore(f, y, shrinkage=True) < 4


def test_regularized_hscore_is_ibrahim_et_al_by_hand():
    """tr(cov_a^-1 (1 - a) cov(E[f|y])) with the Ledoit-Wolf shrinkage a computed here from
    its published formula (Ledoit & Wolf 2004), not through scikit-learn."""
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 12)
    f = rng.normal(size=(36, 30)) + y[:, None] * rng.normal(size=30)  # n close to D: a > 0
    fc = f - f.mean(0)
    n, d = fc.shape
    s = fc.T @ fc / n
    mu = np.trace(s) / d
    delta2 = ((s - mu * np.eye(d)) ** 2).sum()
    beta2 = min(sum(((np.outer(x, x) - s) ** 2).sum() for x in fc) / n ** 2, delta2)
    a = beta2 / delta2
    cov_a = (1 - a) * s + a * mu * np.eye(d)
    means = np.stack([fc[y == c].mean(0) for c in y])
    expected = np.trace(np.linalg.inv(cov_a) @ ((1 - a) * np.cov(means, rowvar=False)))
    assert 0.05 < a < 0.95
    assert hscore(f, y, shrinkage=True) == pytest.approx(expected, rel=1e-6)


def test_estimators_reject_one_class():
    f = np.random.random((10, 3))
    for fn in (logme, hscore):
        with pytest.raises(ProbeError, match="at least two classes"):
            fn(f, np.zeros(10))
