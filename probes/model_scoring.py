"""Probes that score source models on target data (transferability estimators, feature
behaviour): the shared options, the seeded target sample and the source x target loop.

The caller hands the models over in ``ProbeContext.source_models`` (a suite's pretrained models,
or published ones). The matrix holds distance = -score with rows = source models, columns =
target data; rows of datasets without a model are NaN, and the diagonal is 0 by convention.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

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
    min_per_class: ClassVar[int] = 1  # images of each class a score needs in the sample
    symmetric = False
    uses_source_models = True
    cost = 3

    def score_pair(self, model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray,
                   record: DatasetRecord, prep: BatchPrep) -> tuple[float, Any]:
        """``model``'s score on one target sample, and what to keep of it (or None)."""
        raise NotImplementedError

    def pool_scores(self, raw: dict[str, Any]) -> dict[str, float]:
        """The scores of the models scored on one target, from the first value :meth:`score_pair`
        returned for each (source -> value). By default that value is the model's score; an
        estimator defined over the pool of candidate models (NCTI) scores them here together."""
        return raw

    def result_details(self, kept: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Details of the result beyond the common ones (``kept``: source -> target -> what
        :meth:`score_pair` kept)."""
        return {}

    def result_figures(self, details: dict[str, Any]) -> dict[str, Any]:
        """Extra figures of the result (artifact path -> a function drawing it)."""
        return {}

    @staticmethod
    def load(source: SourceModel, device) -> torch.nn.Module:
        """The source model in eval mode on ``device``, tagged with what identifies it (its
        weights file and their size and time) for the outputs cache."""
        model = load_source_model(source).to(device).eval()
        stat = Path(source.weights).stat()
        model.tb_identity = (str(Path(source.weights).resolve()), stat.st_size, stat.st_mtime_ns)
        return model

    def _indices(self, n: int) -> np.ndarray:
        """The seeded sample of at most max_samples of a target's n images."""
        rng = np.random.default_rng(self.opts.seed)
        return np.sort(rng.permutation(n)[:self.opts.max_samples])

    def _sample(self, record: DatasetRecord, size: tuple[int, int], device
                ) -> tuple[torch.Tensor, np.ndarray]:
        """The target's images (a seeded sample of at most max_samples) and their labels."""
        data = load_device_data(record, size, device)
        idx = self._indices(len(data.labels_np))
        return data.images[torch.as_tensor(idx, device=device)], data.labels_np[idx]

    def check(self, records: list[DatasetRecord]) -> None:
        """Each dataset's sample holds two classes and ``min_per_class`` images of each; a
        source model stands for at least one of the datasets."""
        sources = self.context.source_models
        if not sources:
            raise ProbeError(f"Probe '{self.name}' scores source models, and none were given "
                             "(weight-only sources such as ImageNet are not among them).",
                             "Run it in a suite that pretrains a source, or with --option "
                             "suite=NAME of a suite that ran here (or --option models=[...]).")
        if not any(r.name in sources for r in records):
            raise ProbeError(f"Probe '{self.name}' scores source models on the datasets, and "
                             f"none of {[r.name for r in records]} has one.",
                             f"Include a source of the suite: {', '.join(sorted(sources))}.")
        for record in records:
            labels = np.load(record.file_path("labels"))
            self.check_sample(record, labels[self._indices(len(labels))])

    def check_sample(self, record: DatasetRecord, labels: np.ndarray) -> None:
        """The labels of ``record``'s sample hold two classes and ``min_per_class`` images of
        each (a probe with more needs adds them here)."""
        counts = np.bincount(labels)
        counts = counts[counts > 0]
        if len(counts) < 2 or counts.min() < self.min_per_class:
            raise ProbeError(
                f"Probe '{self.name}' needs two classes and {self.min_per_class} image(s) "
                f"of each in its sample of '{record.name}' (max_samples="
                f"{self.opts.max_samples}); the sample has {counts.tolist()} per class.",
                "Raise --option max_samples, or leave the dataset out.")

    def score_models(self, models: dict[str, SourceModel], record: DatasetRecord
                     ) -> dict[str, float]:
        """Each model's score on ``record``'s data (higher = better transfer), by its label."""
        device = torch.device(self.context.device)
        prep, raw = BatchPrep(device), {}
        for label, source in models.items():
            images, labels = self._sample(record, source.image_size, device)
            model = self.load(source, device)
            raw[label] = self.score_pair(model, images, labels, record, prep)[0]
        return {label: float(score) for label, score in self.pool_scores(raw).items()}

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        sources = self.context.source_models
        if not sources:
            raise ProbeError(f"Probe '{self.name}' scores source models, and none were given.",
                             f"Run it in a suite after `bench run --suite {self.opts.suite}`, or "
                             f"with --option suite=NAME of a suite that ran here.")
        self.check(records)
        device = torch.device(self.context.device)
        names = [r.name for r in records]
        models = {n: self.load(sources[n], device) for n in names if n in sources}
        size = next(iter(sources.values())).image_size
        prep = BatchPrep(device)
        d = np.full((len(names), len(names)), np.nan)
        kept: dict[str, dict[str, Any]] = {src: {} for src in models}
        with self.context.progress(f"{self.name} scores", len(names)) as advance:
            for j, rec in enumerate(records):  # each target's data loaded once
                images, labels = self._sample(rec, size, device)
                raw = {}  # the pool: every model scored on this target
                for i, src in enumerate(names):
                    if src in models and i != j:
                        raw[src], keep = self.score_pair(models[src], images, labels, rec, prep)
                        if keep is not None:
                            kept[src][rec.name] = keep
                scores = self.pool_scores(raw)
                for i, src in enumerate(names):
                    if src in scores and i != j:
                        d[i, j] = -scores[src]
                advance(1)
        np.fill_diagonal(d, 0.0)
        details = {"suite": self.opts.suite, "sources_with_models": sorted(models),
                   "distance": "-score (rows: source models, columns: target data)",
                   **self.result_details(kept)}
        return ProbeResult(self.name, names, d, details=details,
                           figures=self.result_figures(details))
