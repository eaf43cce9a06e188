"""H-score (Bao et al. 2019, "An Information-Theoretic Approach to Transferability in Task
Transfer Learning"): tr(cov(F)^-1 cov(E[F | y])). With ``shrinkage`` it is the regularized
H-score of Ibrahim et al. (2021): tr(cov_a(F)^-1 (1 - a) cov(E[F | y])), cov_a the Ledoit-Wolf
covariance with its estimated shrinkage a (scikit-learn's), as in their paper and
Transfer-Learning-Library's HScoreR; cov(E[F | y]) keeps the n - 1 normalisation of both."""

from __future__ import annotations

import numpy as np
from sklearn.covariance import LedoitWolf

from probes.base import register_probe
from probes.estimators.base import EstimatorOptions, EstimatorProbe, check_inputs


def hscore(features: np.ndarray, labels: np.ndarray, shrinkage: bool = False) -> float:
    f, y = check_inputs(features, labels)
    f = f - f.mean(axis=0)
    class_means = np.zeros_like(f)
    for c in np.unique(y):
        class_means[y == c] = f[y == c].mean(axis=0)
    cov_between = np.cov(class_means, rowvar=False)
    if shrinkage:
        lw = LedoitWolf(assume_centered=True).fit(f)
        cov, cov_between = lw.covariance_, (1.0 - lw.shrinkage_) * cov_between
    else:
        cov = np.cov(f, rowvar=False)
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-15) @ cov_between))


class HScoreOptions(EstimatorOptions):
    shrinkage: bool = False


@register_probe
class HScoreProbe(EstimatorProbe):
    """H-score (Bao et al. 2019), optionally regularized (Ibrahim et al. 2021)."""

    name = "hscore"
    Options = HScoreOptions

    def score(self, features, probs, labels):
        return hscore(features, labels, shrinkage=self.opts.shrinkage)
