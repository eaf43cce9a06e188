"""SFDA (Shao, Zhao, Ge, Ding, Song, Shan 2022, "Not All Models Are Equal: Predicting Model
Transferability in a Self-challenging Fisher Space", ECCV; reference TencentARC/SFDA 3b7edf7,
``metrics.SFDA_Score``, which it equals on fixed features: tests/test_estimators_reference.py).

1. Regularised Fisher space. With priors p_c = n_c / n, class means mu_c and the within-class
   scatter S_w = (1/n) sum_i (x_i - mu_{y_i})(x_i - mu_{y_i})^T, the regularisation strength is
   lambda = max(exp(-5 a), 1e-10), a = the largest eigenvalue of S_w as estimated by 3 rounds of
   two power steps from x0 = S_w 1 (the reference's estimate, kept so scores match), and
   S_lambda = (1 - lambda) S_w + lambda tr(S_w) / D I. The Fisher projection V solves
   S_b v = e S_lambda v (S_b = S_t,lambda - S_lambda) with V^T S_lambda V = I; the reference
   keeps all D directions, so its classifier coefficients mu V V^T equal mu S_lambda^-1, which
   we compute directly (Cholesky solve, no eigendecomposition; same numbers to rounding). The
   posterior is p(c | x) = softmax_c(x . w_c - w_c . mu_c / 2 + log p_c), w_c = S_lambda^-1 mu_c.
2. Self-challenging (ConfMix). q_i = softmax(p(. | x_i))_{y_i} (a second softmax over the
   probabilities, softening them), and x_i <- q_i x_i + (1 - q_i) mbar_{y_i}, mbar_c the plain
   average of the other classes' means (of the unmixed data).
3. Score = (1/n) sum_i p'(y_i | x'_i) from step 1 refitted on the mixed data with the same
   lambda (no log, as in the reference). Higher = better transfer.

A class with one sample is scored as the reference scores it: that sample is its class mean,
so it adds nothing to S_w (the reference's per-class np.cov(bias=1) of one sample is 0), and
it takes part in the posteriors, the mixing and the mean like any other sample.

Departures: labels need not be 0..K-1 (the reference indexes probabilities by label value);
features with no within-class scatter at all (every class one sample, or constant within
classes) are refused (the reference's power estimate divides 0 by 0 there: NaN); the caller's
array is not modified (the reference mixes its input in place); ``shrinkage`` may fix lambda
instead (not in the reference; None, the default, is the reference's adaptive lambda).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from scipy.linalg import cho_factor, cho_solve

from probes.base import ProbeError, register_probe
from probes.estimators.base import EstimatorOptions, EstimatorProbe, check_labelled


def _power_estimate(a: np.ndarray, rounds: int = 3) -> float:
    """The reference's estimate of the largest eigenvalue of the symmetric PSD matrix ``a``."""
    x = a.sum(axis=1)
    for _ in range(rounds):
        u = a @ x
        u /= np.linalg.norm(u)
        x = a @ u
        x /= np.linalg.norm(x)
    return float(x @ a @ u)


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _fisher_posteriors(x: np.ndarray, y: np.ndarray, k: int, lam: float | None
                       ) -> tuple[np.ndarray, float, np.ndarray]:
    """Posteriors p(c | x_i) of the shrunk Fisher classifier, lambda used, class means."""
    counts = np.bincount(y, minlength=k)
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, y, x)
    means /= counts[:, None]
    centred = x - means[y]
    s_w = centred.T @ centred / len(x)
    if not np.trace(s_w) > 0:
        raise ProbeError("SFDA: the features do not vary within classes (zero within-class "
                         "scatter).", "Check the features; SFDA needs within-class variation.")
    if lam is None:
        lam = max(float(np.exp(-5.0 * _power_estimate(s_w))), 1e-10)
    s_lam = (1.0 - lam) * s_w
    s_lam.flat[:: s_w.shape[0] + 1] += lam * np.trace(s_w) / s_w.shape[0]
    w = cho_solve(cho_factor(s_lam), means.T)  # (D, K): S_lambda^-1 mu_c
    logits = x @ w - 0.5 * np.einsum("kd,dk->k", means, w) + np.log(counts / len(x))
    return _softmax(logits), lam, means


def sfda(features: np.ndarray, labels: np.ndarray, shrinkage: float | None = None) -> float:
    """SFDA score of target ``labels`` under source-model ``features`` (see the module
    docstring). ``shrinkage`` fixes lambda in [0, 1] instead of the reference's adaptive one."""
    x, y, classes = check_labelled(features, labels, "SFDA")
    if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
        raise ProbeError(f"SFDA: shrinkage must be in [0, 1] or None, got {shrinkage}.",
                         "Leave it unset for the reference's adaptive lambda.")
    k, rows = len(classes), np.arange(len(y))
    try:
        probs, lam, means = _fisher_posteriors(x, y, k, shrinkage)
        q = _softmax(probs)[rows, y][:, None]
        others = (means.sum(axis=0) - means) / (k - 1)
        probs, _, _ = _fisher_posteriors(q * x + (1.0 - q) * others[y], y, k, lam)
    except np.linalg.LinAlgError as err:
        raise ProbeError("SFDA: the regularised within-class scatter is singular (constant "
                         "features?).", "Drop constant columns or pass shrinkage > 0.") from err
    return float(probs[rows, y].mean())


class SFDAOptions(EstimatorOptions):
    # lambda of the Fisher space fixed in [0, 1]; None: the reference's adaptive lambda
    shrinkage: float | None = Field(None, ge=0.0, le=1.0)


@register_probe
class SFDAProbe(EstimatorProbe):
    """SFDA (Shao et al. 2022): true-class posterior of a self-challenging Fisher classifier."""

    name = "sfda"
    Options = SFDAOptions

    def score(self, features, probs, labels):
        return sfda(features, labels, shrinkage=self.opts.shrinkage)
