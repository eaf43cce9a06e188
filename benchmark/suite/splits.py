"""Cross-validation splits of the protocol: k stratified folds; in fold i the i-th held-out
part (1/k of the data) is split, stratified, into validation and test, the rest is training
(5 folds: 80/10/10). Test sets of different folds are disjoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from registry.errors import DatasetFormatError
from registry.sampling import stratified_subset


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def check_splittable(labels: np.ndarray, n_folds: int, dataset: str) -> None:
    """Every class needs enough samples that each fold's val and test splits contain it."""
    counts = np.bincount(labels)
    need = 2 * n_folds
    small = {int(c): int(n) for c, n in enumerate(counts) if 0 < n < need}
    if small:
        raise DatasetFormatError(
            f"'{dataset}' cannot be split into {n_folds} stratified folds with a validation and a "
            f"test part holding every class: class(es) {small} have fewer than {need} samples.",
            "Use fewer folds (--set folds.n=...) or more data for those classes.")


def fold_splits(labels: np.ndarray, n_folds: int, val_fraction: float, seed: int
                ) -> list[Split]:
    """The ``n_folds`` splits of ``labels`` (deterministic for a seed)."""
    from sklearn.model_selection import StratifiedKFold, train_test_split  # not at plan time

    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    splits = []
    for train, held in skf.split(np.zeros(len(labels)), labels):
        val, test = train_test_split(held, test_size=1 - val_fraction, stratify=labels[held],
                                     random_state=seed)
        splits.append(Split(np.sort(train), np.sort(val), np.sort(test)))
    return splits


def single_split(labels: np.ndarray, seed: int, val: float = 0.1, test: float = 0.1) -> Split:
    """One stratified train/val/test split (pretraining uses a single split, Table II)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, held = train_test_split(idx, test_size=val + test, stratify=labels, random_state=seed)
    v, t = train_test_split(held, test_size=test / (val + test), stratify=labels[held],
                            random_state=seed)
    return Split(np.sort(train), np.sort(v), np.sort(t))


def official_split(codes: np.ndarray) -> Split:
    """The dataset's published split from its codes (0 train, 1 val, 2 test)."""
    idx = np.arange(len(codes))
    return Split(idx[codes == 0], idx[codes == 1], idx[codes == 2])


def target_subset(labels: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """The indices a target fine-tunes on: all, or a nested stratified subset."""
    if max_samples is None or max_samples >= len(labels):
        return np.arange(len(labels))
    return stratified_subset(labels, max_samples, seed)

