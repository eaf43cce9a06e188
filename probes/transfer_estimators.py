"""Transferability estimators as probes: for each source model (the models a suite pretrained,
handed over in ``ProbeContext.source_models`` by the caller) and each dataset as target,
extract the source model's penultimate features and source-head probabilities on the target's images and score them
(LogME, LEEP, NCE, H-score; higher = better transfer). The matrix holds distance = -score with
rows = source models, columns = target data; rows of datasets the suite did not pretrain are
NaN, and the diagonal is 0 by convention."""

from __future__ import annotations

import numpy as np
import torch

from bench_core.batches import BatchPrep
from bench_core.data import load_device_data
from bench_core.models import load_source_model
from bench_core.sources import SourceModel
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from probes.estimators import hscore, leep, logme, nce
from registry.store import DatasetRecord


class EstimatorOptions(ProbeOptions):
    suite: str = "mnist"  # whose pretrained models: resolved by the caller into source_models
    models: tuple[str, ...] = ()  # published models instead (models:/NAME@ALIAS, local-dir:PATH)
    max_samples: int = 2000
    shrinkage: bool = False
    seed: int = 0


class _EstimatorProbe(Probe):
    Options = EstimatorOptions
    symmetric = False
    uses_source_models = True

    def score(self, features: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> float:
        raise NotImplementedError

    def _sample(self, record: DatasetRecord, size: tuple[int, int], device
                ) -> tuple[torch.Tensor, np.ndarray]:
        """The target's images (a seeded sample of at most max_samples) and their labels."""
        data = load_device_data(record, size, device)
        rng = np.random.default_rng(self.opts.seed)
        idx = np.sort(rng.permutation(len(data.labels_np))[:self.opts.max_samples])
        return data.images[torch.as_tensor(idx, device=device)], data.labels_np[idx]

    def score_models(self, models: dict[str, SourceModel], record: DatasetRecord
                     ) -> dict[str, float]:
        """Each model's score on ``record``'s data (higher = better transfer), by its label."""
        device = torch.device(self.context.device)
        prep, out = BatchPrep(device), {}
        for label, source in models.items():
            images, labels = self._sample(record, source.image_size, device)
            model = load_source_model(source).to(device).eval()
            out[label] = float(self.score(*self._outputs(model, images, prep), labels))
        return out

    @torch.no_grad()
    def _outputs(self, model: torch.nn.Module, images: torch.Tensor, prep: BatchPrep
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features and source-head probabilities of ``model`` on ``images``."""
        feats, probs = [], []
        for s in range(0, len(images), 256):
            f = model.forward_head(model.forward_features(prep(images[s:s + 256])), pre_logits=True)
            feats.append(f.float().cpu())
            probs.append(torch.softmax(model.get_classifier()(f).float(), 1).cpu())
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        sources = self.context.source_models
        if not sources:
            raise ProbeError(f"Probe '{self.name}' scores source models, and none were given.",
                             f"Run it in a suite after `bench run --suite {self.opts.suite}`, or "
                             f"with --option suite=NAME of a suite that ran here.")
        device = torch.device(self.context.device)
        names = [r.name for r in records]
        models = {n: load_source_model(sources[n]).to(device).eval() for n in names if n in sources}
        size = next(iter(sources.values())).image_size
        prep = BatchPrep(device)
        d = np.full((len(names), len(names)), np.nan)
        with self.context.progress(f"{self.name} scores", len(names)) as advance:
            for j, rec in enumerate(records):  # each target's data loaded once
                images, labels = self._sample(rec, size, device)
                for i, src in enumerate(names):
                    if src in models and i != j:
                        f, p = self._outputs(models[src], images, prep)
                        d[i, j] = -self.score(f, p, labels)
                advance(1)
        np.fill_diagonal(d, 0.0)
        return ProbeResult(self.name, names, d, details={
            "suite": self.opts.suite, "sources_with_models": sorted(models),
            "distance": "-score (rows: source models, columns: target data)"})


@register_probe
class LogMEProbe(_EstimatorProbe):
    name = "logme"

    def score(self, features, probs, labels):
        return logme(features, labels)


@register_probe
class LEEPProbe(_EstimatorProbe):
    name = "leep"

    def score(self, features, probs, labels):
        return leep(probs, labels)


@register_probe
class NCEProbe(_EstimatorProbe):
    name = "nce"

    def score(self, features, probs, labels):
        return nce(probs.argmax(axis=1), labels)


@register_probe
class HScoreProbe(_EstimatorProbe):
    name = "hscore"

    def score(self, features, probs, labels):
        return hscore(features, labels, shrinkage=self.opts.shrinkage)
