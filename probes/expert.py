"""Expert meta-features (van den Brandt et al. 2021): Hamming distance between the cards' six properties."""

from __future__ import annotations

import numpy as np

from probes.base import Probe, ProbeError, ProbeResult, register_probe
from registry.card import ExpertFeatures
from registry.store import DatasetRecord


def expert_vector(record: DatasetRecord) -> tuple[str, ...]:
    expert = record.card.get("expert")
    if not expert:
        raise ProbeError(f"'{record.name}' has no expert meta-features in its card.",
                         "Add an `expert:` section to its card (see registry/catalog/*.yaml) "
                         "and register it again with --force.")
    return tuple(str(expert[f]) for f in ExpertFeatures.FIELDS)


def hamming_matrix(vectors: list[tuple[str, ...]]) -> np.ndarray:
    """Number of differing properties between every pair."""
    n = len(vectors)
    return np.array([[sum(a != b for a, b in zip(vectors[i], vectors[j])) for j in range(n)]
                     for i in range(n)], dtype=float)


@register_probe
class ExpertProbe(Probe):
    """Distance between the expert meta-features of the dataset cards (Cheplygina et al.)."""

    name = "expert"
    needs_data = False
    cost = 1

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        vectors = [expert_vector(r) for r in records]
        return ProbeResult(self.name, [r.name for r in records], hamming_matrix(vectors),
                           details={"fields": list(ExpertFeatures.FIELDS)})
