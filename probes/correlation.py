"""Transferability against probe distances (van den Brandt et al. 2021, Fig. 4): Spearman rho with its p-value,
Kendall tau and Pearson r, pooled over all source -> target pairs and per target."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import kendalltau, pearsonr, spearmanr

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


def _stats(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman_rho": None, "spearman_p": None, "kendall_tau": None,
                "kendall_p": None, "pearson_r": None, "pearson_p": None}
    s, k, p = spearmanr(x, y), kendalltau(x, y), pearsonr(x, y)
    return {"spearman_rho": float(s.statistic), "spearman_p": float(s.pvalue),
            "kendall_tau": float(k.statistic), "kendall_p": float(k.pvalue),
            "pearson_r": float(p.statistic), "pearson_p": float(p.pvalue)}


def correlations(transfers: pd.DataFrame, probes: dict[str, tuple[list[str], np.ndarray]]
                 ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Correlation rows (probe, scope, n, statistics, paper's r) and the joined pairs per probe."""
    rows, joined = [], {}
    for method, (names, matrix) in probes.items():
        pairs = pair_distances(transfers, names, matrix)
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
