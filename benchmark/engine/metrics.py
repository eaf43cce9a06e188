"""AUC, accuracy and transferability (Eq. 1 of van den Brandt et al. 2021).

The AUC is scikit-learn's ``roc_auc_score`` on the CPU probabilities: binary AUC on the
positive-class score; multi-class one-vs-rest AUC weighted by class prior
(``multi_class='ovr', average='weighted'``), as the paper's code. A split that lacks a class is
an error with what to do, never NaN or scikit-learn's ValueError. (``binary_auc`` keeps the
rank formula, Mann-Whitney U with midranks, as the independent check in the tests.)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

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
    if p.ndim == 1 or p.shape[1] == 2:
        score = p if p.ndim == 1 else p[:, 1]
        if len(np.unique(y)) < 2:
            raise MetricError("AUC is undefined: the labels contain only one class.",
                              "Stratify the split so every class is present.")
        return float(roc_auc_score(y == 1, score))
    present = np.unique(y)
    if len(present) != p.shape[1]:
        missing = sorted(set(range(p.shape[1])) - set(present.tolist()))
        raise MetricError(f"One-vs-rest AUC is undefined: class(es) {missing} are absent "
                          "from the labels.", "Stratify the split so every class is present.")
    p = p / p.sum(axis=1, keepdims=True)  # exact simplex (float32 softmax drifts by 1e-7)
    return float(roc_auc_score(y, p, multi_class="ovr", average="weighted",
                               labels=np.arange(p.shape[1])))


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    p = np.asarray(proba)
    pred = (p > 0.5).astype(int) if p.ndim == 1 else p.argmax(axis=1)
    return float((pred == np.asarray(y_true)).mean())


def transferability(auc_transfer: float, auc_baseline: float) -> float:
    """Eq. 1: (AUC(S->T) - AUC(T)) / AUC(T) * 100."""
    if auc_baseline <= 0:
        raise MetricError(f"Transferability needs a positive baseline AUC, got {auc_baseline}.")
    return (auc_transfer - auc_baseline) / auc_baseline * 100.0
