"""What the transferability estimators share: the source model's penultimate features and
source-head probabilities on a target's images, and the checks of those inputs. Each estimator
is one module of this package: its score (NumPy, on fixed features) and its probe."""

from __future__ import annotations

import numpy as np
import torch

from bench_core.batches import BatchPrep
from probes.base import ProbeError
from probes.model_scoring import ModelScoringOptions, ModelScoringProbe


class EstimatorOptions(ModelScoringOptions):
    pass


class EstimatorProbe(ModelScoringProbe):
    """Scores a source model on a target sample from its features and head probabilities
    (higher = better predicted transfer); subclasses define :meth:`score`."""

    Options = EstimatorOptions

    def score(self, features: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> float:
        raise NotImplementedError

    def score_pair(self, model, images, labels, record, prep) -> tuple[float, None]:
        return self.score(*self._outputs(model, images, prep), labels), None

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


def check_inputs(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(y):
        raise ProbeError(f"Features {f.shape} and labels {y.shape} do not pair up.",
                         "Pass an (n, D) feature matrix and n labels.")
    if len(np.unique(y)) < 2:
        raise ProbeError("Transferability estimators need at least two classes in the labels.",
                         "Use target data with more than one class.")
    return f, y
