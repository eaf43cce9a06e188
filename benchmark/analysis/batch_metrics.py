"""The ranking metrics computed in batch over many rows at once (every permutation of a
target's candidates for the permutation null, thousands of simulated targets for the noise
ceiling and the coverage benchmark): the same figures as
:func:`benchmark.analysis.ranking.ranking_agreement` (Kendall tau-b, scipy's weighted tau with
``rank=None``, Spearman rho on average ranks, top-1 regret; ties as scipy handles them; NaN
predictions ranked last, a row with no prediction at all undefined)."""

from __future__ import annotations

import numpy as np

from benchmark.analysis.ranking import METRICS

_PAIR_BUDGET = 2_000_000  # rows * sources**2 per batch of pairwise arrays


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
    (NaN where that gives None, a row whose masked predictions are all NaN included).
    """
    shape = x.shape[:-1]
    s = x.shape[-1]
    x2, y2, m2 = (a.reshape(-1, s) for a in (x, y, mask))
    scored = (m2 & ~np.isnan(y2)).any(-1)
    y2 = _nan_last(y2, m2)
    out = {k: np.full(len(x2), np.nan) for k in METRICS}
    for sl in _chunks(len(x2), s):
        part = _agreement_rows(x2[sl], y2[sl], m2[sl])
        for k in METRICS:
            out[k][sl] = part[k]
    result = {k: np.where(scored, v, np.nan).reshape(shape) for k, v in out.items()}
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
