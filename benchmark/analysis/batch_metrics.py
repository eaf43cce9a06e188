"""The results of a suite as arrays over targets x sources x repeats, and the ranking metrics
computed in batch over many (resample, target) rows at once: the same figures as
:func:`benchmark.analysis.ranking.ranking_agreement` (Kendall tau-b, scipy's weighted tau with
``rank=None``, Spearman rho on average ranks, top-1 regret; ties as scipy handles them; NaN
predictions ranked last), fast enough for a thousand bootstrap resamples of every method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.analysis.ranking import METRICS, RESULT_COLUMNS, drop_self, require_columns

_PAIR_BUDGET = 2_000_000  # rows * sources**2 per batch of pairwise arrays


# --- the results as arrays ----------------------------------------------------------------


@dataclass(frozen=True)
class ResultArrays:
    """The results of one suite as arrays over targets x sources x repeat columns.

    ``ref`` is a reference AUC per (target, source) (its first repeat with a value; NaN where
    the pair is no candidate), ``dev`` the AUC of each repeat minus ``ref`` (0 where absent) and
    ``present`` whether that repeat has a value. A truth re-averaged over a draw of repeats is
    ``ref + mean(dev over the drawn repeats)``: when all repeats are equal, ``dev`` is exactly 0
    and every resample reproduces the same truth bit for bit. Repeat columns of a target are the
    repeat ids with a value in that target, in sorted order; ``n_repeats`` counts them.
    """

    targets: list[str]
    sources: list[str]
    ref: np.ndarray        # [T, S]
    dev: np.ndarray        # [T, S, R]
    present: np.ndarray    # [T, S, R] bool
    n_repeats: np.ndarray  # [T]
    candidate: np.ndarray  # [T, S] bool: the pair has at least one AUC

    def truth(self, slots: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Truth per source of each slot: slots [...], counts [..., R] -> [..., S] (NaN: none)."""
        pres = self.present[slots] & (counts[..., None, :] > 0)
        w = np.where(pres, counts[..., None, :], 0)
        den = w.sum(-1)
        num = (w * self.dev[slots]).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.ref[slots] + num / den
        return np.where(den > 0, out, np.nan)

    def full_counts(self, slots: np.ndarray) -> np.ndarray:
        """Every repeat column of each slot's target once."""
        cols = np.arange(self.dev.shape[-1])
        return (cols < self.n_repeats[slots][..., None]).astype(np.int64)


def result_arrays(results: pd.DataFrame, include_self: bool = False) -> ResultArrays:
    """:class:`ResultArrays` of a results table (source, target, repeat, auc).

    Several rows for the same (source, target, repeat) are averaged first. Pairs with no AUC
    are no candidates (as ``truth_table`` drops them); targets and sources are those with at
    least one candidate pair, in sorted order.
    """
    require_columns(results, RESULT_COLUMNS, "results")
    rows = drop_self(results, include_self)
    g = (rows.groupby(["target", "source", "repeat"], sort=True)["auc"].mean()
         .dropna().reset_index())
    if g.empty:  # no pair with an AUC: callers refuse to evaluate nothing
        return ResultArrays([], [], np.zeros((0, 0)), np.zeros((0, 0, 0)),
                            np.zeros((0, 0, 0), dtype=bool), np.zeros(0, dtype=np.int64),
                            np.zeros((0, 0), dtype=bool))
    targets = sorted(g["target"].unique())
    sources = sorted(g["source"].unique())
    t_of = {t: i for i, t in enumerate(targets)}
    s_of = {s: i for i, s in enumerate(sources)}
    g["rep"] = g.groupby("target")["repeat"].rank(method="dense").astype(int) - 1
    n_rep = np.zeros(len(targets), dtype=np.int64)
    for t, part in g.groupby("target"):
        n_rep[t_of[t]] = part["rep"].max() + 1
    r_max = int(n_rep.max()) if len(n_rep) else 0
    values = np.full((len(targets), len(sources), r_max), np.nan)
    ti = g["target"].map(t_of).to_numpy(dtype=np.int64)
    si = g["source"].map(s_of).to_numpy(dtype=np.int64)
    values[ti, si, g["rep"].to_numpy(dtype=np.int64)] = g["auc"].to_numpy(dtype=float)
    present = ~np.isnan(values)
    candidate = present.any(-1)
    first = np.argmax(present, axis=-1)
    ref = np.take_along_axis(values, first[..., None], -1)[..., 0]
    ref = np.where(candidate, ref, np.nan)
    dev = np.where(present, values - ref[..., None], 0.0)
    return ResultArrays(targets, sources, ref, dev, present, n_rep, candidate)


