"""Probes that score source models on target data (transferability estimators, feature
behaviour): the shared options, the seeded target sample and the source x target loop.

The caller hands the models over in ``ProbeContext.source_models`` (a suite's pretrained models,
or published ones). The matrix holds distance = -score with rows = source models, columns =
target data; rows of datasets without a model are NaN, and the diagonal is 0 by convention.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench_core.batches import BatchPrep
from bench_core.data import load_device_data
from bench_core.models import load_source_model
from bench_core.sources import SourceModel
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult
from registry.store import DatasetRecord


class ModelScoringOptions(ProbeOptions):
    suite: str = "mnist"  # whose pretrained models: resolved by the caller into source_models
    models: tuple[str, ...] = ()  # published models instead (models:/NAME@ALIAS, local-dir:PATH)
    max_samples: int = 2000
    seed: int = 0


class ModelScoringProbe(Probe):
    """Scores each source model on each target's data (higher = better transfer)."""

    smoke_options = {"max_samples": 120}

    Options = ModelScoringOptions
    symmetric = False
    uses_source_models = True

    def score_pair(self, model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray,
                   record: DatasetRecord, prep: BatchPrep) -> tuple[float, Any]:
        """``model``'s score on one target sample, and what to keep of it (or None)."""
        raise NotImplementedError

    def result_details(self, kept: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Details of the result beyond the common ones (``kept``: source -> target -> what
        :meth:`score_pair` kept)."""
        return {}

    def result_figures(self, details: dict[str, Any]) -> dict[str, Any]:
        """Extra figures of the result (artifact path -> a function drawing it)."""
        return {}

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
            out[label] = float(self.score_pair(model, images, labels, record, prep)[0])
        return out

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
        kept: dict[str, dict[str, Any]] = {src: {} for src in models}
        with self.context.progress(f"{self.name} scores", len(names)) as advance:
            for j, rec in enumerate(records):  # each target's data loaded once
                images, labels = self._sample(rec, size, device)
                for i, src in enumerate(names):
                    if src in models and i != j:
                        score, keep = self.score_pair(models[src], images, labels, rec, prep)
                        d[i, j] = -score
                        if keep is not None:
                            kept[src][rec.name] = keep
                advance(1)
        np.fill_diagonal(d, 0.0)
        details = {"suite": self.opts.suite, "sources_with_models": sorted(models),
                   "distance": "-score (rows: source models, columns: target data)",
                   **self.result_details(kept)}
        return ProbeResult(self.name, names, d, details=details,
                           figures=self.result_figures(details))
