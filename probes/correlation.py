"""Transferability against probe distances (van den Brandt et al. 2021, Fig. 4): Spearman rho with its p-value,
Kendall tau and Pearson r, pooled over all source -> target pairs and per target. With a handful
of pairs (a target's 4 sources) the p-values come from a permutation test, exact where the
pairings can be enumerated (``p_method`` says which), not from the large-sample formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr

# van den Brandt et al. 2021 with its public code (anchors.md): a Pearson fit labelled "rho" in their figures
PAPER = {"task2vec": {"r": -0.11, "p": 0.61}, "expert": {"r": 0.24, "p": 0.26}}


def pair_distances(transfers: pd.DataFrame, names: list[str], matrix: np.ndarray) -> pd.DataFrame:
    """``transfers`` (source, target, transferability_mean) joined with matrix[source][target];
    pairs whose source or target the probe did not cover are dropped."""
    index = {n: i for i, n in enumerate(names)}
    rows = []
    for _, r in transfers.iterrows():
        if r["source"] in index and r["target"] in index and r["source"] != r["target"]:
            rows.append({**r.to_dict(),
                         "distance": float(matrix[index[r["source"]], index[r["target"]]])})
    return pd.DataFrame(rows)


EXACT_MAX_N = 8        # n! permutations enumerated (8! = 40,320)
PERMUTATION_MAX_N = 10  # up to here a seeded Monte Carlo permutation test; beyond, scipy's
N_RESAMPLES = 99_999    # large-sample p (anchors: spearmanr's p is asymptotic)


def _pearson(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis) / np.sqrt((a * a).sum(axis) * (b * b).sum(axis))


def _spearman(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return _pearson(rankdata(a, axis=axis), rankdata(b, axis=axis), axis)


def _kendall(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Kendall tau-b along ``axis``."""
    a, b = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
    sa = np.sign(a[..., :, None] - a[..., None, :])
    sb = np.sign(b[..., :, None] - b[..., None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sa * sb).sum((-2, -1)) / np.sqrt((sa * sa).sum((-2, -1)) * (sb * sb).sum((-2, -1)))


STATISTICS = {"spearman": _spearman, "kendall": _kendall, "pearson": _pearson}


def small_sample_p(x: np.ndarray, y: np.ndarray, statistic: str) -> tuple[float, str]:
    """Two-sided p of a correlation by a permutation test over the pairings of ``y`` with
    ``x``: exact over all n! pairings for n <= EXACT_MAX_N (at n = 4 a perfect rho has
    p = 2/24 = 0.083, where the large-sample formula prints 0.000), Monte Carlo (seeded, the
    observed pairing counted once) up to PERMUTATION_MAX_N. Returns (p, 'exact' |
    'permutation')."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    stat = STATISTICS[statistic]
    observed = abs(float(stat(x, y)))
    n = len(x)
    if n <= EXACT_MAX_N:
        perms = np.array(list(itertools.permutations(range(n))))
        null = np.abs(stat(np.broadcast_to(x, perms.shape), y[perms]))
        return float(np.mean(null >= observed - 1e-12)), "exact"
    perms = np.argsort(np.random.default_rng(0).random((N_RESAMPLES, n)), axis=1)
    null = np.abs(stat(np.broadcast_to(x, perms.shape), y[perms]))
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + N_RESAMPLES)), "permutation"


def _stats(x: np.ndarray, y: np.ndarray) -> dict[str, float | str | None]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman_rho": None, "spearman_p": None, "kendall_tau": None,
                "kendall_p": None, "pearson_r": None, "pearson_p": None, "p_method": None}
    s, k, p = spearmanr(x, y), kendalltau(x, y), pearsonr(x, y)
    out = {"spearman_rho": float(s.statistic), "spearman_p": float(s.pvalue),
           "kendall_tau": float(k.statistic), "kendall_p": float(k.pvalue),
           "pearson_r": float(p.statistic), "pearson_p": float(p.pvalue),
           "p_method": "asymptotic"}
    if len(x) <= PERMUTATION_MAX_N:
        for name in STATISTICS:
            out[f"{name}_p"], out["p_method"] = small_sample_p(x, y, name)
    return out


def _joined(transfers: pd.DataFrame, distances) -> pd.DataFrame:
    """``transfers`` joined with a probe's distances: (names, matrix) or a table of pairs
    (source, target, distance); self pairs and pairs the probe did not cover are dropped."""
    if isinstance(distances, tuple):
        return pair_distances(transfers, *distances)
    pairs = transfers.merge(distances[["source", "target", "distance"]], on=["source", "target"])
    return pairs[pairs["source"] != pairs["target"]].dropna(subset=["distance"]).reset_index(
        drop=True)


def correlations(transfers: pd.DataFrame, probes: dict) -> tuple[pd.DataFrame,
                                                                  dict[str, pd.DataFrame]]:
    """Correlation rows (probe, scope, n, statistics, paper's r) and the joined pairs per probe;
    ``probes``: name -> (names, distance matrix) or a table (source, target, distance)."""
    rows, joined = [], {}
    for method, distances in probes.items():
        pairs = _joined(transfers, distances)
        joined[method] = pairs
        if pairs.empty:
            continue
        scopes = [("pooled", pairs)] + [(t, g) for t, g in pairs.groupby("target")]
        for scope, g in scopes:
            rows.append({"probe": method, "scope": scope, "n": len(g),
                         **_stats(g["distance"].to_numpy(), g["transferability_mean"].to_numpy()),
                         "paper_r": PAPER.get(method, {}).get("r") if scope == "pooled" else None,
                         "paper_p": PAPER.get(method, {}).get("p") if scope == "pooled" else None})
    return pd.DataFrame(rows), joined


def scatter_figure(joined: dict[str, pd.DataFrame]):
    """Fig. 4: transferability against each probe's distance, one panel per probe."""
    panels = [(m, d) for m, d in joined.items() if not d.empty]
    fig = Figure(figsize=(3.4 * max(len(panels), 1), 3.2))
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)
    for ax, (method, data) in zip(axes[0], panels):
        for target, g in data.groupby("target"):
            ax.scatter(g["distance"], g["transferability_mean"], label=target, s=22)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set(xlabel=f"{method} distance", ylabel="transferability (%)", title=method)
    if panels:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig
