"""Seeded, stratified, nested subsets.

:func:`stratified_order` orders the samples so that every prefix is stratified: within each
class the samples are shuffled with the seed, then classes are interleaved by the fraction of
their class already taken. The first ``n`` of that order is a stratified subset of size ``n``
(each class within one sample of ``n * p_c``), and a smaller subset drawn with the same seed
is always inside a larger one (PCam-small inside PCam-middle).
"""

from __future__ import annotations

import numpy as np

from registry.errors import CardError


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``range(len(labels))`` whose every prefix is stratified."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels), dtype=np.float64)
    tiebreak = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
        tiebreak[members] = cls
    return np.lexsort((tiebreak, keys))


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a stratified subset of size ``n`` (nested across ``n`` for one seed)."""
    if n > len(labels):
        raise CardError(f"Subset size {n} is larger than the {len(labels)} samples available.",
                        "Lower the subset size in the card, or provide the complete data.")
    return np.sort(stratified_order(labels, seed)[:n])
