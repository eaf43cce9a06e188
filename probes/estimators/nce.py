"""NCE (Tran et al. 2019, "Transferability and Hardness of Supervised Classification Tasks"):
-H(Y | Z) with Z the source head's argmax labels (higher is better)."""

from __future__ import annotations

import numpy as np

from probes.base import register_probe
from probes.estimators.base import EstimatorProbe, check_inputs


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(source_labels)
    _, y = check_inputs(z.reshape(-1, 1).astype(float), labels)
    _, zi = np.unique(z, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    joint = np.zeros((zi.max() + 1, yi.max() + 1))
    np.add.at(joint, (zi, yi), 1.0)
    joint /= len(y)
    pz = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(joint > 0, joint * np.log(joint / pz), 0.0)
    return float(cond.sum())  # = -H(Y | Z)


@register_probe
class NCEProbe(EstimatorProbe):
    """NCE (Tran et al. 2019): negative conditional entropy of target given source labels."""

    name = "nce"

    def score(self, features, probs, labels):
        return nce(probs.argmax(axis=1), labels)
