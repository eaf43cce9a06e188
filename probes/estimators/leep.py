"""LEEP (Nguyen et al. 2020, "LEEP: A New Measure to Evaluate Transferability of Learned
Representations"): (1/n) sum_i log sum_z P(y_i | z) theta(x_i)_z, with P(y | z) from the
empirical joint of target labels and source-head probabilities theta."""

from __future__ import annotations

import numpy as np

from probes.base import ProbeError, register_probe
from probes.estimators.base import EstimatorProbe, check_inputs


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    theta, y = check_inputs(source_probs, labels)
    if np.any(theta < 0) or not np.allclose(theta.sum(1), 1, atol=1e-4):
        raise ProbeError("LEEP needs the source head's probabilities (rows summing to 1).",
                         "Pass softmax outputs, not logits or features.")
    classes, y_idx = np.unique(y, return_inverse=True)
    joint = np.zeros((len(classes), theta.shape[1]))
    np.add.at(joint, y_idx, theta)
    joint /= len(y)
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-12)  # P(y | z)
    eep = (theta * cond[y_idx]).sum(axis=1)
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


@register_probe
class LEEPProbe(EstimatorProbe):
    """LEEP (Nguyen et al. 2020): expected empirical prediction of the source head."""

    name = "leep"

    def score(self, features, probs, labels):
        return leep(probs, labels)
