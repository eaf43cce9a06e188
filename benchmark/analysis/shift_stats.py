"""Distribution shift statistics (Recht et al. 2019, "Do ImageNet classifiers generalize to
ImageNet?"; Taori et al. 2020): the linear fit in probit space of the models' scores on a
shifted test set against their original ones, and each source's effective robustness.

Every fine-tuned model of a target (each source, fold and repeat, and the scratch baseline) is
tested on the target's test split and on each shifted set. Across those models Recht et al. 2019 finds
Phi^-1(score_shift) = u * Phi^-1(score_orig) + v; a source whose models lie above the line is
*effectively robust* (it loses less under the shift than its original score predicts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

EPS = 1e-4  # clip of scores with no known count (AUC): [EPS, 1 - EPS] before Phi^-1
N_BOOT = 1000  # bootstrap resamples of the models for the line's band and the residuals
BOOT_SEED = 0


@dataclass(frozen=True)
class ProbitFit:
    """Phi^-1(shift) = u * Phi^-1(orig) + v over n models, with (1 - alpha) t-intervals of u
    and v, the correlation r and the residual standard deviation (probit units)."""

    u: float
    v: float
    u_ci: tuple[float, float]
    v_ci: tuple[float, float]
    n: int
    r: float
    resid_std: float = float("nan")

    def predict(self, orig: np.ndarray) -> np.ndarray:
        """The shifted score the line predicts for original scores ``orig``."""
        return stats.norm.cdf(self.u * probit(orig) + self.v)


def probit(p: np.ndarray, n: np.ndarray | float | None = None) -> np.ndarray:
    """Phi^-1 of scores clipped away from 0 and 1. With ``n`` (the images an accuracy was
    measured on) the clip is half a count, [0.5/n, 1 - 0.5/n] (the continuity correction: a
    perfect score on 100 images is 0.995, probit 2.58, not the 3.72 of a fixed 1e-4, which
    gave such models undue leverage on the line); without it (AUC) [EPS, 1 - EPS]."""
    p = np.asarray(p, dtype=float)
    low = EPS if n is None else 0.5 / np.asarray(n, dtype=float)
    low = np.where(np.isfinite(low), low, EPS)
    return stats.norm.ppf(np.clip(p, low, 1 - low))


def clopper_pearson(accuracy: np.ndarray, n: np.ndarray, alpha: float = 0.05
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial (Clopper-Pearson) (1 - alpha) interval of accuracies measured on ``n``
    images (k = round(accuracy * n) correct), from beta quantiles, as Recht et al. draw for
    each model."""
    n = np.asarray(n, dtype=float)
    k = np.round(np.asarray(accuracy, dtype=float) * n)
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return low, high


def probit_fit(orig: np.ndarray, shifted: np.ndarray, alpha: float = 0.05,
               n_orig: np.ndarray | None = None, n_shift: np.ndarray | None = None
               ) -> ProbitFit | None:
    """Least squares in probit space with t-intervals of slope and intercept; None with fewer
    than 3 models or no spread in the original scores. ``n_orig``/``n_shift``: images behind
    each accuracy (the clip of :func:`probit`).

    The t-intervals treat the models as independent draws. The folds and repeats of one
    source are not (same pretrained network, overlapping training data), so they are narrower
    than the truth; the bootstrap over models (:func:`line_band`) shares that caveat."""
    x, y = probit(orig, n_orig), probit(shifted, n_shift)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    res = stats.linregress(x, y)
    t = stats.t.ppf(1 - alpha / 2, len(x) - 2)
    resid = y - (res.slope * x + res.intercept)
    return ProbitFit(float(res.slope), float(res.intercept),
                     (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr)),
                     (float(res.intercept - t * res.intercept_stderr),
                      float(res.intercept + t * res.intercept_stderr)),
                     len(x), float(res.rvalue), float(np.sqrt(resid @ resid / (len(x) - 2))))


