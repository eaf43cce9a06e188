"""Task2Vec (Achille et al. 2019) as used by van den Brandt et al. 2021, following aws-cv-task2vec's protocol.

For a dataset (or each of its subsets): the frozen probe network (timm; BatchNorm in eval mode
by default, see ``batchnorm``) extracts penultimate features once; a new classifier head is
trained on those cached features as the reference does (Adam, lr 4e-4, weight decay 1e-4, 10
epochs of 10,000 class-balanced draws with replacement, batches of 64, last partial batch
dropped, plain cross-entropy); then the diagonal Fisher of every conv and BatchNorm weight is
estimated on 10,000 class-balanced draws (per-sample, :mod:`probes.fisher`, or the reference's
``batch-mean``) and averaged per output filter. Only the weights enter the embedding, as in the
reference (``biases: true`` adds the BatchNorm and conv biases). ``fisher: variational`` learns
a per-filter posterior variance instead (:mod:`probes.variational`). Seed 004's protocol:
``subsets`` subsets of ``fraction`` of the data each, subset i drawn with random state i,
distance = mean over ``pairs`` random pairs of subset embeddings. Embeddings are cached per
(probe config, dataset) as .npz.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import nn

from bench_core.hashing import config_hash
from bench_core.data import DeviceData, load_device_data
from bench_core.devices import full_float32
from bench_core.models import build_model, model_from_weights
from bench_core.batches import BatchPrep
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from probes.distances import DISTANCES, asymmetric, dataset_distance
from probes.fisher import draw_targets, fisher_batch_mean, fisher_func, per_filter
from probes.fisher_norms import fisher_norms, norms_engine_applies
from probes.variational import variational_embedding
from registry.files import atomic_write
from registry.store import DatasetRecord

log = logging.getLogger(__name__)
RANDOM = "random"
LONG_S = 600.0  # an estimate above this is said before Task2Vec starts on a CPU


class Task2VecOptions(ProbeOptions):
    arch: str = "resnet50"
    # the probe network: any weights spec (bench_core.weights), "random" for a randomly
    # initialised network (only when asked for by name); in a suite, "suite:SOURCE" (the
    # default: its first pretrained source) is the network the suite pretrained on SOURCE
    weights: str | None = None
    image_size: tuple[int, int] = (112, 112)
    subsets: int = 100
    fraction: float = 0.01
    min_subset: int = 64
    max_draws: int = 10000  # class-balanced draws for the Fisher (the reference's 10,000)
    head_epochs: int = 10
    head_draws: int = 10000  # class-balanced draws per head epoch (the reference's loader)
    head_batch: int = 64
    head_lr: float = 4e-4
    head_weight_decay: float = 1e-4
    fisher: Literal["per-sample", "batch-mean", "variational"] = "per-sample"
    engine: Literal["auto", "norms", "func"] = "auto"  # per-sample Fisher engine
    fisher_batch: int = 64  # batch of the batch-mean estimate (the reference's)
    batchnorm: Literal["eval", "train"] = "eval"
    biases: bool = False  # BatchNorm / conv biases in the embedding (reference: weights only)
    variational_epochs: int = 2
    sampling: Literal["montecarlo", "expected"] = "montecarlo"
    distance: Literal["cosine", "normalized_cosine", "correlation", "kl", "asymmetric_kl",
                      "jsd", "entropy", "asymmetric"] = "cosine"
    alpha: float = 0.15
    pairs: int = 5
    chunk: int = 64
    seed: int = 0

    @model_validator(mode="after")
    def _train_mode_needs_batch_mean(self) -> "Task2VecOptions":
        if self.batchnorm == "train" and self.fisher != "batch-mean":
            raise ValueError("batchnorm=train (BatchNorm on batch statistics, as the reference's "
                             "code runs) mixes the samples of a batch, so it only goes with "
                             "fisher=batch-mean; the per-sample Fisher needs batchnorm=eval")
        return self


def embedding_keys(model: nn.Module, biases: bool) -> list[str]:
    """The parameters whose per-filter Fisher forms the embedding, in module order: the weight
    (and with ``biases`` the bias) of every Conv2d and BatchNorm2d layer."""
    keys = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            for pname in ("weight", "bias") if biases else ("weight",):
                if getattr(module, pname, None) is not None:
                    keys.append(f"{name}.{pname}")
    if not keys:
        raise ProbeError(f"The probe network {type(model).__name__} has no conv/BatchNorm layers.",
                         "Use a convolutional timm model.")
    return keys


def filter_embedding(keys: list[str], fisher: dict[str, torch.Tensor]) -> np.ndarray:
    """The per-filter Fisher of ``keys``, concatenated."""
    return torch.cat([fisher[k] for k in keys]).detach().cpu().double().numpy()


def balanced_draws(labels: np.ndarray, n_classes: int, n: int, gen: torch.Generator
                   ) -> torch.Tensor:
    """``n`` indices drawn with replacement, every class equally likely (the reference's
    WeightedRandomSampler)."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = 1.0 / counts[labels]
    return torch.multinomial(torch.as_tensor(w / w.sum()), n, replacement=True, generator=gen)


