"""OTDD: the optimal-transport dataset distance of Alvarez-Melis & Fusi (NeurIPS 2020).

A dataset is an empirical distribution of (feature, label) points. Each label y is represented
by the distribution alpha_y of its class's features, here a Gaussian (mean, covariance), and
two points cost

    c((x, y), (x', y')) = ||x - x'||^2 + label_weight * W2^2(alpha_y, alpha_y')

(the paper's p = 2 with equal weights when ``label_weight`` is 1). OTDD^2 is the optimal
transport cost between the two datasets' points with uniform weights; the probe reports its
square root, a distance on the scale of the features (the distance of a dataset to itself is 0).

Features (``features``): ``pixels`` (default): images at a common size, scaled to [0, 1] and
flattened; where the datasets' channel counts differ, colour images become luma (ITU-R 601
weights) and ``details`` says which. ``embedding``: the globally pooled penultimate features of
a probe network (``weights``, ``arch``; as Task2Vec's). Features are not standardised: pixels
keep their [0, 1] scale, embeddings the network's.

Subsampling: at most ``max_samples`` points per dataset, stratified by class (proportional
quotas, at least one per class) and drawn with ``seed`` alone, so a dataset always gets the same
subsample and its distance to itself is exactly 0.

Label-to-label cost (``label_cost``): ``gaussian`` (default): the squared 2-Wasserstein
(Bures-Wasserstein) distance between the classes' Gaussians,
||m1 - m2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), with S the maximum-likelihood
covariance (1/n) of the class's samples. No shrinkage is needed: with a factor F (S = F^T F,
F the centred samples / sqrt(n), or for n > d the eigen-factor of S), the nonzero eigenvalues
of S1^1/2 S2 S1^1/2 are the squared singular values of F1 F2^T, so the trace term is the
nuclear norm of that small n1 x n2 matrix: exact for rank-deficient covariances (1,024 pixel
dimensions, ~100 samples per class), nothing inverted, no d x d square root; a class against
itself gives 0 to float precision. ``covariance: diagonal`` keeps only the variances
(||m1 - m2||^2 + ||sqrt v1 - sqrt v2||^2). ``label_cost: exact`` solves the inner optimal
transport between the two classes' samples (POT's exact solver; the reference's
non-Gaussian path).

Outer problem (``solver``): ``exact`` (default): POT's network simplex (``ot.emd2``) on the CPU
in float64. ``sinkhorn``: entropic OT (``ot.sinkhorn2``, log-domain, on the device) with
epsilon = ``reg`` x the mean cross cost; the probe reports the debiased Sinkhorn divergence
S(a, b) - (S(a, a) + S(b, b)) / 2 (S the transport cost of the entropic plan), clipped at 0.

``method: sliced`` (after s-OTDD, Nguyen et al. 2025): see :func:`sliced_otdd_cost`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from bench_core.batches import BatchPrep
from bench_core.data import load_device_data
from bench_core.models import build_model, model_from_weights
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from registry.store import DatasetRecord

log = logging.getLogger(__name__)
RANDOM = "random"
LUMA = (0.299, 0.587, 0.114)
EMD_MAX_ITER = 10_000_000


class OTDDOptions(ProbeOptions):
    method: Literal["exact", "sliced"] = "exact"
    features: Literal["pixels", "embedding"] = "pixels"
    # common image size [H, W]; default: the largest size every dataset's cache holds
    image_size: tuple[int, int] | None = None
    # probe network for features=embedding (a weights spec, as Task2Vec's; "random" by name)
    arch: str = "resnet50"
    weights: str | None = None
    max_samples: int = Field(1000, ge=2)  # per dataset, stratified by class
    seed: int = 0
    label_cost: Literal["gaussian", "exact"] = "gaussian"
    covariance: Literal["full", "diagonal"] = "full"
    label_weight: float = Field(1.0, ge=0.0)
    solver: Literal["exact", "sinkhorn"] = "exact"
    reg: float = Field(0.05, gt=0.0)  # entropic epsilon, relative to the mean cross cost
    n_projections: int = Field(500, ge=1)  # method=sliced
    moments: int = Field(3, ge=1, le=8)  # method=sliced: label moments per direction
    batch: int = Field(256, ge=1)  # images per forward pass of the probe network


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
    import ot

    out = torch.zeros(a.k, b.k, dtype=torch.float64)
    for i in range(a.k):
        xa = a.members(i)
        for j in range(b.k):
            cost = squared_distances(xa, b.members(j)).cpu().numpy()
            out[i, j] = float(ot.emd2([], [], cost, numItermax=EMD_MAX_ITER))
    return out.clamp_min_(0.0).to(a.x.device)


def label_costs(a: Labelled, b: Labelled, opts: OTDDOptions) -> torch.Tensor:
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
    import ot

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
    import warnings

    import ot

    m = cost if cost.is_cuda else cost.cpu().numpy()
    method = "sinkhorn" if float(cost.max()) / eps < 200 else "sinkhorn_log"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge.*")
        return float(ot.sinkhorn2([], [], m, eps, method=method, numItermax=1000,
                                  stopThr=1e-7))


def otdd_cost(a: Labelled, b: Labelled, opts: OTDDOptions) -> float:
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


def sliced_points(data: Labelled, opts: OTDDOptions) -> torch.Tensor:
    """The sorted scalars (n, L) of :func:`sliced_otdd_cost` for one dataset: computed once per
    dataset, the directions drawn from ``seed`` (the same for every dataset of a dimension)."""
    d = data.x.shape[1]
    theta = unit_directions(d, opts.n_projections, opts.seed, data.x.device)
    psi = unit_directions(1 + opts.moments, opts.n_projections, opts.seed + 1, data.x.device)
    return projected_points(data, theta, psi, opts.label_weight).sort(0).values


def sliced_cost_of_points(za: torch.Tensor, zb: torch.Tensor, dim: int, opts: OTDDOptions
                          ) -> float:
    """Mean 1-D squared W2 over the directions, times dim (1 + moments)."""
    return max(float(w2_squared_1d(za, zb).mean()) * dim * (1 + opts.moments), 0.0)


def sliced_otdd_cost(a: Labelled, b: Labelled, opts: OTDDOptions) -> float:
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


def dataset_distance(a: Labelled, b: Labelled, opts: OTDDOptions) -> float:
    """OTDD between two labelled samples: the square root of the cost the options select."""
    cost = sliced_otdd_cost(a, b, opts) if opts.method == "sliced" else otdd_cost(a, b, opts)
    return cost ** 0.5


# -- features from registered datasets --------------------------------------------------------


def cached_sizes(record: DatasetRecord) -> set[tuple[int, int]]:
    return {(f.shape[2], f.shape[3]) for f in record.files
            if f.role.startswith("images ") and f.shape}


def common_size(records: list[DatasetRecord], asked: tuple[int, int] | None) -> tuple[int, int]:
    """``asked``, else the largest size every dataset's cache holds."""
    if asked is not None:
        return tuple(asked)
    sizes = [cached_sizes(r) for r in records]
    shared = set.intersection(*sizes) if sizes else set()
    if shared:
        return max(shared, key=lambda s: (s[0] * s[1], s))
    listed = "; ".join(f"{r.name}: {', '.join(f'{h}x{w}' for h, w in sorted(s)) or 'none'}"
                       for r, s in zip(records, sizes))
    raise ProbeError(f"OTDD compares images at one size, and the datasets are cached at "
                     f"different sizes ({listed}).",
                     "Pass --option image_size=[H,W] (the suite's image size, e.g. [32,32]); "
                     "datasets cached at another size are resized once.")


