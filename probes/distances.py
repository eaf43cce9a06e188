"""Distances between Task2Vec embeddings (non-negative Fisher vectors).

``cosine`` (the reference's default): cosine distance of (h0 / (h0 + h1), h1 / (h0 + h1)),
which compares where each embedding dominates; ``normalized_cosine``: cosine distance of the
embeddings scaled to sum 1; ``correlation``: 1 - Pearson r; ``kl``: KL(p0 || p1) of the
embeddings as distributions (asymmetric); ``jsd``: Jensen-Shannon divergence. An epsilon keeps
zero entries (dead filters) from producing infinities (a pitfall of the reference).
``asymmetric(a -> b) = d(a, b) - alpha * d(a, trivial)`` (Task2Vec paper, alpha about 0.15).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = 1e-12


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < EPS or nb < EPS:
        return 1.0
    return float(1.0 - np.clip(a @ b / (na * nb), -1.0, 1.0))


def cosine(e0: np.ndarray, e1: np.ndarray) -> float:
    s = e0 + e1 + EPS
    return _cos(e0 / s, e1 / s)


def normalized_cosine(e0: np.ndarray, e1: np.ndarray) -> float:
    return _cos(e0 / (e0.sum() + EPS), e1 / (e1.sum() + EPS))


def correlation(e0: np.ndarray, e1: np.ndarray) -> float:
    return _cos(e0 - e0.mean(), e1 - e1.mean())


def _dist(e: np.ndarray) -> np.ndarray:
    p = np.maximum(e, 0) + EPS
    return p / p.sum()


def kl(e0: np.ndarray, e1: np.ndarray) -> float:
    p, q = _dist(e0), _dist(e1)
    return float((p * np.log(p / q)).sum())


def jsd(e0: np.ndarray, e1: np.ndarray) -> float:
    p, q = _dist(e0), _dist(e1)
    m = (p + q) / 2
    return float(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum())


DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "cosine": cosine, "normalized_cosine": normalized_cosine, "correlation": correlation,
    "kl": kl, "jsd": jsd,
}


def asymmetric(e_a: np.ndarray, e_b: np.ndarray, trivial: np.ndarray, alpha: float = 0.15,
               base: str = "cosine") -> float:
    d = DISTANCES[base]
    return d(e_a, e_b) - alpha * d(e_a, trivial)


def dataset_distance(embs_a: list[np.ndarray], embs_b: list[np.ndarray], fn, pairs: int,
                     rng: np.random.Generator) -> float:
    """Mean of ``fn`` over ``pairs`` random pairs of subset embeddings (seed 004's protocol)."""
    if len(embs_a) == 1 and len(embs_b) == 1:
        return float(fn(embs_a[0], embs_b[0]))
    i = rng.integers(len(embs_a), size=pairs)
    j = rng.integers(len(embs_b), size=pairs)
    return float(np.mean([fn(embs_a[a], embs_b[b]) for a, b in zip(i, j)]))
