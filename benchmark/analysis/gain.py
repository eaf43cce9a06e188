"""The gain a source should bring, with a prediction interval: what a ranking score cannot say.

A regression of Eq. 1 transferability (% of AUC over the scratch baseline) on the learned
ranker's pair features (:mod:`benchmark.analysis.pair_features`: every method's score, the
datasets' meta-feature differences, the sizes; each raw and standardised within its target),
scikit-learn's ridge with median imputation, missing-value indicators and scaling, fitted on
every pair with a measured transferability.

Its interval is cross-conformal over targets (CV+ with one fold per target, Barber et al. 2021,
"Predictive inference with the jackknife+"): the absolute residuals of every training pair under
the model fitted without that pair's target, and the interval for a new pair is the prediction
+- their ceil((1 - alpha)(n + 1))-th smallest value. Targets, not pairs, are left out because
pairs of one target share its noise; a new target is exchangeable with the training targets at
best, which is the assumption to keep in mind (a target unlike every training one breaks it).
Its coverage is checked the same way, nested: for each target, the interval built without it
(model and residuals) is tested on its pairs (:func:`loto_coverage`).

A candidate is flagged ``likely`` to transfer negatively when the whole interval lies below 0,
``possible`` when the prediction is below 0 but the interval reaches above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from benchmark.analysis.pair_features import add_relative_features, feature_columns

GAIN = "transferability"
LEVEL = 0.95
ALPHA_RIDGE = 10.0
MIN_TARGETS = 3   # fewer training targets: no interval (nothing to calibrate it on)


@dataclass(frozen=True)
class GainPrediction:
    """Predicted gain per candidate with its interval, and how the interval was calibrated."""

    table: pd.DataFrame   # source, predicted_gain, gain_low, gain_high, negative_transfer
    n_targets: int        # training targets
    n_pairs: int
    level: float
    coverage: float | None  # leave-one-target-out coverage of the interval on the training
    reason: str | None = None  # why nothing was predicted


def _columns(train: pd.DataFrame) -> list[str]:
    feats = [c for c in feature_columns(train) if train[c].notna().any()]
    return feats + [f"{c}@rel" for c in feats]


def _matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    frame = frame.reindex(columns=[*frame.columns, *(c for c in cols if c not in frame)])
    return np.ascontiguousarray(frame[cols].to_numpy(dtype=float))


def _fit_predict(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Ridge of transferability on the features of ``train``, predicting ``test``."""
    base = [c for c in feature_columns(train) if train[c].notna().any()]
    tr = add_relative_features(train, base)
    te = add_relative_features(test.reindex(columns=[*test.columns,
                                                     *(c for c in base if c not in test)]), base)
    cols = [c for c in _columns(train) if tr[c].notna().any()]
    model = make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                          StandardScaler(), Ridge(alpha=ALPHA_RIDGE))
    with threadpool_limits(1):
        model.fit(_matrix(tr, cols), tr[GAIN].to_numpy(dtype=float))
        return model.predict(_matrix(te, cols))


def loto_residuals(train: pd.DataFrame) -> np.ndarray:
    """|transferability - prediction| of every pair under the model fitted without its
    target (NaN where that leaves nothing to fit)."""
    out = np.full(len(train), np.nan)
    targets = train["target"].to_numpy()
    for t in np.unique(targets):
        held = targets == t
        rest = train[~held]
        if rest["target"].nunique() >= 1 and len(rest) >= 2:
            out[held] = np.abs(train.loc[held, GAIN].to_numpy(dtype=float)
                               - _fit_predict(rest, train[held]))
    return out


def conformal_half_width(residuals: np.ndarray, level: float = LEVEL) -> float:
    """The ceil(level (n + 1))-th smallest residual (inf when n is too small for it)."""
    r = np.sort(residuals[np.isfinite(residuals)])
    k = math.ceil(level * (len(r) + 1))
    return float(r[k - 1]) if 0 < k <= len(r) else math.inf


def loto_coverage(train: pd.DataFrame, level: float = LEVEL,
                  residuals: np.ndarray | None = None) -> float | None:
    """Share of training pairs inside the interval built without their target (model and
    calibration residuals): the interval's coverage, nested leave-one-target-out.
    ``residuals``: :func:`loto_residuals` of ``train`` when the caller has them (each pair's
    residual under the model fitted without its target, the one this check needs)."""
    targets = train["target"].to_numpy()
    if len(np.unique(targets)) < MIN_TARGETS + 1:
        return None
    residuals = loto_residuals(train) if residuals is None else residuals
    inside = []
    for t in np.unique(targets):
        held = targets == t
        half = conformal_half_width(loto_residuals(train[~held]), level)
        inside += list(residuals[held] <= half)
    return float(np.mean(inside))


def negative_transfer(point: float, high: float) -> str:
    """'likely' when the whole interval is below 0, 'possible' when the prediction is (with no
    interval, ``high`` is the prediction: never 'likely')."""
    if high < 0 and high != point:
        return "likely"
    return "possible" if point < 0 else ""


def predict_gain(train: pd.DataFrame, test: pd.DataFrame, level: float = LEVEL,
                 check_coverage: bool = True) -> GainPrediction:
    """The predicted gain of ``test``'s pairs (source, target, features) from ``train`` (pairs
    with a measured transferability and features), with cross-conformal intervals."""
    train = train.dropna(subset=[GAIN]).sort_values(["target", "source"], kind="stable")
    train = train.reset_index(drop=True)
    n_targets = train["target"].nunique()
    empty = pd.DataFrame({"source": test["source"].to_numpy(), "predicted_gain": np.nan,
                          "gain_low": np.nan, "gain_high": np.nan, "negative_transfer": ""})
    if n_targets < MIN_TARGETS:
        return GainPrediction(empty, n_targets, len(train), level, None,
                              f"{n_targets} training target(s) with a measured "
                              f"transferability; {MIN_TARGETS} are needed to calibrate an "
                              "interval")
    point = _fit_predict(train, test)
    residuals = loto_residuals(train)
    half = conformal_half_width(residuals, level)
    reason = None
    if not math.isfinite(half):  # fewer residuals than the quantile needs: no interval
        half = math.nan
        reason = (f"{len(train)} training pairs: at least {math.ceil(level / (1 - level))} are "
                  f"needed for a {100 * level:.0f} % interval")
    table = pd.DataFrame({"source": test["source"].to_numpy(), "predicted_gain": point,
                          "gain_low": point - half, "gain_high": point + half})
    table["negative_transfer"] = [negative_transfer(p, h if math.isfinite(h) else p)
                                  for p, h in zip(table["predicted_gain"], table["gain_high"])]
    coverage = (loto_coverage(train, level, residuals) if check_coverage and reason is None
                else None)
    return GainPrediction(table, n_targets, len(train), level, coverage, reason)
