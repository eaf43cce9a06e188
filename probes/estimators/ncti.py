"""NCTI (Wang, Luo, Zheng, Huang, Baktashmotlagh 2023, "How Far Pre-trained Models Are from
Neural Collapse on the Target Dataset Informs their Transferability", ICCV; reference
BUserName/NCTI b18d395, ``metrics.NCTI_Score`` and the normalisation in
``evaluate_metric_group1_cpu.py``, which it equals on fixed features:
tests/test_estimators_reference.py).

Per model (``ncti_components``): X_p = the target features reduced by PCA to q = 64 components;
lambda = max(exp(-sum of the 32 largest PCA variances), 1e-10); an LDA (scikit-learn's, solver
'eigen' with shrinkage lambda, or solver 'svd' when lambda hits the 1e-10 floor) is fitted on
(X_p, y); Z = its projection (K - 1 columns) centred over samples; P = its posteriors. Then
    S_seli = ||Z||_*                          (nuclear norm: closeness to a simplex geometry),
    S_ncc  = (1/n) sum_i P[i, y_i]            (nearest-centre classifiability),
    S_vc   = log sum_c ||P[y = c]||_*         (within-class variability; lower = collapsed).
NCTI is defined across the M candidate models for one target (``ncti_scores``): each component
is min-max normalised over the M models and NCTI_m = S_ncc' + S_seli' - S_vc', in [-1, 2].
``ncti`` gives one model's score against the components of the other candidates (``pool``).
The probe pools, per target column, every source model it scores on that target (all rows but
the target's own model); ``score_models`` (``bench recommend``) pools all its candidates.

A class with one sample is scored as the reference scores it: scikit-learn's LDA gives it a
zero class covariance (its one sample is its mean) weighted by its prior, its posterior row
enters S_ncc, and its block of P, one row, adds that row's length to S_vc. The LDA needs more
samples than classes (scikit-learn raises otherwise, as the reference does; here a ProbeError).

Departures: q = min(64, n, D) (the reference's PCA raises when n or D < 64); PCA uses the exact
'full' SVD (the reference's 'auto' picks randomized SVD without a seed when max(n, D) > 500 and
64 < 0.8 min(n, D), so its scores then vary run to run by about that solver's error, < 1% on
the recorded case); labels need not be 0..K-1; a component equal across the pool normalises to
0 (the reference divides 0 by 0: NaN), so a pool of one model, which has nothing to be ranked
against, scores 0.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from probes.base import ProbeError, register_probe
from probes.estimators.base import EstimatorOptions, EstimatorProbe, check_labelled

COMPONENTS = ("S_seli", "S_ncc", "S_vc")


def ncti_components(features: np.ndarray, labels: np.ndarray, n_components: int = 64,
                    n_shrink: int = 32) -> np.ndarray:
    """[S_seli, S_ncc, S_vc] of one model's target features (see the module docstring)."""
    f, y, classes = check_labelled(features, labels, "NCTI")
    if n_components < 1 or n_shrink < 1:
        raise ProbeError(f"NCTI: n_components ({n_components}) and n_shrink ({n_shrink}) must "
                         "be >= 1.", "Leave them at the reference's 64 and 32.")
    if len(y) <= len(classes):
        raise ProbeError(f"NCTI: its LDA needs more samples than classes; {len(y)} samples of "
                         f"{len(classes)} classes.", "Sample more of the target (max_samples).")
    pca = PCA(n_components=min(n_components, *f.shape), svd_solver="full")
    x = pca.fit_transform(f)
    lam = max(float(np.exp(-pca.explained_variance_[:n_shrink].sum())), 1e-10)
    lda = (LinearDiscriminantAnalysis(solver="svd") if lam == 1e-10 else
           LinearDiscriminantAnalysis(solver="eigen", shrinkage=lam))
    z = lda.fit_transform(x, y)
    s_seli = np.linalg.norm(z - z.mean(axis=0), ord="nuc")
    p = lda.predict_proba(x)
    s_ncc = p[np.arange(len(y)), y].mean()
    s_vc = np.log(sum(np.linalg.norm(p[y == c], ord="nuc") for c in range(len(classes))))
    return np.array([s_seli, s_ncc, s_vc], dtype=np.float64)


def ncti_scores(components: np.ndarray) -> np.ndarray:
    """NCTI of M >= 1 candidate models from their (M, 3) components [S_seli, S_ncc, S_vc] on
    one target. A component equal across the models normalises to 0 (one model scores 0)."""
    c = np.asarray(components, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 3 or len(c) < 1:
        raise ProbeError(f"NCTI: components {c.shape} are not (M >= 1, 3).",
                         "Pass the ncti_components of the candidate models for one target.")
    if not np.all(np.isfinite(c)):
        raise ProbeError("NCTI: the components contain NaN or inf.",
                         "Recompute them with ncti_components on finite features.")
    span = c.max(axis=0) - c.min(axis=0)
    z = (c - c.min(axis=0)) / np.where(span > 0, span, 1.0)
    return z[:, 0] + z[:, 1] - z[:, 2]


def ncti(features: np.ndarray, labels: np.ndarray, pool: np.ndarray | None,
         n_components: int = 64, n_shrink: int = 32) -> float:
    """NCTI of one model among candidates: ``pool`` (M - 1, 3) holds the other candidates'
    ``ncti_components`` on the same target data (required: NCTI ranks a set of models)."""
    if pool is None:
        raise ProbeError("NCTI is defined relative to a set of candidate models; no pool given.",
                         "Pass pool= the ncti_components(...) of the other models on the same "
                         "target.")
    own = ncti_components(features, labels, n_components, n_shrink)
    return float(ncti_scores(np.vstack([own, np.reshape(pool, (-1, 3))]))[0])


class NCTIOptions(EstimatorOptions):
    n_components: int = Field(64, ge=1)  # PCA components q (at most n and D)
    n_shrink: int = Field(32, ge=1)  # PCA variances summed for the LDA shrinkage


@register_probe
class NCTIProbe(EstimatorProbe):
    """NCTI (Wang et al. 2023): distance from neural collapse, ranked over the models scored."""

    name = "ncti"
    Options = NCTIOptions

    def score(self, features, probs, labels):
        """One model's [S_seli, S_ncc, S_vc]: NCTI itself needs the pool (:meth:`pool_scores`)."""
        return ncti_components(features, labels, self.opts.n_components, self.opts.n_shrink)

    def score_pair(self, model, images, labels, record, prep) -> tuple[np.ndarray, list[float]]:
        components, _ = super().score_pair(model, images, labels, record, prep)
        return components, components.tolist()

    def pool_scores(self, raw):
        names = list(raw)
        scores = ncti_scores(np.stack([raw[n] for n in names])) if names else []
        return {n: float(s) for n, s in zip(names, scores)}

    def result_details(self, kept):
        return {"ncti_components": kept, "ncti_component_names": list(COMPONENTS)}