def check_records(records: list[DatasetRecord]) -> None:
    """Single-label datasets with at least two classes."""
    for r in records:
        if r.card.get("task") == "multilabel":
            raise ProbeError(f"'{r.name}' is multilabel; OTDD compares single-label "
                             "(feature, label) distributions.",
                             "Leave it out of --datasets (or the suite's probe).")
        if len(r.classes) < 2:
            raise ProbeError(f"'{r.name}' has a single class ({', '.join(r.classes)}); OTDD "
                             "measures how features and labels move together, and needs at "
                             "least two classes.", "Leave it out of --datasets.")


def pixel_features(images: torch.Tensor, luma: bool) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float64 (N, C'H W) in [0, 1]; colour to luma when ``luma``."""
    x = images.to(torch.float64) / 255.0
    if luma and x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(1, keepdim=True)
    return x.flatten(1)


@torch.no_grad()
def embedding_features(net: torch.nn.Module, images: torch.Tensor, batch: int) -> torch.Tensor:
    """Pooled penultimate features (N, D) float64 of ``net`` (eval mode) on ImageNet-normalised,
    3-channel images."""
    prep = BatchPrep(images.device)
    out = [net.forward_head(net.forward_features(prep(images[s:s + batch])), pre_logits=True)
           for s in range(0, len(images), batch)]
    return torch.cat(out).to(torch.float64)


@register_probe
class OTDDProbe(Probe):
    name = "otdd"
    version = 1
    uses_probe_network = True  # with features=embedding only (wants_probe_network)
    Options = OTDDOptions

    @classmethod
    def wants_probe_network(cls, options: Mapping[str, Any]) -> bool:
        """Only the embedding features need a network: OTDD on pixels neither waits for a
        suite's pretraining nor carries a network in its options (or its config hash)."""
        return options.get("features", "pixels") == "embedding"

    def _network(self, device: torch.device) -> torch.nn.Module:
        o = self.opts
        if not o.weights:
            raise ProbeError("OTDD with features=embedding needs a probe network, and none "
                             "was given.",
                             "Pass --option weights=SPEC (file:PATH, local-dir:PATH, "
                             "models:/NAME@ALIAS, hf-hub:ORG/REPO), --option weights=random "
                             "for a randomly initialised network by name, or use "
                             "features=pixels.")
        if o.weights == RANDOM:
            log.warning("otdd: a randomly initialised %s as probe network (asked for by name)",
                        o.arch)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(o.seed)
                net = build_model(o.arch, 2, 0.0)
        else:
            net = model_from_weights(o.weights, o.arch, 2, 0.0,
                                     cache=self.context.paths.registry_models_dir,
                                     tracking_uri=self.context.tracking_uri)
        return net.to(device).eval()

    def _sample(self, record: DatasetRecord, size: tuple[int, int], luma: bool,
                net: torch.nn.Module | None, device: torch.device) -> Labelled:
        """``record``'s stratified subsample as labelled features on ``device``."""
        data = load_device_data(record, size, device)
        idx = stratified_subsample(data.labels_np, self.opts.max_samples, self.opts.seed)
        labels = data.labels_np[idx]
        if len(np.unique(labels)) < 2:
            raise ProbeError(f"'{record.name}' holds a single class in its data; OTDD needs "
                             "at least two.", "Leave it out of --datasets.")
        images = data.images[torch.as_tensor(idx, device=device)]
        x = (embedding_features(net, images, self.opts.batch) if net is not None
             else pixel_features(images, luma))
        return Labelled.of(x, labels)

    def samples(self, records: list[DatasetRecord]) -> tuple[list[Labelled], dict[str, Any]]:
        """Every dataset's stratified subsample as labelled features on the context's device
        (in the order of ``records``), and what ``details`` reports about them."""
        device = torch.device(self.context.device)
        size = common_size(records, self.opts.image_size)
        embed = self.opts.features == "embedding"
        net = self._network(device) if embed else None
        channels = {r.name: next((f.shape[1] for f in r.files
                                  if f.role.startswith("images ") and f.shape), 1)
                    for r in records}
        luma = not embed and len(set(channels.values())) > 1
        out = []
        with self.context.progress("otdd features", len(records)) as advance:
            for r in records:
                out.append(self._sample(r, size, luma, net, device))
                advance(1)
        info = {"image_size": list(size), "feature_dim": int(out[0].x.shape[1]),
                "subsample": {r.name: len(s.x) for r, s in zip(records, out)},
                "luma": sorted(n for n, c in channels.items() if c == 3) if luma else []}
        return out, info

    def _pair(self, a: Labelled, b: Labelled, za: torch.Tensor | None,
              zb: torch.Tensor | None) -> float:
        """OTDD of one pair; the sliced one from the datasets' precomputed scalars."""
        if za is None:
            return dataset_distance(a, b, self.opts)
        return sliced_cost_of_points(za, zb, a.x.shape[1], self.opts) ** 0.5

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        check_records(records)
        samples, info = self.samples(records)
        names = [r.name for r in records]
        sliced = [sliced_points(s, self.opts) if self.opts.method == "sliced" else None
                  for s in samples]
        d, seconds = np.zeros((len(names), len(names))), {}
        pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
        with self.context.progress(f"otdd ({self.opts.method})", len(pairs)) as advance:
            for i, j in pairs:
                a, b = samples[i], samples[j]
                start = time.perf_counter()
                d[i, j] = d[j, i] = self._pair(a, b, sliced[i], sliced[j])
                took = time.perf_counter() - start
                seconds[f"{names[i]} | {names[j]}"] = round(took, 4)
                log.info("otdd %s | %s: %d x %d points in %.2f s (%.0f point pairs/s)",
                         names[i], names[j], len(a.x), len(b.x), took,
                         len(a.x) * len(b.x) / max(took, 1e-9))
                advance(1)
        options = self.opts.model_dump(mode="json")
        if self.opts.features == "pixels":
            options.update(weights=None, arch=None)  # not used on pixels
        return ProbeResult(self.name, names, d,
                           details={"options": options, **info, "pair_seconds": seconds})
