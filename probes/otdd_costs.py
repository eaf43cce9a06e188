"""The costs of OTDD (Alvarez-Melis & Fusi 2020) between two labelled samples: the class
Gaussians and their Bures-Wasserstein label cost, the exact and entropic outer problems, and the
sliced variant; what each computes is described in :mod:`probes.otdd`. ``opts`` is the probe's
:class:`~probes.otdd.OTDDOptions` (read by attribute)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import ot
import torch

EMD_MAX_ITER = 10_000_000
log = logging.getLogger(__name__)


# -- labelled features ------------------------------------------------------------------------


@dataclass
class Labelled:
    """Features x (n, d) float64 and class indices y (n,) in 0..k-1, on one device."""

    x: torch.Tensor
    y: torch.Tensor
    k: int

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor | np.ndarray) -> Labelled:
        """Labels re-indexed to the classes present (any ids: only the partition matters)."""
        y = torch.as_tensor(y, device=x.device)
        present, inverse = torch.unique(y, return_inverse=True)
        return cls(x.to(torch.float64), inverse, len(present))

    def members(self, c: int) -> torch.Tensor:
        return self.x[self.y == c]

    @cached_property
    def gaussians(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The classes' means and covariance factors (:func:`class_factors`), computed once."""
        return class_factors(self)


