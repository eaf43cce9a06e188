"""Transferability estimators on target features F (n x D) under a source model, labels y.

- LogME (You et al. 2021): per one-hot class column, the log marginal evidence of Bayesian
  linear regression on F with alpha, beta by fixed-point iteration; mean over classes, per
  sample. Computed through the SVD of F, so n <= D (small medical sets) is handled exactly.
- LEEP (Nguyen et al. 2020): (1/n) sum_i log sum_z P(y_i | z) theta(x_i)_z, with P(y | z) from
  the empirical joint of target labels and source-head probabilities theta.
- NCE (Tran et al. 2019): -H(Y | Z) with Z the source head's argmax labels (higher is better).
- H-score (Bao et al. 2019): tr(cov(F)^-1 cov(E[F | y])). With ``shrinkage`` it is the
  regularized H-score of Ibrahim et al. (2021): tr(cov_a(F)^-1 (1 - a) cov(E[F | y])), cov_a the
  Ledoit-Wolf covariance with its estimated shrinkage a (scikit-learn's), as in their paper and
  Transfer-Learning-Library's HScoreR; cov(E[F | y]) keeps the n - 1 normalisation of both.
Higher scores predict better transfer for all four.
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import LedoitWolf

from probes.base import ProbeError


def _check(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(y):
        raise ProbeError(f"Features {f.shape} and labels {y.shape} do not pair up.",
                         "Pass an (n, D) feature matrix and n labels.")
    if len(np.unique(y)) < 2:
        raise ProbeError("Transferability estimators need at least two classes in the labels.",
                         "Use target data with more than one class.")
    return f, y


def _evidence(s2: np.ndarray, uty: np.ndarray, y_norm2: float, n: int, d: int,
              iters: int = 100, tol: float = 1e-5) -> float:
    """Log evidence / n for one target column; s2 are squared singular values (length r),
    uty = U^T y (length r), y_norm2 = ||y||^2."""
    alpha, beta = 1.0, 1.0
    resid_out = max(y_norm2 - float((uty ** 2).sum()), 0.0)  # part of y outside span(F)
    for _ in range(iters):
        gamma = float((beta * s2 / (alpha + beta * s2)).sum())
        m2 = float(((beta * np.sqrt(s2) * uty / (alpha + beta * s2)) ** 2).sum())
        res2 = float(((alpha * uty / (alpha + beta * s2)) ** 2).sum()) + resid_out
        new_alpha = gamma / max(m2, 1e-12)
        new_beta = (n - gamma) / max(res2, 1e-12)
        done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2 = float(((beta * np.sqrt(s2) * uty / (alpha + beta * s2)) ** 2).sum())
    res2 = float(((alpha * uty / (alpha + beta * s2)) ** 2).sum()) + resid_out
    logdet = float(np.log(alpha + beta * s2).sum()) + (d - len(s2)) * np.log(alpha)
    evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * res2 - alpha / 2 * m2 - logdet / 2)
    return evidence / n


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    f, y = _check(features, labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max() * 1e-10
    u, s2 = u[:, keep], s[keep] ** 2
    classes = np.unique(y)
    scores = []
    for c in classes:
        col = (y == c).astype(np.float64)
        scores.append(_evidence(s2, u.T @ col, float(col @ col), n, d))
    return float(np.mean(scores))


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    theta, y = _check(source_probs, labels)
    if np.any(theta < 0) or not np.allclose(theta.sum(1), 1, atol=1e-4):
        raise ProbeError("LEEP needs the source head's probabilities (rows summing to 1).",
                         "Pass softmax outputs, not logits or features.")
    classes, y_idx = np.unique(y, return_inverse=True)
    joint = np.zeros((len(classes), theta.shape[1]))
    np.add.at(joint, y_idx, theta)
    joint /= len(y)
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-12)  # P(y | z)
    eep = (theta * cond[y_idx]).sum(axis=1)
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(source_labels)
    _, y = _check(z.reshape(-1, 1).astype(float), labels)
    _, zi = np.unique(z, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    joint = np.zeros((zi.max() + 1, yi.max() + 1))
    np.add.at(joint, (zi, yi), 1.0)
    joint /= len(y)
    pz = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(joint > 0, joint * np.log(joint / pz), 0.0)
    return float(cond.sum())  # = -H(Y | Z)


def hscore(features: np.ndarray, labels: np.ndarray, shrinkage: bool = False) -> float:
    f, y = _check(features, labels)
    f = f - f.mean(axis=0)
    class_means = np.zeros_like(f)
    for c in np.unique(y):
        class_means[y == c] = f[y == c].mean(axis=0)
    cov_between = np.cov(class_means, rowvar=False)
    if shrinkage:
        lw = LedoitWolf(assume_centered=True).fit(f)
        cov, cov_between = lw.covariance_, (1.0 - lw.shrinkage_) * cov_between
    else:
        cov = np.cov(f, rowvar=False)
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-15) @ cov_between))