class Task2VecEmbedder:
    """Embeds (subsets of) datasets with one probe network."""

    def __init__(self, opts: Task2VecOptions, device: torch.device,
                 weights_cache: Path | None = None, tracking_uri: str | None = None) -> None:
        self.opts, self.device = opts, device
        self.weights_cache, self.tracking_uri = weights_cache, tracking_uri
        self.prep = BatchPrep(device)

    def _network(self, n_classes: int) -> nn.Module:
        """The probe network with a new head for ``n_classes``: both initialised from the
        probe's seed (a forked RNG, the caller's random state untouched), so the same weights
        give the same embedding in every process."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.opts.seed)
            if self.opts.weights != RANDOM:
                net = model_from_weights(self.opts.weights, self.opts.arch, n_classes, 0.0,
                                         cache=self.weights_cache, tracking_uri=self.tracking_uri)
            else:
                net = build_model(self.opts.arch, n_classes, 0.0)
        net = net.to(self.device)
        return net.train() if self.opts.batchnorm == "train" else net.eval()

    @torch.no_grad()
    def _features(self, net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        feats = []
        for start in range(0, len(images), 256):
            x = self.prep(images[start:start + 256])
            feats.append(net.forward_head(net.forward_features(x), pre_logits=True).float())
        return torch.cat(feats)

    def _train_head(self, head: nn.Module, feats: torch.Tensor, labels: np.ndarray,
                    n_classes: int, gen: torch.Generator) -> None:
        """The reference's head fit: per epoch, ``head_draws`` class-balanced draws in batches
        of ``head_batch`` (the last partial batch dropped), unweighted cross-entropy."""
        o = self.opts
        y = torch.as_tensor(labels, device=feats.device)
        opt = torch.optim.Adam(head.parameters(), lr=o.head_lr, weight_decay=o.head_weight_decay)
        for _ in range(o.head_epochs):
            draws = balanced_draws(labels, n_classes, o.head_draws, gen).to(feats.device)
            stop = max(len(draws) - len(draws) % o.head_batch, min(len(draws), o.head_batch))
            for start in range(0, stop, o.head_batch):
                b = draws[start:start + o.head_batch]
                loss = F.cross_entropy(head(feats[b]), y[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    def embed(self, images: torch.Tensor, labels: np.ndarray, n_classes: int, seed: int
              ) -> np.ndarray:
        """The Task2Vec embedding of (images uint8 N,C,H,W; labels)."""
        gen = torch.Generator().manual_seed(seed)
        net = self._network(n_classes)
        for p in net.parameters():
            p.requires_grad_(False)
        head = net.get_classifier()
        for p in head.parameters():
            p.requires_grad_(True)
        self._train_head(head, self._features(net, images), labels, n_classes, gen)
        for p in net.parameters():
            p.requires_grad_(True)
        draws = balanced_draws(labels, n_classes, self.opts.max_draws, gen)
        distinct, draws = torch.unique(draws, return_inverse=True)
        x = self.prep(images[distinct.to(images.device)])
        keys = embedding_keys(net, self.opts.biases)
        with full_float32():  # TF32 convolutions skew the squared gradients (CUDA)
            if self.opts.fisher == "variational":
                y = torch.as_tensor(labels[distinct.numpy()], device=self.device)
                return variational_embedding(net, x[draws.to(x.device)], y[draws.to(y.device)],
                                             keys, epochs=self.opts.variational_epochs, gen=gen)
            if self.opts.fisher == "batch-mean":
                fisher = per_filter(fisher_batch_mean(net, x, keys, draws,
                                                      self.opts.fisher_batch, gen))
            else:
                fisher = self._per_sample(net, x, keys, draws, gen)
        return filter_embedding(keys, fisher)

    def _per_sample(self, net: nn.Module, x: torch.Tensor, keys: list[str],
                    draws: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        pairs = draw_targets(net, x, self.opts.sampling, draws, gen)
        why_not = norms_engine_applies(net, keys)
        if self.opts.engine == "norms" and why_not:
            raise ProbeError(f"The norms Fisher engine cannot run on {self.opts.arch}: {why_not}.",
                             "Use --option engine=func (any model) or engine=auto.")
        if self.opts.engine == "func" or why_not:
            return per_filter(fisher_func(net, x, keys, pairs, self.opts.chunk))
        return fisher_norms(net, x, keys, pairs, self.opts.chunk)


def subset_indices(n: int, fraction: float, minimum: int, index: int) -> np.ndarray:
    """Subset ``index`` (random state = index, as in van den Brandt et al. 2021) of fraction * n samples."""
    size = min(n, max(minimum, int(round(fraction * n))))
    return np.sort(np.random.default_rng(index).choice(n, size=size, replace=False))


@register_probe
class Task2VecProbe(Probe):
    """Task2Vec (Achille et al. 2019): cosine distance of Fisher embeddings of a probe
    network."""

    smoke_options = {"arch": "resnet10t", "weights": "random", "image_size": [16, 16],
                     "subsets": 2, "min_subset": 40, "max_draws": 24, "head_epochs": 2,
                     "head_draws": 320}

    name = "task2vec"
    cost = 4
    # 2: the reference's head protocol, weights-only embedding, the reference's distances
    # 3: the head over given weights starts from the probe's seed (before: torch's global state)
    version = 3
    uses_probe_network = True
    Options = Task2VecOptions

    @property
    def symmetric(self) -> bool:  # type: ignore[override]
        return self.opts.distance not in ("asymmetric_kl", "asymmetric")

    def _cache_dir(self) -> Path:
        opts = self.opts.model_dump(mode="json")
        for k in ("distance", "alpha", "pairs"):
            opts.pop(k)
        return self.context.paths.home / "probes" / "task2vec" / config_hash(opts)

    def _embeddings(self, record: DatasetRecord, embedder: Task2VecEmbedder) -> list[np.ndarray]:
        path = self._cache_path(record)
        if path.is_file():
            return list(np.load(path)["embeddings"])
        data: DeviceData = load_device_data(record, self.opts.image_size, embedder.device)
        out = []
        with self.context.progress(f"task2vec {record.name}", self.opts.subsets) as advance:
            for i in range(1, self.opts.subsets + 1):
                idx = subset_indices(len(data.labels_np), self.opts.fraction,
                                     self.opts.min_subset, i)
                labels = data.labels_np[idx]
                if len(np.unique(labels)) < 2:
                    raise ProbeError(f"Subset {i} of '{record.name}' holds a single class.",
                                     "Raise --option min_subset or fraction.")
                out.append(embedder.embed(data.images[torch.as_tensor(idx)], labels,
                                          data.n_classes, seed=self.opts.seed + i))
                advance(1)
        atomic_write(path, lambda tmp: np.savez(tmp, embeddings=np.stack(out)))
        return out

    def _cache_path(self, record: DatasetRecord) -> Path:
        return self._cache_dir() / f"{record.name}-{record.fingerprint[:16]}.npz"

    def _warn_if_long(self, embedder: Task2VecEmbedder, n_datasets: int) -> None:
        """Time one forward and backward pass of the probe network on a batch here, and say
        how long the embeddings will take and which options make it fit when that is more
        than :data:`LONG_S` (the reference protocol takes hours on a CPU)."""
        o = self.opts
        images = torch.zeros((o.fisher_batch, 3, *o.image_size), dtype=torch.uint8,
                             device=embedder.device)
        net = build_model(o.arch, 2, 0.0).to(embedder.device)
        net(embedder.prep(images[:2])).sum().backward()  # warm-up
        start = time.perf_counter()
        net(embedder.prep(images)).sum().backward()
        per_image = (time.perf_counter() - start) / o.fisher_batch
        seconds = per_image * n_datasets * o.subsets * (o.max_draws + o.min_subset)
        if seconds > LONG_S:
            log.warning("task2vec: about %.1f h on this CPU for %d dataset(s) (%s at %dx%d, %d "
                        "subsets x %d Fisher draws; %.3f s per image measured now). To fit: "
                        "--option arch=resnet18 --option image_size=[32,32] --option subsets=5 "
                        "--option max_draws=500 (minutes), or --device cuda.",
                        seconds / 3600, n_datasets, o.arch, *o.image_size, o.subsets,
                        o.max_draws, per_image)

    def check(self, records: list[DatasetRecord]) -> None:
        """Every subset of every dataset holds two classes (what :meth:`compute` needs)."""
        for record in records:
            labels = np.load(record.file_path("labels"))
            for i in range(1, self.opts.subsets + 1):
                idx = subset_indices(len(labels), self.opts.fraction, self.opts.min_subset, i)
                if len(np.unique(labels[idx])) < 2:
                    raise ProbeError(f"Subset {i} of '{record.name}' ({len(idx)} images: "
                                     f"fraction {self.opts.fraction} of {len(labels)}, at least "
                                     f"min_subset {self.opts.min_subset}) holds a single class.",
                                     "Raise --option min_subset or fraction.")

    def _trivial(self, embedder: Task2VecEmbedder) -> np.ndarray:
        """Embedding of a task without structure: uniform noise images, random labels."""
        gen = np.random.default_rng(self.opts.seed)
        n = max(self.opts.min_subset, 64)
        images = torch.as_tensor(gen.integers(0, 256, (n, 3, *self.opts.image_size)),
                                 dtype=torch.uint8, device=embedder.device)
        labels = np.arange(n) % 2
        return embedder.embed(images, labels, 2, seed=self.opts.seed)

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        if not self.opts.weights:
            raise ProbeError("Task2Vec needs a probe network, and none was given.",
                             "Pass --option weights=SPEC (file:PATH, local-dir:PATH, "
                             "models:/NAME@ALIAS, hf-hub:ORG/REPO; e.g. an ImageNet ResNet or a "
                             "model from `bench models`), or --option weights=random to ask for a "
                             "randomly initialised network by name.")
        if self.opts.weights == RANDOM:
            log.warning("task2vec: a randomly initialised %s as probe network (asked for by "
                        "name); its embeddings describe the data through random filters",
                        self.opts.arch)
        embedder = Task2VecEmbedder(self.opts, torch.device(self.context.device),
                                    self.context.paths.registry_models_dir,
                                    self.context.tracking_uri)
        todo = [r for r in records if not self._cache_path(r).is_file()]
        if todo and embedder.device.type == "cpu":
            self._warn_if_long(embedder, len(todo))
        embs = {r.name: self._embeddings(r, embedder) for r in records}
        names = [r.name for r in records]
        rng = np.random.default_rng(self.opts.seed)
        if self.opts.distance == "asymmetric":
            trivial = self._trivial(embedder)
            fn = lambda a, b: asymmetric(a, b, trivial, self.opts.alpha)  # noqa: E731
        else:
            fn = DISTANCES[self.opts.distance]
        d = np.zeros((len(names), len(names)))
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i != j:
                    d[i, j] = dataset_distance(embs[a], embs[b], fn, self.opts.pairs, rng)
        return ProbeResult(self.name, names, d,
                           embeddings={n: np.stack(e) for n, e in embs.items()},
                           details={"distance": self.opts.distance, "subsets": self.opts.subsets,
                                    "arch": self.opts.arch, "weights": self.opts.weights})
