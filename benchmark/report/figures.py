"""The report's figures: Fig. 3 of van den Brandt et al. 2021 (AUC per source and target), AUC per
target against the scratch baseline, transferability against each probe's distance with its
correlation, the generality sweep, the distribution-shift plot, sample images of a dataset.
Matplotlib's object-oriented ``Figure`` (no pyplot, no backend switch: importing this changes
nothing global); functions return figures, :func:`png_data_uri` embeds them."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark.analysis.shift_stats import clopper_pearson, counts, line_band, probit


def png_data_uri(fig: Figure, dpi: int = 110) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (the page needs no other file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _grid(n: int, ncols: int, width: float, height: float):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def auc_per_target_figure(table: pd.DataFrame):
    """One panel per target: each source's mean test AUC with its spread (std over folds and
    repeats) as error bars, best at the top; the scratch baseline as a dashed line and band."""
    plain = table[table["kind"] != "freeze"]
    targets = list(dict.fromkeys(plain["target"]))
    n_rows = max(int(plain.groupby("target").size().max()), 1) if len(plain) else 1
    fig, axes = _grid(len(targets), 2, 5.2, 0.45 * n_rows + 1.2)
    for ax, target in zip(axes, targets):
        rows = plain[plain["target"] == target].sort_values("auc_mean")
        colors = ["#9e9e9e" if k == "scratch" else "#1f77b4" for k in rows["kind"]]
        ax.barh(rows["source"], rows["auc_mean"], xerr=rows["auc_std"].fillna(0), color=colors,
                capsize=3, height=0.6)
        scratch = rows[rows["kind"] == "scratch"]
        if len(scratch):
            m, s = float(scratch["auc_mean"].iloc[0]), float(scratch["auc_std"].fillna(0).iloc[0])
            ax.axvline(m, color="#555", ls="--", lw=1)
            ax.axvspan(m - s, m + s, color="#bbb", alpha=0.3, lw=0)
        low = float((rows["auc_mean"] - rows["auc_std"].fillna(0)).min())
        ax.set_xlim(max(0.0, min(low - 0.02, 0.95)), 1.0)
        ax.set(title=target, xlabel="test AUC (mean, error bar: std)")
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def probe_scatter_figure(scatter: dict[str, pd.DataFrame], corr: pd.DataFrame | None):
    """One panel per probe: each pair's transferability (Eq. 1, mean) against the probe's
    distance, coloured by target, the pooled Spearman rho and its p-value in the title."""
    panels = [(m, d) for m, d in scatter.items() if not d.empty]
    fig, axes = _grid(len(panels), 3, 3.6, 3.1)
    pooled = {} if corr is None else {r["probe"]: r for _, r in
                                      corr[corr["scope"] == "pooled"].iterrows()}
    targets = sorted({t for _, d in panels for t in d["target"]})
    colors = {t: colormaps["tab10"](i % 10) for i, t in enumerate(targets)}
    for ax, (method, data) in zip(axes, panels):
        for target, g in data.groupby("target"):
            ax.scatter(g["distance"], g["transferability_mean"], s=24, color=colors[target],
                       label=target)
        ax.axhline(0, color="grey", lw=0.6)
        row = pooled.get(method)
        rho = row["spearman_rho"] if row is not None else None
        title = method if rho is None or pd.isna(rho) else \
            f"{method}: rho {rho:+.2f} (p {row['spearman_p']:.2g}, n {int(row['n'])})"
        ax.set(title=title, xlabel="distance (lower: more similar)",
               ylabel="transferability (%)")
        ax.title.set_fontsize(9)
    if panels:
        handles = [Line2D([], [], marker="o", ls="", color=colors[t]) for t in targets]
        fig.legend(handles, targets, loc="lower center", ncol=min(len(targets), 4), fontsize=8,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def generality_figure(table: pd.DataFrame):
    """Seed 000's sweep: generality (AUC with all but the last k layers frozen / scratch AUC)
    against k, one line per source -> target."""
    freeze = table[(table["kind"] == "freeze") & table["generality_mean"].notna()]
    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.add_subplot()
    for (source, target), g in freeze.groupby(["source", "target"]):
        g = g.sort_values("k")
        ax.plot(g["k"], g["generality_mean"], marker="o", label=f"{source} -> {target}")
    ax.axhline(1.0, color="grey", ls="--", lw=0.8)
    ax.set_xticks(sorted({int(k) for k in freeze["k"]}))
    ax.set(xlabel="k (trainable last layers; the rest frozen)",
           ylabel="generality (AUC / scratch AUC)", title="Generality of the source's layers")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def sample_grid_figure(images: np.ndarray, labels: np.ndarray, classes: list[str],
                       per_class: int = 6, max_classes: int = 10, seed: int = 0) -> Figure:
    """A few images of each class (rows), drawn with a fixed seed; ``images`` uint8 (N, C, H,
    W). Multilabel or unlabelled data: random images without rows per class. The images are
    laid out as one mosaic drawn once (an axes per image took about a second per dataset)."""
    rng = np.random.default_rng(seed)
    if labels.ndim == 1:
        shown = [c for c in range(len(classes)) if np.any(labels == c)][:max_classes]
        picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in shown]
        names = [classes[c] for c in shown]
    else:
        order = rng.permutation(len(images))[:per_class * 3]
        picks, names = [order[i:i + per_class] for i in range(0, len(order), per_class)], []
    mosaic, h = _mosaic(images, picks, per_class)
    fig = Figure(figsize=(0.62 * per_class + (1.3 if names else 0.1), 0.62 * len(picks) + 0.1))
    ax = fig.add_subplot()
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([(h + 2) * r + h / 2 for r in range(len(picks))], [n[:16] for n in names],
                  fontsize=9)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    fig.subplots_adjust(left=0.3 if names else 0.01, right=0.99, top=0.99, bottom=0.01)
    return fig


def _mosaic(images: np.ndarray, picks: list[np.ndarray], per_class: int
            ) -> tuple[np.ndarray, int]:
    """Rows of images (2 white pixels between them) as one uint8 array (H, W) or (H, W, 3)."""
    _, c, h, w = images.shape
    grid = np.full(((h + 2) * len(picks), (w + 2) * per_class, min(c, 3)), 255, np.uint8)
    for r, row in enumerate(picks):
        for k, i in enumerate(row):
            grid[(h + 2) * r:(h + 2) * r + h, (w + 2) * k:(w + 2) * k + w] = \
                np.moveaxis(np.asarray(images[i][:3]), 0, -1)
    return (grid[..., 0] if c == 1 else grid), h


def auc_bars_figure(table: pd.DataFrame) -> Figure:
    """Seed 004's Fig. 3: mean test AUC (std as error bars) per source, grouped by target."""
    targets = list(dict.fromkeys(table["target"]))
    sources = list(dict.fromkeys(table["source"]))
    fig = Figure(figsize=(max(6, 1.6 * len(targets) * max(1, len(sources)) / 3 + 1.5), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(len(sources), 1)
    for j, src in enumerate(sources):
        rows = table[table["source"] == src].set_index("target").reindex(targets)
        xs = [i + (j - (len(sources) - 1) / 2) * width for i in range(len(targets))]
        ax.bar(xs, rows["auc_mean"], width, yerr=rows["auc_std"], capsize=2, label=src)
    ax.set_xticks(range(len(targets)), targets)
    low = float(table["auc_mean"].min() - table["auc_std"].fillna(0).max() - 0.02)
    ax.set_ylim(max(0.0, min(low, 0.95)), 1.0)
    ax.set(ylabel="test AUC (mean over folds)", title="AUC per source and target")
    ax.legend(fontsize=7, title="source", title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def shift_figure(models: pd.DataFrame, lines: pd.DataFrame, target: str, shift: str,
                 metric: str = "accuracy"):
    """Seed 001's plot on probit-scaled axes: each model's original against shifted score
    (with Clopper-Pearson 95 % error bars when the score is an accuracy with known counts),
    y = x, the fitted line and its bootstrap 95 % band."""
    g = models[(models["target"] == target) & (models["shift"] == shift)]
    n_orig, n_shift = counts(g, metric)
    x = probit(g[f"orig_{metric}"], n_orig)
    y = probit(g[f"shift_{metric}"], n_shift)
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    for source in sorted(g["source"].unique()):
        mask = (g["source"] == source).to_numpy()
        bars = {}
        if n_orig is not None:
            bars = {"xerr": _probit_err(g[f"orig_{metric}"][mask], n_orig[mask], x[mask]),
                    "yerr": _probit_err(g[f"shift_{metric}"][mask], n_shift[mask], y[mask])}
        ax.errorbar(x[mask], y[mask], fmt="o", ms=4, elinewidth=0.6, capsize=0, label=source,
                    **bars)
    lo, hi = float(min(x.min(), y.min())) - 0.2, float(max(x.max(), y.max())) + 0.2
    xs = np.linspace(lo, hi, 50)
    ax.plot(xs, xs, color="grey", lw=0.8, ls="--", label="y = x")
    row = lines[(lines["target"] == target) & (lines["shift"] == shift)]
    if len(row) and pd.notna(row.iloc[0]["u"]):
        u, v = float(row.iloc[0]["u"]), float(row.iloc[0]["v"])
        band = line_band(x, y, xs, groups=g["source"].to_numpy(str))
        ax.fill_between(xs, *band, color="black", alpha=0.12, lw=0, label="95 % bootstrap band")
        ax.plot(xs, u * xs + v, color="black", lw=1, label=f"fit: u={u:.2f}, v={v:.2f}")
    ticks = [t for t in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99) if lo <= probit(t) <= hi]
    ax.set_xticks(probit(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{t:g}" for t in ticks])
    ax.set(xlabel=f"{metric} on {target}", ylabel=f"{metric} on {shift}",
           title=f"{target} -> {shift}")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def _probit_err(p: pd.Series, n: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Asymmetric error bars (2, m) in probit units of the Clopper-Pearson intervals."""
    low, high = clopper_pearson(p.to_numpy(float), n)
    return np.stack([at - probit(low, n), probit(high, n) - at]).clip(min=0)
