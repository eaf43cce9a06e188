"""k-NN (Sorkhei, Matsoukas, Fredin Haslum, Konuk, Smith 2025, "k-NN as a Simple and Effective
Estimator of Transferability", TMLR, arXiv:2503.18528): the top-1 accuracy of the weighted
k-NN classifier that self-supervised learning uses to judge features (Wu et al. 2018; DINO,
Caron et al. 2021, ``eval_knn.knn_classifier``), on the source model's features of the target:

    z = f / ||f||_2,   s_ij = z_i . z_j  (cosine similarity),
    vote_i(c) = sum_{j in N_k(i)} exp(s_ij / T) [y_j = c],   yhat_i = argmax_c vote_i(c),
    score = (1/m) sum_i [yhat_i = y_i]   (a fraction in [0, 1]; higher = better transfer),

N_k(i) the k memory samples most similar to query i. The paper scores a held-out target split
against the target's training split (``query_features``/``query_labels``); with one set, as
the probe has (its seeded target sample), every sample is a query against all the others
(leave-one-out). The authors released no code; the classifier follows DINO's (facebookresearch/
dino 7c446df), whose accuracy is in percent (ours is that / 100), and equals it on fixed
features (tests/test_estimators_reference.py). Defaults k = 20, T = 0.07 are DINO's (its paper
reports 20-NN as best); the paper's own k could not be checked, so set k to match it.
Departures (none changes a score where no neighbours tie at the k-th place and no class votes
tie): float64 throughout (DINO runs in float32); leave-one-out needs two samples a class (a
singleton's label has no other example to find); and three rules where DINO's result depends
on the order of the samples or is undefined:

- Neighbours tied at the k-th place share the remaining votes. DINO's torch.topk takes
  whichever of the tied memory samples come first, so on features with many identical rows
  (a saturated model, duplicated images) the score moved with the sample order alone. Here,
  with s_k the k-th largest similarity of query i, the a memory samples above s_k count fully
  and each of the t samples tied with s_k counts (k - a) / t: the k votes are shared equally
  among the tied set, which is what choosing k - a of them uniformly at random gives in
  expectation, whatever the order. Similarities within TIE_TOL = 1e-9 (absolute: the vectors
  have unit norm, and a dot product's rounding error scales with ||z_i|| ||z_j|| = 1, about
  D * 1e-16) count as tied, so that identical rows, whose similarities a matrix product may
  round differently at different positions, always tie.
- Class votes within a relative VOTE_TOL = 1e-9 of the largest are tied (the same rounding),
  and a tie goes to the lowest class index: the order of the sorted label values, not of the
  samples (DINO's torch.sort leaves it unspecified).
- A feature row of zeros is refused: it has no direction, so its cosine similarity to any
  other row is undefined (DINO's normalisation makes it 0 to everything, a convention that
  moves the score). Rows are normalised by their exact norm (DINO floors it at 1e-12).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from probes.base import ProbeError, register_probe
from probes.estimators.base import EstimatorOptions, EstimatorProbe, check_labelled


TIE_TOL = 1e-9  # similarities closer than this tie (absolute, on unit vectors)
VOTE_TOL = 1e-9  # class votes within this fraction of the largest tie


def _normalise(f: np.ndarray, rows: str) -> np.ndarray:
    """The rows of ``f`` scaled to unit length; all-zero rows are refused (no direction)."""
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise ProbeError(f"k-NN: {len(zero)} of the {len(f)} {rows} are all zero "
                         f"(rows {zero[:5].tolist()}{' ...' if len(zero) > 5 else ''}); a zero "
                         "vector has no direction, so its cosine similarity is undefined.",
                         "Leave those images out of the target (blank images?), or check the "
                         "source model: a layer that outputs zeros for them.")
    return f / norms


def _votes(sim: np.ndarray, mem_y: np.ndarray, n_classes: int, k: int, temperature: float
           ) -> np.ndarray:
    """Each query row's class votes from its similarities ``sim`` to the memory: the samples
    above the k-th similarity count fully, those tied with it share the remaining votes."""
    kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1:k]
    above = sim > kth + TIE_TOL
    tied = ~above & (sim >= kth - TIE_TOL)
    share = (k - above.sum(axis=1, keepdims=True)) / tied.sum(axis=1, keepdims=True)
    count = np.where(above, 1.0, np.where(tied, share, 0.0))
    rows, cols = np.nonzero(count)
    top = sim.max(axis=1)  # argmax-invariant shift of the weights exp(s / T)
    w = count[rows, cols] * np.exp((sim[rows, cols] - top[rows]) / temperature)
    return np.bincount(rows * n_classes + mem_y[cols], weights=w,
                       minlength=len(sim) * n_classes).reshape(len(sim), n_classes)


def _predict(memory: np.ndarray, mem_y: np.ndarray, query: np.ndarray, n_classes: int, k: int,
             temperature: float, leave_one_out: bool, chunk: int = 1024) -> np.ndarray:
    """Weighted-vote predictions (class indices) for the rows of ``query``; tied votes go to
    the lowest class index."""
    preds = np.empty(len(query), dtype=np.int64)
    for s in range(0, len(query), chunk):
        sim = query[s:s + chunk] @ memory.T
        if leave_one_out:  # query row i is memory row s + i: never its own neighbour
            sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        votes = _votes(sim, mem_y, n_classes, k, temperature)
        best = votes.max(axis=1, keepdims=True)
        preds[s:s + chunk] = np.argmax(votes >= best * (1.0 - VOTE_TOL), axis=1)
    return preds


def _with_query(features: np.ndarray, labels: np.ndarray, query_features: np.ndarray,
                query_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Memory and query sets checked, labels indexed over the union of both label sets."""
    f, _, _ = check_labelled(features, labels, "k-NN (memory)")
    q = np.asarray(query_features, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != f.shape[1]:
        raise ProbeError(f"k-NN: query features {q.shape} do not match memory features "
                         f"{f.shape}.", "Pass an (m, D) query matrix with the memory's D columns.")
    _, y_all, _ = check_labelled(np.vstack([f, q]), np.concatenate(
        [np.asarray(labels), np.asarray(query_labels)]), "k-NN (query)")
    return f, y_all[:len(f)], q, y_all[len(f):]


def knn(features: np.ndarray, labels: np.ndarray, k: int = 20, temperature: float = 0.07,
        query_features: np.ndarray | None = None, query_labels: np.ndarray | None = None
        ) -> float:
    """Weighted k-NN top-1 accuracy of the labels from cosine neighbours in ``features``.

    ``features``/``labels`` are the memory (the target training split). Without a query set the
    score is leave-one-out over them (needs k <= n - 1 and two samples a class); with one, the
    query samples are classified against the memory (k <= n).
    """
    if (query_features is None) != (query_labels is None):
        raise ProbeError("k-NN: query_features was given without query_labels, or the reverse.",
                         "Pass both, or neither (leave-one-out).")
    loo = query_features is None
    if loo:
        f, y, _ = check_labelled(features, labels, "k-NN (leave-one-out)", min_per_class=2)
        q, qy = f, y
    else:
        f, y, q, qy = _with_query(features, labels, query_features, query_labels)
    n_mem = len(f) - (1 if loo else 0)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_mem:
        raise ProbeError(f"k-NN: k must be an integer in [1, {n_mem}] for {len(f)} memory "
                         f"samples{' (leave-one-out)' if loo else ''}, got {k!r}.",
                         "Pass a smaller k (--option k=N), or sample more of the target.")
    if not float(temperature) > 0:
        raise ProbeError(f"k-NN: temperature must be > 0, got {temperature}.",
                         "Pass e.g. DINO's 0.07.")
    z = _normalise(f, "feature rows" if loo else "memory feature rows")
    q = z if loo else _normalise(q, "query feature rows")
    preds = _predict(z, y, q, int(max(y.max(), qy.max())) + 1, int(k), float(temperature), loo)
    return float(np.mean(preds == qy))


class KNNOptions(EstimatorOptions):
    k: int = Field(20, ge=1)  # neighbours (DINO's 20)
    temperature: float = Field(0.07, gt=0)  # vote weight exp(similarity / temperature)


@register_probe
class KNNProbe(EstimatorProbe):
    """k-NN (Sorkhei et al. 2025): leave-one-out weighted k-NN accuracy on the features."""

    name = "knn"
    min_per_class = 2
    Options = KNNOptions

    def check_sample(self, record, labels) -> None:
        """Also: leave-one-out needs k neighbours besides each image of the sample."""
        super().check_sample(record, labels)
        n = len(labels)
        if self.opts.k > n - 1:
            raise ProbeError(f"knn: k={self.opts.k} neighbours need at least {self.opts.k + 1} "
                             f"images in the sample of '{record.name}', which has {n}.",
                             f"Lower --option k (at most {n - 1}), or leave the dataset out.")

    def score(self, features, probs, labels):
        return knn(features, labels, k=self.opts.k, temperature=self.opts.temperature)
