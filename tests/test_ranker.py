"""The meta-learned ranker: leakage-free leave-one-target-out (a poisoned held-out target changes
nothing of its scores), learning a planted signal, determinism, missing features and guardrails
(the honest selection of a method: tests/test_recommend.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.pair_features import feature_columns, pair_table, relevance
from benchmark.analysis.ranker import (LEARNERS, RankerRefused, feature_importances, fit_lgbm,
                                       linear_weights, loto_scores)
from benchmark.analysis.ranking import ranking_agreement
from synthetic_pairs import one_feature_pairs, realistic_pairs

LGBM = LEARNERS["lgbm-lambdarank"]
LEARNED = ["ridge-pointwise", "lgbm-lambdarank", "hgb-pointwise", "ridge-transferability",
           "best-on-average"]


def _poison(pairs: pd.DataFrame, target: str) -> pd.DataFrame:
    """``target``'s labels reversed (its best source becomes its worst) and shifted."""
    out = pairs.copy()
    rows = out["target"] == target
    auc = out.loc[rows, "auc"].to_numpy()
    out.loc[rows, "auc"] = auc.max() + auc.min() - auc + 0.05
    if "transferability" in out:
        out.loc[rows, "transferability"] = -out.loc[rows, "transferability"]
    return out


def per_target_figures(pairs: pd.DataFrame, scores: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` of ``scores`` against the pairs' AUC per target (NaN where undefined)."""
    out = {}
    for t, part in pairs.groupby("target"):
        s = scores[scores["target"] == t]
        value = ranking_agreement(pd.Series(part["auc"].to_numpy(), index=part["source"]),
                                  pd.Series(s["score"].to_numpy(), index=s["source"]))[metric]
        out[t] = np.nan if value is None else value
    return pd.Series(out, dtype=float)


def _scores(table: pd.DataFrame, target: str) -> np.ndarray:
    return table.loc[table["target"] == target, "score"].to_numpy()


# --- leakage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEARNED)
def test_poisoning_the_held_out_target_changes_nothing_of_its_loto_scores(name):
    pairs = realistic_pairs(1, (6, 7))
    target = "d0_2"
    poisoned = _poison(pairs, target)
    assert not np.array_equal(poisoned["auc"], pairs["auc"])
    clean = loto_scores(pairs, LEARNERS[name], targets=[target])
    dirty = loto_scores(poisoned, LEARNERS[name], targets=[target])
    assert len(clean) == 5
    # bitwise equal, not approximately
    assert _scores(clean, target).tobytes() == _scores(dirty, target).tobytes()
    # the figure for the target is then a function of the scores and the truth only: scored
    # against the same truth, it is identical too
    f_clean = per_target_figures(pairs, clean, "kendall_tau")[target]
    f_dirty = per_target_figures(pairs, dirty, "kendall_tau")[target]
    assert f_clean == f_dirty


def test_poisoning_one_target_does_move_the_scores_of_the_others():
    """The poisoning test has teeth: the labels do reach the models of the other targets."""
    pairs = realistic_pairs(1, (6, 7))
    clean = loto_scores(pairs, LGBM, targets=["d0_3"])
    dirty = loto_scores(_poison(pairs, "d0_2"), LGBM, targets=["d0_3"])
    assert not np.array_equal(_scores(clean, "d0_3"), _scores(dirty, "d0_3"))


def test_relevance_grades_are_within_target():
    pairs = pd.DataFrame({"source": list("abcab"), "target": ["t", "t", "t", "u", "u"],
                          "auc": [0.7, 0.9, 0.8, 0.5, 0.5]})
    assert relevance(pairs).tolist() == [0, 2, 1, 0, 0]
    assert relevance(pairs, scheme="quantile", levels=2).tolist() == [0, 1, 0, 0, 0]


# --- it learns --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lgbm-lambdarank", "ridge-pointwise"])
def test_one_informative_feature_is_learned(name):
    pairs = one_feature_pairs(seed=0, n_targets=8, n_sources=6, noise=0.3)
    scores = loto_scores(pairs, LEARNERS[name])
    taus = per_target_figures(pairs, scores, "kendall_tau")
    assert len(taus) == 8
    assert taus.mean() > 0.6
    regret = per_target_figures(pairs, scores, "top1_regret").mean()
    random_regret = pairs.groupby("target")["auc"].agg(lambda a: (a.max() - a).mean()).mean()
    assert regret < random_regret / 2


def test_a_random_feature_gets_little_importance():
    pairs = one_feature_pairs(seed=0, n_targets=8, n_sources=6, noise=0.3)
    imp = feature_importances(pairs).set_index("feature")
    assert imp["gain_share"].sum() == pytest.approx(1.0)
    signal = imp.loc[["est:signal", "est:signal@rel"], "gain_share"].sum()
    noise = imp.loc[["est:random", "est:random@rel"], "gain_share"].sum()
    assert signal > 0.6
    assert noise < 0.15
    assert imp.index[0] in ("est:signal", "est:signal@rel")
    weights = linear_weights(pairs).set_index("feature")["weight"].abs()
    assert weights.idxmax() in ("est:signal", "est:signal@rel")
    assert weights[["est:random", "est:random@rel"]].max() < 0.2 * weights.max()


# --- determinism and missing values -----------------------------------------------------------


@pytest.mark.parametrize("name", LEARNED)
def test_two_fits_give_identical_scores(name):
    pairs = realistic_pairs(2, (6, 6))
    a = loto_scores(pairs, LEARNERS[name])
    b = loto_scores(pairs, LEARNERS[name])
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    imp_a, imp_b = feature_importances(pairs), feature_importances(pairs)
    pd.testing.assert_frame_equal(imp_a, imp_b, check_exact=True)


@pytest.mark.parametrize("name", LEARNED)
def test_nan_features_are_handled(name):
    pairs = one_feature_pairs(seed=3, n_targets=8, n_sources=6, noise=0.3, nan_rate=0.3)
    pairs["est:never_run"] = np.nan          # a probe run on no pair at all
    pairs.loc[pairs["target"] == "t0", "dist:weak"] = np.nan  # not run on one target
    assert pairs[feature_columns(pairs)].isna().any().all()
    scores = loto_scores(pairs, LEARNERS[name])
    assert len(scores) == len(pairs)
    if name == "ridge-transferability":  # today's method reads only dist: columns
        return
    assert np.isfinite(scores["score"]).all()
    if name != "best-on-average":  # sources s0..s5 recur; it ignores the features
        assert per_target_figures(pairs, scores, "kendall_tau").mean() > 0.4


# --- guardrails -------------------------------------------------------------------------------


def test_too_few_training_targets_are_refused_with_a_reason():
    pairs = one_feature_pairs(seed=0, n_targets=2, n_sources=6)
    scores = loto_scores(pairs)  # each target would train on 1 other
    assert scores.empty
    assert set(scores.attrs["refused"]) == {"t0", "t1"}
    assert "only 1 training target(s)" in scores.attrs["refused"]["t0"]
    with pytest.raises(RankerRefused, match="at least 2 needed"):
        fit_lgbm(pairs[pairs["target"] != "t0"], ["est:signal"])
    assert feature_importances(pairs[pairs["target"] != "t0"]) is None
    assert linear_weights(pairs[pairs["target"] != "t0"]) is None
    few = one_feature_pairs(seed=0, n_targets=3, n_sources=2)  # 2 targets x 2 = 4 pairs
    assert "only 4 training pair(s)" in loto_scores(few).attrs["refused"]["t0"]
    assert len(loto_scores(few, min_pairs=4)) == 6


def test_a_new_target_without_labels_is_ranked_from_the_others():
    pairs = one_feature_pairs(seed=0, n_targets=6, n_sources=6, noise=0.1)
    pairs.loc[pairs["target"] == "t5", "auc"] = np.nan
    scores = loto_scores(pairs, LGBM, targets=["t5"])
    assert len(scores) == 6 and np.isfinite(scores["score"]).all()


# --- the pair table ---------------------------------------------------------------------------


def test_pair_table_orients_and_differences_features():
    names = ["a", "b", "c"]
    truth = pd.DataFrame({"source": ["a", "b", "a"], "target": ["c", "c", "a"],
                          "auc": [0.8, 0.7, 0.99]})
    dist = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], dtype=float)
    est = pd.DataFrame({"source": ["a"], "target": ["c"], "score": [5.0]})
    expert = pd.DataFrame({"color": ["rgb", "gray", "rgb"], "n_classes": [10, 2, 5]},
                          index=names)
    pairs = pair_table(truth, distances={"otdd": (names, dist)}, scores={"logme": est},
                       datasets={"expert": expert}, sizes={"a": 1000, "b": 100, "c": 10},
                       signed=True)
    assert list(pairs["source"]) == ["a", "b"]  # the self pair is dropped
    assert pairs["dist:otdd"].tolist() == [-2.0, -3.0]
    assert pairs["est:logme"].tolist()[0] == 5.0 and np.isnan(pairs["est:logme"][1])
    assert pairs["expert:color|differs"].tolist() == [0.0, 1.0]
    assert pairs["expert:n_classes|abs"].tolist() == [5.0, 3.0]
    assert pairs["expert:n_classes|diff"].tolist() == [5.0, -3.0]
    assert pairs["size:log_ratio"].tolist() == pytest.approx([np.log(100), np.log(10)])
