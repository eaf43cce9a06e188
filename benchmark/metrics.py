"""AUC, accuracy and transferability (Eq. 1 of seed 004).

The AUC is computed here from ranks (Mann-Whitney U with midranks for ties) rather than by
calling scikit-learn, and tested against ``sklearn.metrics.roc_auc_score``: binary AUC on the
positive-class score; multi-class one-vs-rest AUC weighted by class prior
(``multi_class='ovr', average='weighted'``). A split that lacks a class is an error, never NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from registry.errors import BenchError


class MetricError(BenchError):
    """A metric that is undefined for the given labels."""


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the positive class ``y_true == 1``."""
    y = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise MetricError("AUC is undefined: the labels contain only one class.",
                          "Stratify the split so every class is present.")
    ranks = rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary AUC (``proba`` (N,) or (N, 2)) or prior-weighted one-vs-rest AUC (N, K)."""
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        return binary_auc(y, p)
    if p.shape[1] == 2:
        return binary_auc(y == 1, p[:, 1])
    present = np.unique(y)
    if len(present) != p.shape[1]:
        missing = sorted(set(range(p.shape[1])) - set(present.tolist()))
        raise MetricError(f"One-vs-rest AUC is undefined: class(es) {missing} are absent "
                          "from the labels.", "Stratify the split so every class is present.")
    weights = np.bincount(y, minlength=p.shape[1]) / len(y)
    return float(sum(w * binary_auc(y == k, p[:, k]) for k, w in enumerate(weights)))


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    p = np.asarray(proba)
    pred = (p > 0.5).astype(int) if p.ndim == 1 else p.argmax(axis=1)
    return float((pred == np.asarray(y_true)).mean())


def transferability(auc_transfer: float, auc_baseline: float) -> float:
    """Eq. 1: (AUC(S->T) - AUC(T)) / AUC(T) * 100."""
    if auc_baseline <= 0:
        raise MetricError(f"Transferability needs a positive baseline AUC, got {auc_baseline}.")
    return (auc_transfer - auc_baseline) / auc_baseline * 100.0
