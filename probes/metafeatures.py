"""Statistical meta-features (the registry's OpenML-style qualities): Euclidean distance between
datasets after standardising each feature across the compared datasets (z-scores; a feature
constant across them contributes nothing)."""

from __future__ import annotations

import numpy as np

from probes.base import Probe, ProbeOptions, ProbeResult, register_probe
from registry.metafeatures import in_vocabulary
from registry.store import DatasetRecord

DEFAULT_FEATURES = ("NumberOfInstances", "NumberOfClasses", "ClassEntropy",
                    "normalized_class_entropy", "MajorityClassPercentage",
                    "MinorityClassPercentage", "channels",
                    "intensity_mean", "intensity_std", "image_contrast_mean",
                    "edge_strength_mean", "intensity_entropy_bits")


class MetaFeatureOptions(ProbeOptions):
    features: tuple[str, ...] = DEFAULT_FEATURES
    log_counts: bool = True  # NumberOfInstances, NumberOfClasses on a log scale


def standardized_distances(table: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances of the z-scored columns of ``table`` (n x f)."""
    std = table.std(axis=0)
    z = np.where(std > 0, (table - table.mean(axis=0)) / np.where(std > 0, std, 1), 0.0)
    diff = z[:, None, :] - z[None, :, :]
    return np.sqrt((diff ** 2).sum(axis=2))


@register_probe
class MetaFeatureProbe(Probe):
    """Distance between the statistical meta-features of the registered datasets."""

    name = "metafeatures"
    Options = MetaFeatureOptions

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        rows = []
        for r in records:
            row, feats = [], in_vocabulary(r.meta_features)
            for f in self.opts.features:
                v = float(feats.get(f, 0.0))
                row.append(np.log10(max(v, 1.0)) if self.opts.log_counts and f in
                           ("NumberOfInstances", "NumberOfClasses") else v)
            rows.append(row)
        table = np.asarray(rows)
        return ProbeResult(self.name, [r.name for r in records], standardized_distances(table),
                           embeddings={r.name: table[i] for i, r in enumerate(records)},
                           details={"features": list(self.opts.features)})