def stratified_subsample(labels: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_samples`` points: per class a quota proportional to its
    count (at least 1; remainders to the largest fractions, ties to the lower class), drawn
    with ``seed``. The same labels and seed give the same indices; all when n <= max_samples."""
    n = len(labels)
    if max_samples >= n:
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * max_samples / n
    quota = np.clip(np.floor(exact).astype(int), 1, counts)
    for c in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if quota.sum() >= max_samples:
            break
        quota[c] += quota[c] < counts[c]
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), q, replace=False)
             for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picks))


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 (float64), clipped at 0 against rounding."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return sq.clamp_min_(0.0)


# -- label-to-label costs ---------------------------------------------------------------------


def class_factors(data: Labelled) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class the mean (k, d) and a covariance factor F (k, r, d) with S = F^T F (the 1/n
    maximum-likelihood covariance): the centred samples / sqrt(n), or for n > d the
    eigen-factor sqrt(lambda) V^T (d rows); zero rows pad every class to r rows."""
    means, factors = [], []
    for c in range(data.k):
        xc = data.members(c)
        means.append(xc.mean(0))
        f = (xc - xc.mean(0)) / len(xc) ** 0.5
        if len(xc) > xc.shape[1]:
            lam, vec = torch.linalg.eigh(f.T @ f)
            f = lam.clamp_min(0.0).sqrt()[:, None] * vec.T
        factors.append(f)
    r = max(len(f) for f in factors)
    padded = torch.zeros(data.k, r, data.x.shape[1], dtype=torch.float64, device=data.x.device)
    for c, f in enumerate(factors):
        padded[c, :len(f)] = f
    return torch.stack(means), padded


def bures_w2(m1: torch.Tensor, f1: torch.Tensor, m2: torch.Tensor, f2: torch.Tensor
             ) -> torch.Tensor:
    """Squared 2-Wasserstein distances (k1, k2) between Gaussians N(m1[i], f1[i]^T f1[i]) and
    N(m2[j], f2[j]^T f2[j]): ||m1 - m2||^2 + ||F1||_F^2 + ||F2||_F^2 - 2 ||F1 F2^T||_* (the
    nuclear norm is tr((S1^1/2 S2 S1^1/2)^1/2)); clipped at 0."""
    out = squared_distances(m1, m2)
    tr1, tr2 = (f1 * f1).sum((1, 2)), (f2 * f2).sum((1, 2))
    for i in range(len(f1)):  # one class of the first set against all of the second
        nuclear = torch.linalg.svdvals(f1[i] @ f2.transpose(1, 2)).sum(-1)
        out[i] += tr1[i] + tr2 - 2.0 * nuclear
    return out.clamp_min_(0.0)


def diagonal_w2(a: Labelled, b: Labelled) -> torch.Tensor:
    """Squared W2 (k1, k2) between diagonal Gaussians: ||m1 - m2||^2 + ||sqrt v1 - sqrt v2||^2."""
    def stats(d: Labelled) -> tuple[torch.Tensor, torch.Tensor]:
        xs = [d.members(c) for c in range(d.k)]
        return (torch.stack([x.mean(0) for x in xs]),
                torch.stack([x.var(0, correction=0).sqrt() for x in xs]))

    (ma, sa), (mb, sb) = stats(a), stats(b)
    return squared_distances(ma, mb) + squared_distances(sa, sb)


def exact_w2(a: Labelled, b: Labelled) -> torch.Tensor:
    """Squared W2 (k1, k2) between the classes' empirical distributions: exact OT (POT) of
    the squared Euclidean cost with uniform weights."""

    out = torch.zeros(a.k, b.k, dtype=torch.float64)
    for i in range(a.k):
        xa = a.members(i)
        for j in range(b.k):
            cost = squared_distances(xa, b.members(j)).cpu().numpy()
            out[i, j] = float(ot.emd2([], [], cost, numItermax=EMD_MAX_ITER))
    return out.clamp_min_(0.0).to(a.x.device)


def label_costs(a: Labelled, b: Labelled, opts: Any) -> torch.Tensor:
    """W2^2 between every class of ``a`` and every class of ``b`` (k_a, k_b)."""
    if opts.label_cost == "exact":
        return exact_w2(a, b)
    if opts.covariance == "diagonal":
        return diagonal_w2(a, b)
    return bures_w2(*a.gaussians, *b.gaussians)


# -- the outer problem ------------------------------------------------------------------------


def point_costs(a: Labelled, b: Labelled, labels: torch.Tensor, label_weight: float
                ) -> torch.Tensor:
    """c(i, j) = ||x_i - x'_j||^2 + label_weight * W2^2(alpha_{y_i}, alpha_{y'_j})."""
    return squared_distances(a.x, b.x) + label_weight * labels[a.y][:, b.y]


def emd_cost(cost: torch.Tensor) -> float:
    """Exact OT cost with uniform weights (POT's network simplex, CPU float64)."""

    value, info = ot.emd2([], [], cost.cpu().numpy(), numItermax=EMD_MAX_ITER, log=True)
    if info.get("warning"):
        log.warning("otdd: POT's exact solver: %s", info["warning"])
    return max(float(value), 0.0)


def sinkhorn_cost(cost: torch.Tensor, eps: float) -> float:
    """Transport cost <P, C> of the entropic plan P with uniform marginals (POT's Sinkhorn:
    numpy on the CPU, torch on CUDA; the scaling form while exp(-C / eps) cannot underflow,
    else the log-domain form). At most 1,000 iterations, stopping once the marginals are
    within 1e-7: a dataset against itself (1,000 points, reg 0.05) had not converged
    after 1,000 iterations, and its cost was then within 1e-7 (relative) of the converged one."""


    m = cost if cost.is_cuda else cost.cpu().numpy()
    method = "sinkhorn" if float(cost.max()) / eps < 200 else "sinkhorn_log"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge.*")
        return float(ot.sinkhorn2([], [], m, eps, method=method, numItermax=1000,
                                  stopThr=1e-7))


def otdd_cost(a: Labelled, b: Labelled, opts: Any) -> float:
    """OTDD^2 between two labelled samples (``method: exact``; see the module docstring)."""
    w = opts.label_weight
    if opts.solver == "exact":
        return emd_cost(point_costs(a, b, label_costs(a, b, opts), w))
    cross = point_costs(a, b, label_costs(a, b, opts), w)
    eps = opts.reg * float(cross.mean()) or opts.reg  # identical one-point sets: mean 0
    s_ab = sinkhorn_cost(cross, eps)
    s_aa = sinkhorn_cost(point_costs(a, a, label_costs(a, a, opts), w), eps)
    s_bb = sinkhorn_cost(point_costs(b, b, label_costs(b, b, opts), w), eps)
    return max(s_ab - (s_aa + s_bb) / 2.0, 0.0)


# -- sliced -----------------------------------------------------------------------------------


def unit_directions(rows: int, count: int, seed: int, device: torch.device) -> torch.Tensor:
    """``count`` random unit vectors in R^rows as columns (rows, count), float64, seeded."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(rows, count, generator=g, dtype=torch.float64)
    return (v / v.norm(dim=0, keepdim=True)).to(device)


def projected_points(data: Labelled, theta: torch.Tensor, psi: torch.Tensor,
                     label_weight: float) -> torch.Tensor:
    """One scalar per point and direction (n, L): psi_0 <theta, x> + sqrt(label_weight) *
    sum_j psi_j M_j(y), with M_1 the class mean of <theta, x> and M_j (j >= 2) the signed
    j-th root of the class's j-th central moment of <theta, x> (a "moment transform
    projection"; M_1, M_2 are the mean and standard deviation of the projected class)."""
    p = data.x @ theta
    # class averages as one matmul (k, n) @ (n, L): faster than index_add on CPU and CUDA
    average = torch.nn.functional.one_hot(data.y, data.k).T.to(p.dtype)
    average /= average.sum(1, keepdim=True)
    mean = average @ p
    centred = p - mean[data.y]
    z = psi[0] * p + (label_weight ** 0.5 * psi[1]) * mean[data.y]
    for j in range(2, psi.shape[0]):
        m = average @ centred ** j
        z += (label_weight ** 0.5 * psi[j]) * (m.sign() * m.abs() ** (1.0 / j))[data.y]
    return z


def w2_squared_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Squared W2 per column between the empirical distributions (uniform weights) of u (n, L)
    and v (m, L), both sorted along dim 0: the integral over t in (0, 1] of (F_u^-1(t) - F_v^-1(t))^2, exact for n != m
    (the quantile functions are steps at i/n and j/m; levels in integer units of 1/(n m))."""
    n, m = len(u), len(v)
    levels = torch.unique(torch.cat([torch.arange(1, n + 1) * m, torch.arange(1, m + 1) * n]))
    widths = torch.diff(levels, prepend=torch.zeros(1, dtype=levels.dtype)).double() / (n * m)
    iu, iv = (levels + m - 1) // m - 1, (levels + n - 1) // n - 1
    dev = u.device
    diff = u[iu.to(dev)] - v[iv.to(dev)]
    return (widths.to(dev)[:, None] * diff ** 2).sum(0)


def sliced_points(data: Labelled, opts: Any) -> torch.Tensor:
    """The sorted scalars (n, L) of :func:`sliced_otdd_cost` for one dataset: computed once per
    dataset, the directions drawn from ``seed`` (the same for every dataset of a dimension)."""
    d = data.x.shape[1]
    theta = unit_directions(d, opts.n_projections, opts.seed, data.x.device)
    psi = unit_directions(1 + opts.moments, opts.n_projections, opts.seed + 1, data.x.device)
    return projected_points(data, theta, psi, opts.label_weight).sort(0).values


def sliced_cost_of_points(za: torch.Tensor, zb: torch.Tensor, dim: int, opts: Any
                          ) -> float:
    """Mean 1-D squared W2 over the directions, times dim (1 + moments)."""
    return max(float(w2_squared_1d(za, zb).mean()) * dim * (1 + opts.moments), 0.0)


def sliced_otdd_cost(a: Labelled, b: Labelled, opts: Any) -> float:
    """Sliced OTDD^2 (``method: sliced``), after s-OTDD (Nguyen et al. 2025).

    Each point (x, y) becomes, per direction l, the vector (<theta_l, x>, M_1(y), .., M_K(y))
    in R^(1+K) (K = ``moments``; :func:`projected_points`), projected once more on a random
    unit psi_l; the cost is the mean over ``n_projections`` directions of the exact 1-D
    squared W2 between the two datasets' scalars, times d (1 + K), the inverse of the mean
    squared length of such a projection, so that it is on the scale of OTDD^2 (a translation
    by v of a dataset with well-separated classes gives 2 ||v||^2 in expectation, as the exact
    one). With K = 2 the label part along theta is the W2 between the projected classes'
    Gaussians. Departures from the paper: fixed moment orders 1..K (the paper draws orders
    from a zero-truncated Poisson per direction and scales raw moments), central moments
    taken as signed roots so that every coordinate is on the feature scale, and theta and psi
    drawn from ``seed`` (the same directions for every pair). Per dataset O(n L (d + log n))
    to project and sort, per pair O((n + m) L).
    """
    za, zb = sliced_points(a, opts), sliced_points(b, opts)
    return sliced_cost_of_points(za, zb, a.x.shape[1], opts)


def dataset_distance(a: Labelled, b: Labelled, opts: Any) -> float:
    """OTDD between two labelled samples: the square root of the cost the options select."""
    cost = sliced_otdd_cost(a, b, opts) if opts.method == "sliced" else otdd_cost(a, b, opts)
    return cost ** 0.5
