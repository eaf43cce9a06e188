"""Meta-learned rankers of candidate sources over a (source, target) pair table, evaluated and
selected leave-one-target-out (LOTO). Pure functions over DataFrames.

Learners (:data:`LEARNERS`; each maps (train pairs, test pairs, feature names) to scores):
``lgbm-lambdarank`` (LightGBM ``LGBMRanker``, one query group per target, :data:`LGBM_PARAMS`),
``ridge-pointwise`` and ``hgb-pointwise`` (scikit-learn regressions on the within-target
standardised AUC), ``ridge-transferability`` (today's ``learned`` method of recommend.py) and
``best-on-average``. The default (:data:`DEFAULT_LEARNER`) is ``ridge-pointwise``: it won the
LOTO comparison on synthetic data resembling the problem (a comparison on synthetic data; higher Kendall and
weighted tau than lambdarank in every configuration, lower regret in most), with lambdarank and
the gradient-boosted regressor a close second. Both the ridge and lambdarank read each feature
twice, raw and standardised within the target's candidates (``f@rel``,
:func:`add_relative_features`), which helped every learner.

The pair table
--------------
One row per (source, target) pair, across suites, built by :func:`benchmark.analysis.pair_features.pair_table`:

* ``source``, ``target``; the label ``auc`` (mean fine-tuning AUC of source -> target over
  repeats) and optionally ``transferability`` (Eq. 1, mean over repeats);
* feature columns, recognised by a ``:`` in their name , all oriented
  so that HIGHER = predicted better transfer where an orientation exists:

  - ``dist:<probe>``: the probe's distance NEGATED (-distance: nearer = higher);
  - ``est:<estimator>``: the transferability estimator's score as is (LogME, LEEP, ...; higher
    = better). The project stores estimators as distance = -score: pass them as ``scores``
    after negating, or as ``distances`` (then they appear as ``dist:<name>`` = score);
  - ``<table>:<column>|abs``: |source - target| of a numeric per-dataset column (expert and
    statistical meta-features; ``|diff``: signed source - target with ``signed=True``);
    ``<table>:<column>|differs``: 1.0 when a non-numeric column (expert card fields: origin,
    color, ...) differs, 0.0 when equal;
  - ``size:source_images``, ``size:target_images``, ``size:log_ratio`` = ln(source / target).

  A feature that was not measured for a pair (a probe not run on it) is NaN. LightGBM routes
  missing values natively; the scikit-learn learners impute with the training median.

Relevance grades (lambdarank needs integer relevance)
-----------------------------------------------------
Per target, from that target's own AUCs only (:func:`~benchmark.analysis.pair_features.relevance`): ``rank`` (default) gives a
source the number of candidates of the same target with a strictly lower AUC (worst = 0, ties
share a grade), with a linear gain (label_gain[g] = g). ``quantile`` bins the within-target
rank into ``levels`` equal bins instead (comparable across targets with different numbers of
candidates, coarser). On the tuning seeds, rank grades were as good as quantile bins and the
linear gain slightly better than LightGBM's exponential 2^g - 1 (which lets the single best
source dominate the loss of a group). Since grades are per target, a held-out target's labels
never shape another target's grades. The pointwise learners regress on the within-target
z-score of the AUC, per target as well.

Leakage
-------
In :func:`loto_scores` the model for target t is fitted on the pairs of the other targets only:
t's labels, t's rows and anything computed from them (imputation medians, scaling statistics,
LightGBM's feature bins, grades) never enter the fit. :func:`add_relative_features` standardises
each feature within each target's candidate set; that reads only the FEATURES of the target's
own candidates (known at prediction time), never a label and never another target. Arrays are
handed to the models in one canonical memory layout, so a held-out target's scores are bitwise
identical whatever its labels (tests/test_ranker.py poisons them to check).
``bench recommend`` chooses a method for t on the other targets with t removed entirely
(:mod:`benchmark.analysis.selection`; nested LOTO: the learned method's inner models are fitted
without t as well), so the choice for t cannot depend on t's labels.

When not to trust it
--------------------
* fewer than ``MIN_TARGETS`` (2) training targets or ``MIN_PAIRS`` (6) training pairs: it
  refuses (:class:`RankerRefused`; LOTO leaves such targets out and says why);
* a target whose candidates, probes or dataset kinds are unlike every training target
  (a new suite, a probe never run on the training pairs): trees extrapolate flat, the ridge
  linearly, and a feature missing in training is imputed (ridge) or ignored;
* few targets in general (under ~10): the LOTO figures have a spread of the same order as the
  differences between methods; compare against ``best-on-average`` and the best single probe,
  and read the nested reliability of the selection (:mod:`benchmark.analysis.selection`)
  rather than the winner's figure;
* feature importances from a handful of targets are unstable: read them as "which features the
  model used", not as evidence that a probe works.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import lightgbm
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from benchmark.analysis.pair_features import (LABEL, RELATIVE_SUFFIX,
                                              add_relative_features, feature_columns, relevance,
                                              within_target_z)
from benchmark.analysis.baselines import mean_over_other_targets
from benchmark.analysis.ranking import SCORE_COLUMNS
from registry.errors import BenchError

MIN_TARGETS = 2  # training targets: with fewer, nothing relates one target to another
MIN_PAIRS = 6

# LightGBM settings for tiny data (a few targets x 4-10 candidates): shallow trees, small leaves,
# strong L2, a slow learning rate; deterministic single-threaded training with a fixed seed.
LGBM_PARAMS: dict = {
    "objective": "lambdarank",
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 4,
    "max_depth": 2,
    "min_child_samples": 3,        # min_data_in_leaf
    "min_child_weight": 1e-3,      # min_sum_hessian_in_leaf (0 tripped a LightGBM check)
    "min_data_in_bin": 1,
    "max_bin": 63,
    "reg_lambda": 5.0,             # lambda_l2
    "reg_alpha": 0.0,
    "colsample_bytree": 1.0,       # feature_fraction: no column sampling
    "subsample": 1.0,
    "random_state": 0,
    "deterministic": True,
    "force_col_wise": True,
    "n_jobs": 1,                   # num_threads=1
    "verbose": -1,
}


class RankerRefused(BenchError):
    """Too little training data for a learned ranking; the message says what is missing."""


# --- guardrails -------------------------------------------------------------------------------


def refusal(train: pd.DataFrame, label: str = LABEL, min_targets: int = MIN_TARGETS,
            min_pairs: int = MIN_PAIRS) -> str | None:
    """Why ``train`` is too small to learn a ranking from, or None when it is enough."""
    rows = train.dropna(subset=[label])
    n_targets, n_pairs = rows["target"].nunique(), len(rows)
    if n_targets < min_targets:
        return (f"only {n_targets} training target(s) with a measured {label} (at least "
                f"{min_targets} needed): nothing to learn a ranking across targets from")
    if n_pairs < min_pairs:
        return (f"only {n_pairs} training pair(s) (at least {min_pairs} needed)")
    return None


def _check(train: pd.DataFrame, label: str, min_targets: int, min_pairs: int) -> pd.DataFrame:
    why = refusal(train, label, min_targets, min_pairs)
    if why:
        raise RankerRefused(f"The learned ranker refuses: {why}.",
                            "Run the benchmark on more targets, or rank by a single probe.")
    return train.dropna(subset=[label]).sort_values("target", kind="stable")


# --- learners: (train, test, features) -> scores for test's rows (higher = better) -------------

Learner = Callable[[pd.DataFrame, pd.DataFrame, list[str]], np.ndarray]


def _design(frame: pd.DataFrame, features: list[str], relative: bool) -> tuple[pd.DataFrame,
                                                                               list[str]]:
    """``frame`` and the columns a learner reads: ``features``, plus their within-target
    standardised versions when ``relative`` (computed per target from its own rows)."""
    raw = [f for f in features if not f.endswith(RELATIVE_SUFFIX)]
    if not relative:
        return frame, features
    frame = add_relative_features(frame.drop(columns=[f"{f}{RELATIVE_SUFFIX}" for f in raw],
                                             errors="ignore"), raw)
    return frame, raw + [f"{f}{RELATIVE_SUFFIX}" for f in raw]


def _matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """``frame[cols]`` as a fresh C-ordered float array. pandas hands out C- or F-ordered arrays
    depending on how the frame's blocks happen to be laid out (a frame whose label column was
    edited differs from one that was not), and BLAS sums in a different order for each: the
    results would then differ in the last bits with the held-out target's labels."""
    return np.ascontiguousarray(frame[cols].to_numpy(dtype=float))


