"""What the transferability estimators share: the source model's penultimate features and
source-head probabilities on a target's images, and the checks of those inputs. Each estimator
is one module of this package: its score (NumPy, on fixed features) and its probe."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from bench_core.batches import BatchPrep
from probes.base import ProbeError
from probes.model_scoring import ModelScoringOptions, ModelScoringProbe


class EstimatorOptions(ModelScoringOptions):
    pass


class EstimatorProbe(ModelScoringProbe):
    """Scores a source model on a target sample from its features and head probabilities
    (higher = better predicted transfer); subclasses define :meth:`score`, which the probe
    calls through :meth:`checked_score` (the checks every estimator shares, naming it)."""

    Options = EstimatorOptions

    @abstractmethod
    def score(self, features: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> float:
        """The estimator's score of ``features`` (n, D) and source-head ``probs`` (n, C)
        against ``labels`` (n): higher = better predicted transfer."""

    def checked_score(self, features: np.ndarray, probs: np.ndarray | None, labels: np.ndarray):
        """:meth:`score` after :func:`check_outputs`: every estimator refuses NaN outputs, one
        class and unpaired arrays in the same words, naming itself, whichever inputs it reads."""
        check_outputs(self.name, features, probs, labels)
        return self.score(features, probs, labels)

    def score_pair(self, model, images, labels, record, prep) -> tuple[float, None]:
        return self.checked_score(*self.outputs(model, images, record, prep), labels), None

    def outputs(self, model, images, record, prep) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_outputs`, from the context's cache when another estimator of this process
        computed them for the same model and the same sample of ``record``."""
        cache, identity = self.context.outputs, getattr(model, "tb_identity", None)
        if cache is None or identity is None:
            return self._outputs(model, images, prep)
        key = (identity, record.name, record.fingerprint, tuple(images.shape),
               self.opts.max_samples, self.opts.seed, str(images.device))
        return cache.get(key, lambda: self._outputs(model, images, prep))

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


def check_outputs(method: str, features: np.ndarray, probs: np.ndarray | None,
                  labels: np.ndarray) -> None:
    """A model's outputs on a target sample as every estimator needs them, whatever it reads:
    (n, D) finite features, (n, C) finite probabilities (or None: not computed), n labels of
    at least two classes. Each error names the estimator ``method``."""
    f, y = np.asarray(features), np.asarray(labels)
    p = None if probs is None else np.asarray(probs)
    if f.ndim != 2 or y.ndim != 1 or len(f) != len(y) or (p is not None and (
            p.ndim != 2 or len(p) != len(y))):
        raise ProbeError(f"Estimator '{method}': features {f.shape}, probabilities "
                         f"{None if p is None else p.shape} and labels {y.shape} do not pair up.",
                         "Pass an (n, D) feature matrix, (n, C) probabilities and n labels.")
    for what, a in (("features", f), ("probabilities", p)):
        if a is not None and not np.all(np.isfinite(a)):
            rows = int((~np.isfinite(a)).any(axis=1).sum())
            raise ProbeError(f"Estimator '{method}': the source model's {what} contain NaN or "
                             f"inf in {rows} of {len(a)} samples.",
                             "Check the source model (did its training diverge?).")
    if len(np.unique(y)) < 2:
        raise ProbeError(f"Estimator '{method}' needs at least two classes in the labels, got "
                         f"{len(np.unique(y))}.", "Use target data with more than one class.")


def check_inputs(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(y):
        raise ProbeError(f"Features {f.shape} and labels {y.shape} do not pair up.",
                         "Pass an (n, D) feature matrix and n labels.")
    if not np.all(np.isfinite(f)):
        raise ProbeError("Transferability estimators need finite inputs; these contain NaN or "
                         "inf.", "Check the source model (did its training diverge?).")
    if len(np.unique(y)) < 2:
        raise ProbeError("Transferability estimators need at least two classes in the labels.",
                         "Use target data with more than one class.")
    return f, y


def check_labelled(features: np.ndarray, labels: np.ndarray, method: str,
                   min_per_class: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(f, y, classes)``: f the features as float64 (n, D), y the labels as indices 0..K-1
    into their sorted unique values ``classes``. Stricter than :func:`check_inputs` (1-D labels,
    finite features, ``min_per_class`` samples a class); each error names ``method``."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or y.ndim != 1 or len(f) != len(y):
        raise ProbeError(f"{method}: features {f.shape} and labels {y.shape} do not pair up.",
                         "Pass an (n, D) feature matrix and n labels (a 1-D array).")
    if f.shape[1] == 0:
        raise ProbeError(f"{method}: the features have no columns.",
                         "Pass at least one feature.")
    if not np.all(np.isfinite(f)):
        raise ProbeError(f"{method}: the features contain NaN or inf.",
                         "Clean or drop those rows (a source model that diverged?).")
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ProbeError(f"{method} needs at least two classes in the labels, got "
                         f"{len(classes)}.", "Use target data with more than one class.")
    if counts.min() < min_per_class:
        small = classes[counts < min_per_class].tolist()
        raise ProbeError(f"{method} needs at least {min_per_class} samples per class; classes "
                         f"{small} have fewer.",
                         "Drop those classes, or sample more of the target (max_samples).")
    return f, y_idx.reshape(-1), classes