def _boot_lines(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts (n_boot,) of least-squares lines on resamples of the models,
    drawn with replacement within each group (so every source is in every resample), and the
    resampled indices (n_boot, n). NaN where a resample has no spread in x."""
    rng = np.random.default_rng(seed)
    idx = np.empty((n_boot, len(x)), dtype=int)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        idx[:, members] = rng.choice(members, size=(n_boot, len(members)))
    xb, yb = x[idx], y[idx]
    dx = xb - xb.mean(axis=1, keepdims=True)
    var = (dx * dx).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(var > 0, (dx * (yb - yb.mean(axis=1, keepdims=True))).sum(axis=1) / var,
                     np.nan)
    return np.stack([u, yb.mean(axis=1) - u * xb.mean(axis=1)], axis=1), idx


def line_band(x: np.ndarray, y: np.ndarray, grid: np.ndarray, alpha: float = 0.05,
              n_boot: int = N_BOOT, seed: int = BOOT_SEED,
              groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap (1 - alpha) band of the fitted line at ``grid`` (all in probit units):
    percentiles of the lines refitted on ``n_boot`` resamples of the models (seeded; within
    ``groups`` when given), as Recht et al.'s band around the fit."""
    groups = np.zeros(len(x)) if groups is None else np.asarray(groups)
    lines, _ = _boot_lines(np.asarray(x, float), np.asarray(y, float), groups, n_boot, seed)
    pred = lines[:, :1] * np.asarray(grid)[None, :] + lines[:, 1:]
    return tuple(np.nanpercentile(pred, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0))


def _source_residuals(x: np.ndarray, y: np.ndarray, sources: np.ndarray, alpha: float,
                      n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """Per source, the bootstrap (1 - alpha) interval of its mean residual from the line,
    refitting the line on each resample of all models (resampled within each source)."""
    lines, idx = _boot_lines(x, y, sources, n_boot, seed)
    resid = y[idx] - (lines[:, :1] * x[idx] + lines[:, 1:])
    out = {}
    for s in np.unique(sources):
        cols = np.flatnonzero(sources == s)  # a source's slots hold its own resampled models
        low, high = np.nanpercentile(resid[:, cols].mean(axis=1),
                                     [100 * alpha / 2, 100 * (1 - alpha / 2)])
        out[str(s)] = (float(low), float(high))
    return out


def robustness(low: float, high: float) -> str | None:
    """'above' (effectively robust) or 'below' the line when the residual's interval excludes
    0, else 'on the line'; None without an interval."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return "above" if low > 0 else "below" if high < 0 else "on the line"


def counts(models: pd.DataFrame, metric: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The images behind each model's original and shifted score when the score is an
    accuracy with known counts (columns orig_n, shift_n); None otherwise (AUC, old runs)."""
    if metric != "accuracy" or not {"orig_n", "shift_n"} <= set(models.columns):
        return None, None
    n_orig, n_shift = (models[c].to_numpy(float) for c in ("orig_n", "shift_n"))
    if np.isnan(n_orig).any() or np.isnan(n_shift).any():
        return None, None
    return n_orig, n_shift


def shift_analysis(models: pd.DataFrame, metric: str = "accuracy", alpha: float = 0.05,
                   n_boot: int = N_BOOT, seed: int = BOOT_SEED
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (target, shift): the probit line over all models; per source: mean original and
    shifted score, mean drop, and mean residual from the line in probit units with its
    bootstrap interval; ``effective_robustness`` is 'above' (effectively robust), 'below' or
    'on the line' (interval holds 0).

    ``models``: one row per fine-tuned model with columns target, shift, source, orig_<metric>,
    shift_<metric> (and orig_n, shift_n: the images behind an accuracy)."""
    lines, sources = [], []
    for (target, shift), g in models.groupby(["target", "shift"], sort=True):
        n_orig, n_shift = counts(g, metric)
        orig, new = g[f"orig_{metric}"].to_numpy(float), g[f"shift_{metric}"].to_numpy(float)
        fit = probit_fit(orig, new, alpha, n_orig, n_shift)
        lines.append({"target": target, "shift": shift, "metric": metric, "models": len(g),
                      **_fit_row(fit)})
        x, y = probit(orig, n_orig), probit(new, n_shift)
        names = g["source"].to_numpy(str)
        residual = y - (fit.u * x + fit.v) if fit else np.full(len(g), np.nan)
        bands = _source_residuals(x, y, names, alpha, n_boot, seed) if fit else {}
        part = g.assign(drop=orig - new, residual=residual)
        for source, s in part.groupby("source", sort=True):
            low, high = bands.get(str(source), (np.nan, np.nan))
            sources.append({"target": target, "shift": shift, "metric": metric,
                            "source": source, "models": len(s),
                            "orig": s[f"orig_{metric}"].mean(),
                            "shifted": s[f"shift_{metric}"].mean(),
                            "drop": s["drop"].mean(), "residual": s["residual"].mean(),
                            "residual_low": low, "residual_high": high,
                            "effective_robustness": robustness(low, high)})
    return pd.DataFrame(lines), pd.DataFrame(sources)


def _fit_row(fit: ProbitFit | None) -> dict:
    if fit is None:
        return dict.fromkeys(["u", "u_low", "u_high", "v", "v_low", "v_high", "r",
                              "resid_std"])
    return {"u": fit.u, "u_low": fit.u_ci[0], "u_high": fit.u_ci[1], "v": fit.v,
            "v_low": fit.v_ci[0], "v_high": fit.v_ci[1], "r": fit.r,
            "resid_std": fit.resid_std}