def fit_lgbm(train: pd.DataFrame, features: list[str], *, label: str = LABEL,
             params: Mapping | None = None, grades: str = "rank", levels: int = 5,
             min_targets: int = MIN_TARGETS, min_pairs: int = MIN_PAIRS):
    """An ``lightgbm.LGBMRanker`` (lambdarank, one query group per target) fitted on ``train``'s
    ``features`` (used as given); raises :class:`RankerRefused` when ``train`` is too small."""
    rows = _check(train, label, min_targets, min_pairs)
    y = relevance(rows, label, grades, levels)
    cfg = {**LGBM_PARAMS, **(params or {})}
    cfg.setdefault("label_gain", [float(i) for i in range(max(int(y.max()) + 1, 2))])
    group = rows.groupby("target", sort=False).size().to_numpy()
    model = lightgbm.LGBMRanker(**cfg)
    # numpy input: LightGBM rejects ':' in feature names
    model.fit(_matrix(rows, features), y, group=group)
    return model


@dataclass(frozen=True)
class LGBMLearner:
    """LightGBM lambdarank (:data:`LGBM_PARAMS`, overridden by ``params``) on the features and,
    with ``relative``, their within-target standardised versions."""

    params: Mapping = field(default_factory=dict)
    grades: str = "rank"
    levels: int = 5
    relative: bool = True
    label: str = LABEL

    def __call__(self, train: pd.DataFrame, test: pd.DataFrame, features: list[str]
                 ) -> np.ndarray:
        train, cols = _design(train, features, self.relative)
        test, _ = _design(test, features, self.relative)
        model = fit_lgbm(train, cols, label=self.label, params=self.params,
                         grades=self.grades, levels=self.levels, min_targets=0, min_pairs=0)
        return model.predict(_matrix(test, cols))


@dataclass(frozen=True)
class PointwiseLearner:
    """scikit-learn regression on the within-target standardised AUC (pointwise ranking):
    ``ridge`` (median imputation + missing indicators, scaling, Ridge(alpha)) or ``hgb``
    (HistGradientBoostingRegressor, native NaN handling, shallow and regularised). Imputation and
    scaling statistics come from ``train`` only. ``relative`` as in :class:`LGBMLearner`."""

    kind: str = "ridge"
    alpha: float = 100.0
    relative: bool = True
    label: str = LABEL

    def model(self):
        if self.kind == "ridge":
            return make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                 StandardScaler(), Ridge(alpha=self.alpha))
        if self.kind == "hgb":
            return HistGradientBoostingRegressor(
                max_iter=150, learning_rate=0.05, max_leaf_nodes=4, max_depth=2,
                min_samples_leaf=3, l2_regularization=5.0, early_stopping=False, random_state=0)
        raise ValueError(f"Unknown pointwise learner {self.kind!r}.")

    def fit(self, train: pd.DataFrame, features: list[str]):
        """(fitted model, the columns it reads)."""
        rows, cols = _design(train.dropna(subset=[self.label]), features, self.relative)
        cols = [c for c in cols if rows[c].notna().any()]  # never measured: nothing to learn
        model = self.model()
        with threadpool_limits(1):  # OpenMP on ~100 rows is all overhead (and shared cores)
            model.fit(_matrix(rows, cols), within_target_z(rows, self.label))
        return model, cols

    def __call__(self, train: pd.DataFrame, test: pd.DataFrame, features: list[str]
                 ) -> np.ndarray:
        model, cols = self.fit(train, features)
        test, _ = _design(test, features, self.relative)
        with threadpool_limits(1):
            return model.predict(_matrix(test, cols))


def ridge_transferability(train: pd.DataFrame, test: pd.DataFrame, features: list[str]
                          ) -> np.ndarray:
    """Today's ``learned`` method of benchmark/recommend.py, replicated: Ridge(alpha=1) from the
    probes' distances (``dist:`` columns among ``features``; z-scored with the training mean and
    std, NaN -> the training mean) to transferability (the ``auc`` label when the table has no
    ``transferability`` column)."""
    label = "transferability" if "transferability" in train.columns else LABEL
    rows = train.dropna(subset=[label])
    cols = [c for c in features if c.startswith("dist:") and not c.endswith(RELATIVE_SUFFIX)
            and rows[c].notna().any()]
    if not cols:
        return np.full(len(test), np.nan)
    mu, sd = rows[cols].mean(), rows[cols].std(ddof=0).replace(0.0, 1.0).fillna(1.0)

    def z(frame: pd.DataFrame) -> np.ndarray:
        return _matrix((frame[cols].fillna(mu) - mu) / sd, cols)

    return Ridge(alpha=1.0).fit(z(rows), rows[label]).predict(z(test))


def best_on_average(train: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The best-on-average baseline as a learner: the source's mean AUC over the training
    targets (:func:`benchmark.analysis.baselines.mean_over_other_targets`, the evaluation's own
    baseline; NaN for a source never seen in training)."""
    mean = mean_over_other_targets(train.dropna(subset=[LABEL])[["source", "target", LABEL]]
                                   .rename(columns={LABEL: "auc"}), None)
    return test["source"].map(mean).to_numpy(dtype=float)


LEARNERS: dict[str, Learner] = {
    "ridge-pointwise": PointwiseLearner("ridge"),
    "lgbm-lambdarank": LGBMLearner(),
    "hgb-pointwise": PointwiseLearner("hgb"),
    "ridge-transferability": ridge_transferability,
    "best-on-average": best_on_average,
}
# the learner that won the LOTO comparisons: on synthetic data (tests/test_ranker.py) and on the
# wide suite's store (tests/bench/bench_learners.py; docs/results.md#the-wide-suite)
DEFAULT_LEARNER = "ridge-pointwise"


# --- leave one target out ---------------------------------------------------------------------


def loto_scores(pairs: pd.DataFrame, learner: Learner | None = None,
                features: list[str] | None = None, *, label: str = LABEL,
                min_targets: int = MIN_TARGETS, min_pairs: int = MIN_PAIRS,
                targets: list[str] | None = None, scored: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """LOTO scores: for each target t, ``learner`` fitted on the pairs of the other targets
    (with a measured label) scores t's candidates (its rows in ``scored``, default ``pairs``:
    e.g. one suite's rows of a table across suites). Columns source, target, score (higher =
    better), ready for ``benchmark.analysis.evaluation.evaluate``. Targets whose
    training set fails the guardrail, or with no row to score, get no rows;
    ``result.attrs['refused']`` maps them to the reason."""
    learner = LEARNERS[DEFAULT_LEARNER] if learner is None else learner
    features = feature_columns(pairs) if features is None else features
    scored = pairs if scored is None else scored
    frames, refused = [], {}
    for t in sorted(scored["target"].unique()) if targets is None else targets:
        train = pairs[pairs["target"] != t]
        test = scored[scored["target"] == t]
        why = refusal(train, label, min_targets, min_pairs)
        if why or test.empty:
            refused[t] = why or "no pair of this target to score"
            continue
        train = train.dropna(subset=[label]).sort_values("target", kind="stable")
        frames.append(pd.DataFrame({"source": test["source"].to_numpy(), "target": t,
                                    "score": np.asarray(learner(train, test, features),
                                                        dtype=float)}))
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=list(SCORE_COLUMNS)))
    out.attrs["refused"] = refused
    return out


# --- documentation ----------------------------------------------------------------------------


def feature_importances(pairs: pd.DataFrame, features: list[str] | None = None, *,
                        label: str = LABEL, params: Mapping | None = None, grades: str = "rank",
                        relative: bool = True) -> pd.DataFrame | None:
    """Gain (and split count) of each column of the lambdarank model fitted on ALL targets with
    a label, largest first (``f@rel``: the within-target standardised f); gain_share sums to 1
    (all 0 when no split was made). None when the table is too small (see :func:`refusal`)."""
    features = feature_columns(pairs) if features is None else features
    if refusal(pairs, label):
        return None
    rows, cols = _design(pairs.dropna(subset=[label]), features, relative)
    booster = fit_lgbm(rows, cols, label=label, params=params, grades=grades).booster_
    gain = booster.feature_importance("gain").astype(float)
    total = float(gain.sum())
    table = pd.DataFrame({"feature": cols, "gain": gain,
                          "gain_share": gain / total if total > 0 else np.zeros(len(gain)),
                          "splits": booster.feature_importance("split").astype(int)})
    return table.sort_values(["gain", "feature"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


def linear_weights(pairs: pd.DataFrame, features: list[str] | None = None, *,
                   learner: PointwiseLearner | None = None) -> pd.DataFrame | None:
    """Coefficients of the default ridge ranker fitted on ALL targets, on standardised inputs
    (comparable across columns; ``missing:f`` = f's missing indicator), largest |weight| first.
    None when the table is too small."""
    learner = LEARNERS[DEFAULT_LEARNER] if learner is None else learner
    features = feature_columns(pairs) if features is None else features
    if refusal(pairs, learner.label):
        return None
    model, cols = learner.fit(pairs, features)
    imputer, ridge = model[0], model[-1]
    kept = [c for c, keep in zip(cols, ~np.isnan(imputer.statistics_)) if keep]
    names = kept + [f"missing:{cols[i]}" for i in imputer.indicator_.features_] \
        if imputer.indicator_ is not None else kept
    table = pd.DataFrame({"feature": names, "weight": ridge.coef_})
    return table.reindex(table["weight"].abs().sort_values(ascending=False, kind="stable")
                         .index).reset_index(drop=True)
