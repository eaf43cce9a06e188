"""Distances between Task2Vec embeddings, with aws-cv-task2vec's formulas (task_similarity.py).

An embedding h is the per-filter Fisher (the reference's ``hessian``); the reference's variance
is var = 1 / h (its ``scale`` is 1 for the Monte Carlo Fisher, so its normalised variance is
the same). The names and formulas are the reference's:

- ``cosine``: cosine distance of h0 / (h0 + h1 + eps) and h1 / (h0 + h1 + eps), eps = 1e-8;
- ``normalized_cosine``: cosine distance of the variances 1 / h0 and 1 / h1;
- ``correlation``: 1 - Pearson correlation of the variances;
- ``kl``: sum over filters of the larger of the two KL divergences between N(0, var0) and
  N(0, var1) (symmetric); ``asymmetric_kl``: sum of KL(N(0, var0) || N(0, var1));
- ``jsd``: mean over filters of (KL(var0 || m) + KL(var1 || m)) / 2, m = (var0 + var1) / 2;
- ``entropy``: log 2 - mean binary entropy of h0 / (h0 + h1 + eps).
``asymmetric(a -> b) = cosine(a, b) - alpha * cosine(a, trivial)`` (Task2Vec paper, alpha
about 0.15; not in the reference code).

One departure: a filter whose Fisher is 0 in either embedding (a dead filter, or one the task
never reaches) has an infinite variance, and the reference's variance-based distances become
inf or NaN. Those filters are left out of the variance-based distances here (they carry no
information about the task); where both embeddings have every filter alive, the values are the
reference's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import distance as sp

EPS = 1e-8  # the reference's, in the scaled Fisher h0 / (h0 + h1 + eps)


def _scaled(h0: np.ndarray, h1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = h0 + h1 + EPS
    return h0 / s, h1 / s


def alive(h0: np.ndarray, h1: np.ndarray) -> np.ndarray:
    """Filters with a finite, positive Fisher in both embeddings."""
    return (h0 > 0) & (h1 > 0) & np.isfinite(h0) & np.isfinite(h1)


def _variances(h0: np.ndarray, h1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = alive(h0, h1)
    return 1.0 / h0[keep], 1.0 / h1[keep]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    if not np.any(a) or not np.any(b):
        return 1.0  # scipy would return NaN for a zero vector
    return float(sp.cosine(a, b))


def _gauss_kl(var0: np.ndarray, var1: np.ndarray) -> np.ndarray:
    """Per filter KL(N(0, var0) || N(0, var1))."""
    return 0.5 * (var0 / var1 - 1 + np.log(var1) - np.log(var0))


def cosine(h0: np.ndarray, h1: np.ndarray) -> float:
    return _cosine(*_scaled(h0, h1))


def normalized_cosine(h0: np.ndarray, h1: np.ndarray) -> float:
    return _cosine(*_variances(h0, h1))


def correlation(h0: np.ndarray, h1: np.ndarray) -> float:
    v0, v1 = _variances(h0, h1)
    v0, v1 = v0 - v0.mean(), v1 - v1.mean()
    return _cosine(v0, v1)


def kl(h0: np.ndarray, h1: np.ndarray) -> float:
    v0, v1 = _variances(h0, h1)
    return float(np.maximum(_gauss_kl(v0, v1), _gauss_kl(v1, v0)).sum())


def asymmetric_kl(h0: np.ndarray, h1: np.ndarray) -> float:
    return float(_gauss_kl(*_variances(h0, h1)).sum())


def jsd(h0: np.ndarray, h1: np.ndarray) -> float:
    v0, v1 = _variances(h0, h1)
    m = 0.5 * (v0 + v1)
    return float((0.5 * (_gauss_kl(v0, m) + _gauss_kl(v1, m))).mean())


def entropy(h0: np.ndarray, h1: np.ndarray) -> float:
    p, _ = _scaled(h0, h1)
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(q > 0, q * np.log(q), 0.0))
    return float(np.log(2) - ent.mean())


DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "cosine": cosine, "normalized_cosine": normalized_cosine, "correlation": correlation,
    "kl": kl, "asymmetric_kl": asymmetric_kl, "jsd": jsd, "entropy": entropy,
}


def asymmetric(e_a: np.ndarray, e_b: np.ndarray, trivial: np.ndarray, alpha: float = 0.15,
               base: str = "cosine") -> float:
    d = DISTANCES[base]
    return d(e_a, e_b) - alpha * d(e_a, trivial)


def dataset_distance(embs_a: list[np.ndarray], embs_b: list[np.ndarray], fn, pairs: int,
                     rng: np.random.Generator) -> float:
    """Mean of ``fn`` over ``pairs`` random pairs of subset embeddings (van den Brandt et al.'s (2021) protocol)."""
    if len(embs_a) == 1 and len(embs_b) == 1:
        return float(fn(embs_a[0], embs_b[0]))
    i = rng.integers(len(embs_a), size=pairs)
    j = rng.integers(len(embs_b), size=pairs)
    return float(np.mean([fn(embs_a[a], embs_b[b]) for a, b in zip(i, j)]))
