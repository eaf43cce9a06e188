"""Distribution shift (seed 001, Recht et al.): shifted test sets of a target, and the linear
fit in probit space of the models' shifted scores against their original ones.

Every fine-tuned model of a target (each source, fold and repeat, and the scratch baseline) is
tested on the target's test split and on each shifted set. Across those models seed 001 finds
Phi^-1(score_shift) = u * Phi^-1(score_orig) + v; a source whose models lie above the line is
*effectively robust* (it loses less under the shift than its original score predicts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.config import ShiftSpec

EPS = 1e-4  # scores are clipped to [EPS, 1 - EPS] before Phi^-1 (a perfect score is infinite)


def transform_images(images, spec: ShiftSpec):
    """``spec``'s transform of uint8 images (N, C, H, W) on their device, deterministic for
    ``spec.seed`` (noise is drawn on the CPU, so CPU and CUDA give the same bytes)."""
    import torch
    import torch.nn.functional as F
    from torchvision.transforms.functional import gaussian_blur

    x = images.float()
    if spec.transform == "noise":
        gen = torch.Generator().manual_seed(spec.seed)
        noise = torch.randn(tuple(x.shape), generator=gen).to(x.device)
        x = x + noise * spec.level * 255.0
    elif spec.transform == "blur":
        k = 2 * int(np.ceil(3 * spec.level)) + 1
        x = gaussian_blur(x, [k, k], [spec.level, spec.level])
    elif spec.transform == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * spec.level + mean
    elif spec.transform == "resolution":
        h, w = x.shape[-2:]
        small = (max(1, round(h * spec.level)), max(1, round(w * spec.level)))
        x = F.interpolate(F.interpolate(x, size=small, mode="bilinear", antialias=True,
                                        align_corners=False),
                          size=(h, w), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def metric_key(spec: ShiftSpec, metric: str) -> str:
    """The MLflow metric of a fold run holding ``metric`` on the shifted set."""
    return f"shift_{spec.label}_{metric}"


@dataclass(frozen=True)
class ProbitFit:
    """Phi^-1(shift) = u * Phi^-1(orig) + v over n models, with (1 - alpha) intervals."""

    u: float
    v: float
    u_ci: tuple[float, float]
    v_ci: tuple[float, float]
    n: int
    r: float

    def predict(self, orig: np.ndarray) -> np.ndarray:
        """The shifted score the line predicts for original scores ``orig``."""
        return stats.norm.cdf(self.u * probit(orig) + self.v)


def probit(p: np.ndarray) -> np.ndarray:
    return stats.norm.ppf(np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS))


def probit_fit(orig: np.ndarray, shifted: np.ndarray, alpha: float = 0.05) -> ProbitFit | None:
    """Least squares in probit space with t-intervals of slope and intercept; None with fewer
    than 3 models or no spread in the original scores."""
    x, y = probit(orig), probit(shifted)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    res = stats.linregress(x, y)
    t = stats.t.ppf(1 - alpha / 2, len(x) - 2)
    return ProbitFit(float(res.slope), float(res.intercept),
                     (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr)),
                     (float(res.intercept - t * res.intercept_stderr),
                      float(res.intercept + t * res.intercept_stderr)),
                     len(x), float(res.rvalue))


def shift_analysis(models: pd.DataFrame, metric: str = "accuracy"
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (target, shift): the probit line over all models; per source: mean original and
    shifted score, mean drop and mean residual from the line in probit units (above the line =
    effectively robust).

    ``models``: one row per fine-tuned model with columns target, shift, source, orig_<metric>,
    shift_<metric>."""
    lines, sources = [], []
    for (target, shift), g in models.groupby(["target", "shift"], sort=True):
        orig, new = g[f"orig_{metric}"].to_numpy(float), g[f"shift_{metric}"].to_numpy(float)
        fit = probit_fit(orig, new)
        lines.append({"target": target, "shift": shift, "metric": metric, "models": len(g),
                      **_fit_row(fit)})
        residual = probit(new) - (fit.u * probit(orig) + fit.v) if fit else np.full(len(g), np.nan)
        part = g.assign(drop=orig - new, residual=residual)
        for source, s in part.groupby("source", sort=True):
            sources.append({"target": target, "shift": shift, "metric": metric,
                            "source": source, "models": len(s),
                            "orig": s[f"orig_{metric}"].mean(),
                            "shifted": s[f"shift_{metric}"].mean(),
                            "drop": s["drop"].mean(), "residual": s["residual"].mean(),
                            "above_line": None if fit is None
                            else bool(s["residual"].mean() > 0)})
    return pd.DataFrame(lines), pd.DataFrame(sources)


def _fit_row(fit: ProbitFit | None) -> dict:
    if fit is None:
        return dict.fromkeys(["u", "u_low", "u_high", "v", "v_low", "v_high", "r"])
    return {"u": fit.u, "u_low": fit.u_ci[0], "u_high": fit.u_ci[1], "v": fit.v,
            "v_low": fit.v_ci[0], "v_high": fit.v_ci[1], "r": fit.r}


def shift_figure(models: pd.DataFrame, lines: pd.DataFrame, target: str, shift: str,
                 metric: str = "accuracy"):
    """Seed 001's plot: each model's original against shifted score on probit-scaled axes,
    y = x and the fitted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = models[(models["target"] == target) & (models["shift"] == shift)]
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for source, s in g.groupby("source"):
        ax.scatter(probit(s[f"orig_{metric}"]), probit(s[f"shift_{metric}"]), s=18, label=source)
    lo = float(min(probit(g[f"orig_{metric}"]).min(), probit(g[f"shift_{metric}"]).min())) - 0.2
    hi = float(max(probit(g[f"orig_{metric}"]).max(), probit(g[f"shift_{metric}"]).max())) + 0.2
    xs = np.linspace(lo, hi, 50)
    ax.plot(xs, xs, color="grey", lw=0.8, ls="--", label="y = x")
    row = lines[(lines["target"] == target) & (lines["shift"] == shift)]
    if len(row) and pd.notna(row.iloc[0]["u"]):
        ax.plot(xs, row.iloc[0]["u"] * xs + row.iloc[0]["v"], color="black", lw=1,
                label=f"fit: u={row.iloc[0]['u']:.2f}, v={row.iloc[0]['v']:.2f}")
    ticks = [t for t in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99) if lo <= probit(t) <= hi]
    ax.set_xticks(probit(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{t:g}" for t in ticks])
    ax.set(xlabel=f"{metric} on {target}", ylabel=f"{metric} on {shift}",
           title=f"{target} -> {shift}")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
