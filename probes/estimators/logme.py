"""LogME (You et al. 2021, "LogME: Practical Assessment of Pre-trained Models for
Transfer Learning"): per one-hot class column, the log marginal evidence of Bayesian linear
regression on the features F with alpha, beta by fixed-point iteration; mean over classes, per
sample. Computed through the SVD of F, so n <= D (small medical sets) is handled exactly."""

from __future__ import annotations

import numpy as np

from probes.base import register_probe
from probes.estimators.base import EstimatorProbe, check_inputs


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
    f, y = check_inputs(features, labels)
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


@register_probe
class LogMEProbe(EstimatorProbe):
    """LogME (You et al. 2021): evidence of a Bayesian linear model on the features."""

    name = "logme"

    def score(self, features, probs, labels):
        return logme(features, labels)