def draw_counts(rng: np.random.Generator, n_repeats: np.ndarray, r_max: int) -> np.ndarray:
    """How often each repeat column is drawn when n_repeats[...] columns are drawn with
    replacement from n_repeats[...]: counts [..., r_max]."""
    n = np.asarray(n_repeats)[..., None]
    u = rng.random(n.shape[:-1] + (r_max,))
    pos = np.floor(u * n).astype(np.int64)
    valid = np.arange(r_max) < n
    onehot = (pos[..., :, None] == np.arange(r_max)) & valid[..., :, None]
    return onehot.sum(-2)


# --- agreement in batch -----------------------------------------------------------------------


def _nan_last(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """NaN scores (inside ``mask``) replaced by a value below every real score of their row."""
    real = mask & ~np.isnan(y)
    low = np.where(real, y, np.inf).min(-1, keepdims=True)
    fill = np.where(np.isinf(low), 0.0, low - 1.0)
    return np.where(mask & np.isnan(y), fill, y)


def _chunks(n_rows: int, n_sources: int):
    step = max(1, _PAIR_BUDGET // max(1, n_sources * n_sources))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def agreement_batch(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """kendall_tau, weighted_tau, spearman_rho, top1_regret and n_sources of each row.

    x: truth [..., S]; y: predictions [..., S] (NaN ranked last); mask: candidates [..., S].
    The same figures as :func:`benchmark.analysis.ranking.ranking_agreement` on the masked entries
    (NaN where that gives None).
    """
    shape = x.shape[:-1]
    s = x.shape[-1]
    x2, y2, m2 = (a.reshape(-1, s) for a in (x, y, mask))
    y2 = _nan_last(y2, m2)
    out = {k: np.full(len(x2), np.nan) for k in METRICS}
    for sl in _chunks(len(x2), s):
        part = _agreement_rows(x2[sl], y2[sl], m2[sl])
        for k in METRICS:
            out[k][sl] = part[k]
    result = {k: v.reshape(shape) for k, v in out.items()}
    result["n_sources"] = mask.sum(-1)
    return result


def _avg_rank(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1-based average ranks among the masked entries of each row."""
    other = mask[:, None, :]
    less = ((v[:, None, :] < v[:, :, None]) & other).sum(-1)
    same = ((v[:, None, :] == v[:, :, None]) & other).sum(-1)
    return less + (same + 1) / 2.0


def _agreement_rows(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    s = x.shape[-1]
    n = mask.sum(-1)
    x0 = np.where(mask, x, 0.0)
    y0 = np.where(mask, y, 0.0)
    i, j = np.triu_indices(s, 1)                      # each unordered pair once
    pair = mask[:, i] & mask[:, j]
    sx = np.sign(x0[:, i] - x0[:, j]) * pair
    sy = np.sign(y0[:, i] - y0[:, j]) * pair
    ax, ay, sxy = np.abs(sx), np.abs(sy), sx * sy
    nx, ny = ax.sum(1), ay.sum(1)
    defined = (n >= 2) & (nx > 0) & (ny > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kendall = np.clip(sxy.sum(1) / np.sqrt(nx * ny), -1.0, 1.0)
        # weighted tau: rank 0 = largest truth, ties by prediction, then by later position
        xa, xb = x0[:, :, None], x0[:, None, :]
        ya, yb = y0[:, :, None], y0[:, None, :]
        later = np.arange(s)[None, :] > np.arange(s)[:, None]
        before = (xb > xa) | ((xb == xa) & ((yb > ya) | ((yb == ya) & later)))
        rank = (before & mask[:, None, :]).sum(-1)
        w = 1.0 / (1.0 + rank)
        wp = (w[:, i] + w[:, j]) * pair
        weighted = np.clip((wp * sxy).sum(1) / np.sqrt((wp * ax).sum(1) * (wp * ay).sum(1)),
                           -1.0, 1.0)
        # spearman: pearson of average ranks over the masked entries
        centre = (n[:, None] + 1) / 2.0
        rx = np.where(mask, _avg_rank(x0, mask) - centre, 0.0)
        ry = np.where(mask, _avg_rank(y0, mask) - centre, 0.0)
        rho = np.clip((rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1)), -1, 1)
        # top-1 regret: mean gap to the best over the sources tied at the predicted top
        top = mask & (y0 == np.where(mask, y0, -np.inf).max(-1, keepdims=True))
        best = np.where(mask, x0, -np.inf).max(-1, keepdims=True)
        regret = np.where(top, best - x0, 0.0).sum(-1) / top.sum(-1)
    nan = np.nan
    return {"kendall_tau": np.where(defined, kendall, nan),
            "weighted_tau": np.where(defined, weighted, nan),
            "spearman_rho": np.where(defined, rho, nan),
            "top1_regret": np.where(n >= 2, regret, nan)}


def kendall_batch(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row over its masked entries (NaN: fewer than 2 or a constant
    side). Identical rankings give exactly 1 (the counts are integers)."""
    shape, s = x.shape[:-1], x.shape[-1]
    x2, y2, m2 = (a.reshape(-1, s) for a in (x, y, mask))
    out = np.full(len(x2), np.nan)
    i, j = np.triu_indices(s, 1)
    for sl in _chunks(len(x2), s):
        m = m2[sl]
        x0, y0 = np.where(m, x2[sl], 0.0), np.where(m, y2[sl], 0.0)
        pair = m[:, i] & m[:, j]
        sx = np.sign(x0[:, i] - x0[:, j]) * pair
        sy = np.sign(y0[:, i] - y0[:, j]) * pair
        nx, ny = np.abs(sx).sum(1), np.abs(sy).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = np.clip((sx * sy).sum(1) / np.sqrt(nx * ny), -1.0, 1.0)
        out[sl] = np.where((nx > 0) & (ny > 0), tau, np.nan)
    return out.reshape(shape)


def random_batch(x: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The exact expectation of a uniformly random ranking (see ``random_expectation``)."""
    n = mask.sum(-1)
    best = np.where(mask, x, -np.inf).max(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        regret = np.where(mask, best - np.where(mask, x, 0.0), 0.0).sum(-1) / n
    zero = np.where(n >= 2, 0.0, np.nan)
    return {"kendall_tau": zero, "weighted_tau": zero, "spearman_rho": zero,
            "top1_regret": np.where(n >= 2, regret, np.nan), "n_sources": n}


def best_on_average_batch(truth: np.ndarray, slots: np.ndarray,
                          candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best-on-average scores of each slot from the truths of the other slots.

    truth [B, K, S], slots [B, K]: the score of source s in slot k is the mean of truth[b, j, s]
    over the slots j whose target differs from slot k's (NaN where none has a value). Returns
    scores and the candidate mask (the sources with a result for the slot's target).
    """
    other = (slots[:, :, None] != slots[:, None, :]).astype(float)
    has = ~np.isnan(truth)
    num = np.einsum("bkj,bjs->bks", other, np.where(has, truth, 0.0))
    cnt = np.einsum("bkj,bjs->bks", other, has.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(cnt > 0, num / cnt, np.nan)
    return scores, candidate[slots]
