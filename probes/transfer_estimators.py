"""Transferability estimators as probes: for each source model (the models a suite pretrained,
handed over in ``ProbeContext.source_models`` by the caller) and each dataset as target,
extract the source model's penultimate features and source-head probabilities on the target's images and score them
(LogME, LEEP, NCE, H-score; higher = better transfer). The matrix holds distance = -score with
rows = source models, columns = target data; rows of datasets the suite did not pretrain are
NaN, and the diagonal is 0 by convention."""

from __future__ import annotations

import numpy as np
import torch

from bench_core.batches import BatchPrep
from probes.base import register_probe
from probes.estimators import hscore, leep, logme, nce
from probes.model_scoring import ModelScoringOptions, ModelScoringProbe


class EstimatorOptions(ModelScoringOptions):
    shrinkage: bool = False


class _EstimatorProbe(ModelScoringProbe):
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


@register_probe
class LogMEProbe(_EstimatorProbe):
    name = "logme"

    def score(self, features, probs, labels):
        return logme(features, labels)


@register_probe
class LEEPProbe(_EstimatorProbe):
    name = "leep"

    def score(self, features, probs, labels):
        return leep(probs, labels)


@register_probe
class NCEProbe(_EstimatorProbe):
    name = "nce"

    def score(self, features, probs, labels):
        return nce(probs.argmax(axis=1), labels)


@register_probe
class HScoreProbe(_EstimatorProbe):
    name = "hscore"

    def score(self, features, probs, labels):
        return hscore(features, labels, shrinkage=self.opts.shrinkage)
