"""Which method to rank a target's sources with, chosen on the OTHER targets only, and how far
that whole procedure can be trusted.

The choice (``auto``): among the methods with a figure on every judged target, the highest mean
weighted tau; methods within :data:`~benchmark.analysis.inference.TIE_TOL` of it are TIED and
named as such; a tie goes to the lower mean top-1 regret, then to the cheaper method
(:func:`cost`), then to the name. Nothing depends on the order a tracking store returns runs in.

The winner's own figure on the other targets is optimistic: it is the best of a dozen methods
on a few targets (the winner's curse). The honest figure is the nested one
(:func:`nested_reliability`): for every target h, choose on the targets other than h (and the
target being ranked), score the chosen method on h, and average over h. That is the
reliability of the procedure a user relies on, and it is reported beside the winner's figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from benchmark.analysis.baselines import BEST_ON_AVERAGE, RANDOM, STATIC_SIZE
from benchmark.analysis.evaluation import DECIDING, LEARNED, Evaluation
from benchmark.analysis.inference import TIE_TOL, mean_interval, p_verdict
from benchmark.analysis.nulls import compare_with_null, mean_null
from probes.base import PROBES
from registry.errors import BenchError

AUTO = "auto"
REGRET = "top1_regret"
UNKNOWN_COST = 9  # a method this installation does not know (an imported score column)


def cost(method: str) -> int:
    """How much a method costs to run for a new target, by tier (lower = cheaper): 0 the
    baselines (nothing to compute), a probe's ``cost`` (1 the catalog card, 2 statistics of
    the data, 3 a forward pass of every source model, 4 training a network or solving optimal
    transport), 5 the learned ranker (it needs every probe), 9 an unknown method."""
    if method in (RANDOM, BEST_ON_AVERAGE, STATIC_SIZE):
        return 0
    if method == LEARNED:
        return 5
    return PROBES.get(method).cost if method in PROBES.names() else UNKNOWN_COST


def ordered(means: pd.DataFrame) -> pd.DataFrame:
    """The methods of a :func:`~benchmark.analysis.evaluation.mean_figures` table that can be
    chosen (not random; a figure on every judged target), best first by the rule of the module
    docstring; columns of ``means`` plus ``cost``."""
    rows = means[(means["method"] != RANDOM) & means[DECIDING].notna()]
    if rows.empty:
        return rows.assign(cost=[])
    rows = rows[rows["n_targets"] == rows["n_targets"].max()]
    rows = rows.assign(cost=[cost(m) for m in rows["method"]],
                       _tau=np.floor(rows[DECIDING] / TIE_TOL),
                       _regret=rows[REGRET].fillna(np.inf))
    rows = rows.sort_values(["_tau", "_regret", "cost", "method"],
                            ascending=[False, True, True, True], kind="stable")
    return rows.drop(columns=["_tau", "_regret"]).reset_index(drop=True)


def pick(means: pd.DataFrame) -> dict[str, Any] | None:
    """The ``auto`` choice from the methods' mean figures: the method, the methods it tied
    with on weighted tau, and what broke the tie; None when nothing can be chosen."""
    rows = ordered(means)
    if rows.empty:
        return None
    first = rows.iloc[0]
    tied = rows[(rows[DECIDING] - first[DECIDING]).abs() <= TIE_TOL]
    others = tied.iloc[1:]
    rule = None
    if len(others):
        rule = ("its lower top-1 regret" if (others[REGRET] > first[REGRET] + TIE_TOL).all()
                else "its lower cost" if (others["cost"] > first["cost"]).all()
                else "name (regret and cost equal)")
    return {"method": first["method"], "tied_with": list(others["method"]), "tie_break": rule,
            "runner_up": rows.iloc[1]["method"] if len(rows) > 1 else None}


def nested_reliability(evaluation: Evaluation, choose_without: Callable[[str], str | None],
                       targets: Iterable[str]) -> dict[str, Any]:
    """The selection procedure scored leave-one-target-out: for each target h of ``targets``,
    ``choose_without(h)`` picks a method without h's results, and that method's figures on h
    (from ``evaluation``, whose learned scores for h never saw h) are the procedure's there.
    Returns the mean weighted tau and regret with their intervals, the test against a random
    ranking (the chosen methods' nulls on their targets combined), and each target's pick."""
    per = evaluation.per_target.set_index(["method", "target"])
    picks = []
    for h in targets:
        chosen = choose_without(h)
        row = per.loc[(chosen, h)] if chosen is not None and (chosen, h) in per.index else None
        picks.append({"target": h, "method": chosen,
                      DECIDING: np.nan if row is None else float(row[DECIDING]),
                      REGRET: np.nan if row is None else float(row[REGRET])})
    table = pd.DataFrame(picks, columns=["target", "method", DECIDING, REGRET])
    tau = mean_interval(table[DECIDING], DECIDING, np.random.default_rng(0))
    regret = mean_interval(table[REGRET], REGRET, np.random.default_rng(1), evaluation.regret_cap)
    out = {"n_targets": tau.n, DECIDING: tau.mean, f"{DECIDING}_low": tau.low,
           f"{DECIDING}_high": tau.high, REGRET: regret.mean, f"{REGRET}_low": regret.low,
           f"{REGRET}_high": regret.high}
    picks = [{k: _json(v) for k, v in pick_.items()} for pick_ in table.to_dict("records")]
    return {k: _json(v) for k, v in out.items()} | {
        "picks": picks, "vs_random": _nested_vs_random(evaluation, table)}


def _json(value):
    """NaN as None (JSON null); numbers as plain floats."""
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


def _nested_vs_random(evaluation: Evaluation, table: pd.DataFrame) -> dict[str, Any]:
    scored = table.dropna(subset=[DECIDING])
    nulls = [evaluation.nulls.get((m, DECIDING), {}).get(t) for m, t in
             zip(scored["method"], scored["target"])]
    if not nulls or any(n is None for n in nulls):
        return {"p": None, "verdict": None}
    test = compare_with_null(mean_null(nulls, np.random.default_rng(0)),
                             float(scored[DECIDING].mean()))
    return {"p": test.p_greater,
            "verdict": p_verdict(test.p_greater, test.p_less, test.p_min)}


def require_choice(choice: dict[str, Any] | None) -> dict[str, Any]:
    if choice is None:
        raise BenchError("No method has a figure on the other targets, so none can be chosen "
                         "honestly.", "Run the suite on more targets, or name a method with "
                         "--method.")
    return choice
