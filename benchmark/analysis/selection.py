"""Which method to rank a target's sources with, chosen honestly: by each candidate method's
figure on the OTHER targets only (nested leave-one-target-out), so the choice for a target never
depends on its own results; and that procedure itself evaluated leave-one-target-out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.analysis.pair_features import LABEL, SCORE_COLUMNS
from benchmark.analysis.ranker import (MIN_PAIRS, MIN_TARGETS, Learner, loto_scores,
                                       per_target_figures)


@dataclass(frozen=True)
class Selection:
    target: str
    chosen: str | None
    runner_up: str | None
    figures: pd.DataFrame          # method, n_targets, figure (on the other targets only)
    reason: str | None = None      # why nothing was chosen


def _lower_is_better(metric: str) -> bool:
    return metric == "top1_regret"


def select_method(pairs: pd.DataFrame, target: str, *, fixed: Mapping[str, pd.DataFrame] = {},
                  learners: Mapping[str, Learner] = {}, features: list[str] | None = None,
                  metric: str = "kendall_tau", label: str = LABEL,
                  min_targets: int = MIN_TARGETS, min_pairs: int = MIN_PAIRS) -> Selection:
    """The method to rank ``target``'s candidates with, chosen WITHOUT looking at ``target``.

    Every candidate is scored by its mean ``metric`` over the OTHER targets (higher tau / lower
    top1_regret wins; ties go to the earlier method, ``fixed`` before ``learners``). Kendall tau
    by default: on synthetic data, choosing by regret (a noisier figure on 4-10 candidates) did
    worse on both figures. ``fixed``: score tables that do not depend on any label (a probe's -distance); only their rows for other
    targets are read. ``learners``: label-dependent methods, re-run leave-one-target-out on the
    pairs without ``target`` (nested LOTO), so their inner models never see ``target`` either.
    Methods are compared on the other targets where all of them have a figure.
    """
    inner = pairs[pairs["target"] != target]
    per = {}
    for name, table in fixed.items():
        per[name] = per_target_figures(inner, table[table["target"] != target], metric, label)
    for name, learner in learners.items():
        scores = loto_scores(inner, learner, features, label=label, min_targets=min_targets,
                             min_pairs=min_pairs)
        per[name] = per_target_figures(inner, scores, metric, label)
    wide = pd.DataFrame(per)
    usable = [m for m in wide.columns if wide[m].notna().any()]
    common = wide[usable].dropna()
    if len(usable) == 0 or len(common) < 2:
        figures = pd.DataFrame({"method": list(wide.columns), "n_targets": 0,
                                "figure": np.nan})
        return Selection(target, None, None, figures,
                         f"fewer than 2 other targets where every method has a {metric}")
    means = common.mean()
    figures = pd.DataFrame({"method": usable, "n_targets": len(common),
                            "figure": [float(means[m]) for m in usable]})
    order = figures.assign(_key=figures["figure"] * (1 if _lower_is_better(metric) else -1),
                           _pos=range(len(figures)))
    order = order.sort_values(["_key", "_pos"], kind="stable")
    names = list(order["method"])
    return Selection(target, names[0], names[1] if len(names) > 1 else None,
                     figures.reset_index(drop=True))


def nested_selection_scores(pairs: pd.DataFrame, *, fixed: Mapping[str, pd.DataFrame] = {},
                            learners: Mapping[str, Learner] = {},
                            features: list[str] | None = None, metric: str = "kendall_tau",
                            label: str = LABEL, min_targets: int = MIN_TARGETS,
                            min_pairs: int = MIN_PAIRS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The selection procedure itself, evaluated LOTO: for each target t, :func:`select_method`
    picks a method on the other targets, and t's scores are that method's LOTO scores for t (a
    learner fitted on all targets but t). Returns (scores: source, target, score, method;
    choices: target, chosen, runner_up, figure, runner_up_figure, reason)."""
    outer = {name: loto_scores(pairs, lrn, features, label=label, min_targets=min_targets,
                               min_pairs=min_pairs) for name, lrn in learners.items()}
    tables = {**fixed, **outer}
    frames, choices = [], []
    for t in sorted(pairs["target"].unique()):
        sel = select_method(pairs, t, fixed=fixed, learners=learners, features=features,
                            metric=metric, label=label, min_targets=min_targets,
                            min_pairs=min_pairs)
        fig = dict(zip(sel.figures["method"], sel.figures["figure"]))
        choices.append({"target": t, "chosen": sel.chosen, "runner_up": sel.runner_up,
                        "figure": fig.get(sel.chosen, np.nan),
                        "runner_up_figure": fig.get(sel.runner_up, np.nan),
                        "reason": sel.reason})
        if sel.chosen is not None:
            table = tables[sel.chosen]
            frames.append(table[table["target"] == t][list(SCORE_COLUMNS)]
                          .assign(method=sel.chosen))
    scores = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame(columns=[*SCORE_COLUMNS, "method"]))
    return scores, pd.DataFrame(choices)
