"""Task2Vec (Achille et al. 2019) as used by seed 004.

For a dataset (or each of its subsets): the frozen probe network (timm, eval mode: BatchNorm
statistics stay fixed) extracts penultimate features once; a new classifier head is trained on
those cached features (Adam, lr 4e-4, weight decay 1e-4, 10 epochs, class-balanced loss); then
the diagonal Fisher of every weight except the classifier is estimated on class-balanced draws
(per-sample gradients in batch, see :mod:`probes.fisher`), and averaged per output filter of
every convolution and BatchNorm layer; ``fisher: variational`` learns a per-filter posterior
variance instead (:mod:`probes.variational`). Seed 004's protocol: ``subsets`` subsets of ``fraction``
of the data each, subset i drawn with random state i, distance = mean over ``pairs`` random
pairs of subset embeddings. Embeddings are cached per (probe config, dataset) as .npz.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench_core.hashing import config_hash
from bench_core.data import DeviceData, load_device_data
from bench_core.models import build_model, classifier_keys, model_from_weights
from bench_core.batches import BatchPrep, class_weights
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from probes.distances import DISTANCES, asymmetric, dataset_distance
from probes.fisher import fisher_batch_mean, fisher_per_sample
from probes.variational import variational_embedding
from registry.files import atomic_write
from registry.store import DatasetRecord

log = logging.getLogger(__name__)
RANDOM = "random"


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
    max_draws: int = 10000
    head_epochs: int = 10
    head_lr: float = 4e-4
    head_weight_decay: float = 1e-4
    fisher: Literal["per-sample", "batch-mean", "variational"] = "per-sample"
    variational_epochs: int = 2
    sampling: Literal["montecarlo", "expected"] = "montecarlo"
    distance: Literal["cosine", "normalized_cosine", "correlation", "kl", "jsd",
                      "asymmetric"] = "cosine"
    alpha: float = 0.15
    pairs: int = 5
    chunk: int = 16
    seed: int = 0


def filter_embedding(model: nn.Module, fisher: dict[str, torch.Tensor]) -> np.ndarray:
    """Fisher averaged per output filter of every conv / BatchNorm layer, concatenated."""
    parts = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            for pname in ("weight", "bias"):
                key = f"{name}.{pname}"
                if key in fisher:
                    f = fisher[key]
                    parts.append(f.reshape(f.shape[0], -1).mean(dim=1))
    if not parts:
        raise ProbeError(f"The probe network {type(model).__name__} has no conv/BatchNorm layers.",
                         "Use a convolutional timm model.")
    return torch.cat(parts).detach().cpu().double().numpy()


class Task2VecEmbedder:
    """Embeds (subsets of) datasets with one probe network."""

    def __init__(self, opts: Task2VecOptions, device: torch.device,
                 weights_cache: Path | None = None, tracking_uri: str | None = None) -> None:
        self.opts, self.device = opts, device
        self.weights_cache, self.tracking_uri = weights_cache, tracking_uri
        self.prep = BatchPrep(device)

    def _network(self, n_classes: int) -> nn.Module:
        if self.opts.weights != RANDOM:
            net = model_from_weights(self.opts.weights, self.opts.arch, n_classes, 0.0,
                                     cache=self.weights_cache, tracking_uri=self.tracking_uri)
        else:
            torch.manual_seed(self.opts.seed)
            net = build_model(self.opts.arch, n_classes, 0.0)
        return net.to(self.device).eval()

    @torch.no_grad()
    def _features(self, net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        feats = []
        for start in range(0, len(images), 256):
            x = self.prep(images[start:start + 256])
            feats.append(net.forward_head(net.forward_features(x), pre_logits=True).float())
        return torch.cat(feats)

    def _train_head(self, net: nn.Module, feats: torch.Tensor, labels: torch.Tensor,
                    weight: torch.Tensor, gen: torch.Generator) -> None:
        head = net.get_classifier()
        opt = torch.optim.Adam(head.parameters(), lr=self.opts.head_lr,
                               weight_decay=self.opts.head_weight_decay)
        for _ in range(self.opts.head_epochs):
            order = torch.randperm(len(feats), generator=gen).to(feats.device)
            for start in range(0, len(order), 64):
                b = order[start:start + 64]
                loss = F.cross_entropy(head(feats[b]), labels[b], weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    def embed(self, images: torch.Tensor, labels: np.ndarray, n_classes: int, seed: int
              ) -> np.ndarray:
        """The Task2Vec embedding of (images uint8 N,C,H,W; labels)."""
        gen = torch.Generator().manual_seed(seed)
        net = self._network(n_classes)
        y = torch.as_tensor(labels, device=self.device)
        weight = class_weights(labels, n_classes, self.device)
        for p in net.parameters():
            p.requires_grad_(False)
        head = net.get_classifier()
        for p in head.parameters():
            p.requires_grad_(True)
        self._train_head(net, self._features(net, images), y, weight, gen)
        for p in net.parameters():
            p.requires_grad_(True)
        draws = self._balanced_draws(labels, n_classes, gen)
        x = self.prep(images[torch.as_tensor(draws, device=images.device)])
        head = classifier_keys(net)
        names = [n for n, _ in net.named_parameters() if n not in head]
        if self.opts.fisher == "variational":
            return variational_embedding(net, x, y[torch.as_tensor(draws, device=y.device)],
                                         epochs=self.opts.variational_epochs, gen=gen)
        if self.opts.fisher == "batch-mean":
            fisher = fisher_batch_mean(net, x, names, gen=gen)
        else:
            fisher = fisher_per_sample(net, x, names, self.opts.sampling, self.opts.chunk, gen)
        return filter_embedding(net, fisher)

    def _balanced_draws(self, labels: np.ndarray, n_classes: int, gen: torch.Generator
                        ) -> np.ndarray:
        """Class-balanced sampling with replacement (every class equally likely)."""
        counts = np.bincount(labels, minlength=n_classes).astype(float)
        w = 1.0 / counts[labels]
        n = min(self.opts.max_draws, len(labels))
        picks = torch.multinomial(torch.as_tensor(w / w.sum()), n, replacement=True, generator=gen)
        return np.sort(picks.numpy())


def subset_indices(n: int, fraction: float, minimum: int, index: int) -> np.ndarray:
    """Subset ``index`` (random state = index, as in seed 004) of fraction * n samples."""
    size = min(n, max(minimum, int(round(fraction * n))))
    return np.sort(np.random.default_rng(index).choice(n, size=size, replace=False))


@register_probe
class Task2VecProbe(Probe):
    name = "task2vec"
    uses_probe_network = True
    Options = Task2VecOptions

    @property
    def symmetric(self) -> bool:  # type: ignore[override]
        return self.opts.distance not in ("kl", "asymmetric")

    def _cache_dir(self) -> Path:
        opts = self.opts.model_dump(mode="json")
        for k in ("distance", "alpha", "pairs"):
            opts.pop(k)
        return self.context.paths.home / "probes" / "task2vec" / config_hash(opts)

    def _embeddings(self, record: DatasetRecord, embedder: Task2VecEmbedder) -> list[np.ndarray]:
        path = self._cache_dir() / f"{record.name}-{record.fingerprint[:16]}.npz"
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
