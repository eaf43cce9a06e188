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
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from bench_core.batches import BatchPrep
from bench_core.data import load_device_data
from bench_core.models import build_model, model_from_weights
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from probes.otdd_costs import (Labelled, dataset_distance, sliced_cost_of_points, sliced_points,
                               stratified_subsample)
from registry.store import DatasetRecord

log = logging.getLogger(__name__)
RANDOM = "random"
LUMA = (0.299, 0.587, 0.114)


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
    """Optimal transport dataset distance (Alvarez-Melis & Fusi 2020): exact, entropic or
    sliced."""

    smoke_options = {"max_samples": 150}

    name = "otdd"
    cost = 4
    version = 1
    uses_probe_network = True  # with features=embedding only (wants_probe_network)
    Options = OTDDOptions

    def check(self, records: list[DatasetRecord]) -> None:
        """Single-label datasets of two classes or more, a common image size, and two classes
        in each dataset's stratified sample (what :meth:`compute` needs)."""
        check_records(records)
        common_size(records, self.opts.image_size)
        for record in records:
            labels = np.load(record.file_path("labels"))
            idx = stratified_subsample(labels, self.opts.max_samples, self.opts.seed)
            if len(np.unique(labels[idx])) < 2:
                raise ProbeError(f"'{record.name}' holds a single class in its sample of "
                                 f"max_samples={self.opts.max_samples}; OTDD needs at least "
                                 "two.", "Raise --option max_samples, or leave it out.")

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
