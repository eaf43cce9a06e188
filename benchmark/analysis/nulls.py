"""The random baseline as a distribution: the permutation null of a method's figures.

Under the null hypothesis a method's scores carry no information about which source transfers
best: on each target every assignment of its score values to the candidate sources is equally
likely. The null distribution of a per-target figure is therefore the figure over all S!
permutations of the method's scores (exact for S <= :data:`MAX_EXACT_SOURCES`; a seeded Monte
Carlo sample of :data:`N_PERMUTATIONS` otherwise), and the null of the mean over targets is the
distribution of the mean of independent draws, one per target: enumerated exactly while the
joint support stays below :data:`MAX_EXACT_SUPPORT` values, sampled (:data:`N_DRAWS`) beyond.

This is the random pick's real spread (for 4 candidates a random ranking's weighted tau has sd
about 0.53 on one target), where an expectation of 0 says nothing about how far a method must
be from it. The test conditions on the targets at hand (their truths and the method's score
values), so it is exact at any number of targets; with one target of 4 candidates the smallest
two-sided p is 2/24 and the verdict is withheld (:func:`benchmark.analysis.inference.p_verdict`).

Each figure depends on the scores only through their ranks, so the null of a target is shared by
every method whose scores have the same tie pattern there (a tie-free method: the plain random
ranking, whose row the report shows as the baseline ``random``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from benchmark.analysis.batch_metrics import agreement_batch
from benchmark.analysis.inference import LEVEL
from benchmark.analysis.ranking import METRICS

MAX_EXACT_SOURCES = 8        # 8! = 40,320 permutations per target
N_PERMUTATIONS = 20_000      # Monte Carlo permutations per target beyond that
MAX_EXACT_SUPPORT = 2_000_000
N_DRAWS = 200_000            # Monte Carlo draws of the mean over targets beyond that
DECIMALS = 12                # values equal to 12 decimals are one atom of a null distribution


@dataclass(frozen=True)
class Null:
    """A discrete distribution: ``values`` with probabilities ``probs`` (summing to 1);
    ``exact``: enumerated, not sampled (``n_sampled`` draws when sampled)."""

    values: np.ndarray
    probs: np.ndarray
    exact: bool
    n_sampled: int = 0


@dataclass(frozen=True)
class NullTest:
    """An observed mean against its null: the null's mean and central interval, one-sided
    p-values (greater: at least as high as observed), the smallest two-sided p attainable."""

    expected: float
    low: float
    high: float
    p_greater: float
    p_less: float
    p_min: float
    exact: bool


def _atoms(values: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Equal values (to DECIMALS) merged into one atom with the summed weight."""
    keys, inverse = np.unique(np.round(values, DECIMALS), return_inverse=True)
    w = np.ones(len(values)) if weights is None else weights
    probs = np.bincount(inverse.ravel(), weights=w, minlength=len(keys))
    return keys, probs / probs.sum()


def _permutations(n: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    if n <= MAX_EXACT_SOURCES:
        return np.array(list(itertools.permutations(range(n))), dtype=np.int64), True
    return np.argsort(rng.random((N_PERMUTATIONS, n)), axis=1), False


def target_nulls(truth: np.ndarray, scores: np.ndarray, rng: np.random.Generator
                 ) -> dict[str, Null]:
    """The null of each metric on one target: ``truth`` and ``scores`` over its candidates
    (no NaN: callers rank missing scores last first). Keys: METRICS."""
    perms, exact = _permutations(len(truth), rng)
    x = np.broadcast_to(truth, perms.shape)
    res = agreement_batch(x, scores[perms], np.ones(perms.shape, dtype=bool))
    out = {}
    for metric in METRICS:
        values, probs = _atoms(res[metric])
        out[metric] = Null(values, probs, exact, 0 if exact else len(perms))
    return out


def tie_pattern(scores: np.ndarray) -> tuple:
    """What a target's null depends on besides its truth: the multiset of the scores' ranks."""
    order = np.sort(scores)
    return tuple(np.concatenate([[0], np.cumsum(np.diff(order) > 0)]).tolist())


def mean_null(nulls: list[Null], rng: np.random.Generator) -> Null:
    """The null of the mean over targets of independent draws from each target's null."""
    support = math.prod(len(n.values) for n in nulls)
    if support <= MAX_EXACT_SUPPORT:
        values, probs = np.zeros(1), np.ones(1)
        for n in nulls:
            values = (values[:, None] + n.values[None, :]).ravel()
            probs = (probs[:, None] * n.probs[None, :]).ravel()
            values, probs = _atoms(values, probs)
        return Null(values / len(nulls), probs, all(n.exact for n in nulls))
    total = np.zeros(N_DRAWS)
    for n in nulls:
        total += rng.choice(n.values, size=N_DRAWS, p=n.probs)
    values, probs = _atoms(total / len(nulls))
    return Null(values, probs, False, N_DRAWS)


def _quantile(null: Null, q: float) -> float:
    cum = np.cumsum(null.probs)
    return float(null.values[min(np.searchsorted(cum, q - 1e-12), len(cum) - 1)])


def compare_with_null(null: Null, observed: float, level: float = LEVEL) -> NullTest:
    """``observed`` against ``null``: exact tail probabilities (sampled nulls: the add-one
    estimate (1 + k) / (1 + N), never 0)."""
    tol = 10.0 ** -DECIMALS
    ge = float(null.probs[null.values >= observed - tol].sum())
    le = float(null.probs[null.values <= observed + tol].sum())
    if null.exact:
        p_min = 2 * min(float(null.probs[0]), float(null.probs[-1]))
    else:
        n = null.n_sampled
        ge, le = (1 + ge * n) / (1 + n), (1 + le * n) / (1 + n)
        p_min = 2 / (1 + n)
    tail = (1 - level) / 2
    return NullTest(float((null.values * null.probs).sum()), _quantile(null, tail),
                    _quantile(null, 1 - tail), min(ge, 1.0), min(le, 1.0), min(p_min, 1.0),
                    null.exact)
