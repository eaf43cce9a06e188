"""`bench recommend`: rank candidate sources for a target, by the method that has earned it.

The methods: every probe and estimator logged for the suite (smallest distance first), the
learned ranker (:mod:`benchmark.analysis.ranker`, fitted on every finished pair in the store
whose target is not the one it ranks) and the baselines best-on-average and static-size.
Without ``--method`` (``auto``) the method is chosen by its weighted Kendall tau on the suite's
OTHER targets (the target being ranked never takes part: its pairs are left out of the
evaluation and of the learned ranker's training, so the choice is as honest as the figure),
with a 95 % bootstrap interval (targets and repeats resampled) and a paired comparison against
a random pick on the same resamples. When the chosen method is not distinguishable from random,
the recommendation says so. A target is never its own candidate unless asked (``include_self``).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench_core.tracking import open_tracker
from benchmark.analysis.assessment import LEARNED
from benchmark.analysis.baselines import size_score
from benchmark.analysis.fidelity import baseline_score_tables
from benchmark.analysis.intervals import bootstrap_evaluation, summary_with_intervals
from benchmark.analysis.meta_dataset import dataset_tables, learned_scores, store_pairs
from benchmark.analysis.pair_features import LABEL, feature_columns, pair_table
from benchmark.analysis.ranker import DEFAULT_LEARNER, LEARNERS, refusal
from benchmark.analysis.ranking import drop_self
from benchmark.analysis.results import probe_scores, repeat_results, results_tables
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from probes.logging import load_probe_matrices
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.names import unknown_name_message
from registry.paths import BenchPaths
from registry.store import RegistryStore
from registry.views import dataset_sizes

AUTO = "auto"
CHOOSE_BY = "weighted_tau"


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """Sources for a target by one method, how that method was chosen, and every method's
    figures on the other targets; ``models``: the suite's and the published models scored on
    the target, when there are published models."""

    target: str
    method: str
    choice: dict[str, Any]     # how the method was chosen, its figure and interval, the verdict
    ranking: pd.DataFrame      # source, score (higher = better)
    evaluation: pd.DataFrame   # per method on the other targets: figures with intervals
    models: pd.DataFrame | None = None


def method_scores(results: pd.DataFrame, probes: dict, pairs: pd.DataFrame, suite: str,
                  sizes: dict[str, float], include_self: bool = False) -> dict[str, pd.DataFrame]:
    """Every method's scores of ``results``' pairs: the probes', the learned ranker's (each
    target's from a model that never saw it) and the two baselines with scores."""
    scores = dict(probe_scores(probes))
    scores[LEARNED] = learned_scores(pairs, suite)
    return scores | baseline_score_tables(results, sizes, include_self)


def evaluate_methods(results: pd.DataFrame, scores: dict[str, pd.DataFrame],
                     sizes: dict[str, float], include_self: bool = False,
                     n_boot: int = 1000) -> pd.DataFrame:
    """Each method's figures on ``results`` with bootstrap intervals and paired verdicts (the
    baselines best-on-average and static-size appear once, as baselines)."""
    own = {k: v for k, v in scores.items() if k not in ("best-on-average", "static-size")}
    boot = bootstrap_evaluation(results, own, sizes, n_boot=n_boot, include_self=include_self)
    summary = summary_with_intervals(boot)
    return summary.assign(kind=summary["kind"].where(summary["method"] != LEARNED, LEARNED))


def choose(evaluation: pd.DataFrame, method: str = AUTO) -> dict[str, Any]:
    """The method to rank with (``method``, or ``auto``: the best weighted tau on the other
    targets) and the runner-up, with their figures, intervals and verdict against random.
    ``auto`` chooses among the methods with a figure on every judged target: a method scored
    on fewer (one easy target) would win on less evidence than the others had."""
    rows = evaluation[evaluation["method"] != "random"].dropna(subset=[CHOOSE_BY])
    rows = rows[rows["n_targets"] == rows["n_targets"].max()] if len(rows) else rows
    rows = rows.sort_values(CHOOSE_BY, ascending=False, kind="stable")
    if method == AUTO:
        if rows.empty:
            raise BenchError("No method has a figure on the suite's other targets, so none "
                             "can be chosen honestly.", "Run the suite on more targets, or "
                             "name a method with --method.")
        chosen = rows.iloc[0]
    else:
        found = evaluation[evaluation["method"] == method]
        chosen = found.iloc[0] if len(found) else None
    runner = rows[rows["method"] != (chosen["method"] if chosen is not None else method)]
    out = {"chosen_by": "best weighted tau on the other targets" if method == AUTO
           else "asked for", "method": method if chosen is None else chosen["method"]}
    for prefix, row in (("", chosen), ("runner_up_", runner.iloc[0] if len(runner) else None)):
        if row is None:
            continue
        out[f"{prefix}method"] = row["method"]
        for key in (CHOOSE_BY, f"{CHOOSE_BY}_low", f"{CHOOSE_BY}_high"):
            out[f"{prefix}{key}"] = _num(row[key])
        key = f"beats_random_{CHOOSE_BY}"
        out[f"{prefix}vs_random"] = {f: _num(row[f"{key}_{f}"]) if f != "verdict"
                                     else row[f"{key}_verdict"]
                                     for f in ("diff", "low", "high", "win_share", "verdict")}
    verdict = out.get("vs_random", {}).get("verdict")
    out["distinguishable_from_random"] = verdict == "better"
    out["better_than_random"] = [r["method"] for _, r in rows.iterrows()
                                 if r[f"beats_random_{CHOOSE_BY}_verdict"] == "better"]
    out["n_targets"] = int(chosen["n_targets"]) if chosen is not None else 0
    out["message"] = choice_message(out)
    return out


def _figure(out: dict, prefix: str = "") -> str:
    value = out.get(f"{prefix}{CHOOSE_BY}")
    if value is None:
        return "undefined"
    low, high = out.get(f"{prefix}{CHOOSE_BY}_low"), out.get(f"{prefix}{CHOOSE_BY}_high")
    return f"{value:+.3f}" + ("" if low is None else f" [{low:+.3f}, {high:+.3f}]")


def choice_message(out: dict) -> str:
    """The choice in a sentence a user can weigh: the method, how it was chosen, its weighted
    tau on the other targets with its 95 % interval, its verdict against a random pick, the
    runner-up; and plainly, when nothing beats a random pick."""
    vs = out.get("vs_random") or {}
    where = f"on the suite's {out['n_targets']} other target(s)"
    against = ("" if vs.get("diff") is None else
               f" (difference {vs['diff']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}], "
               f"better in {100 * vs['win_share']:.0f}% of resamples)")
    runner = (f" Runner-up: {out['runner_up_method']}, weighted tau {_figure(out, 'runner_up_')}."
              if out.get("runner_up_method") else "")
    if out["distinguishable_from_random"]:
        return (f"Ranked by {out['method']} ({out['chosen_by']}): weighted tau {_figure(out)} "
                f"{where}, better than a random pick{against}.{runner}")
    if out["better_than_random"]:
        return (f"Ranked by {out['method']} ({out['chosen_by']}): weighted tau {_figure(out)} "
                f"{where}, not distinguishable from a random pick{against}. Better than a "
                f"random pick there: {', '.join(out['better_than_random'])} (--method "
                f"{out['better_than_random'][0]}).{runner}")
    return (f"Ranked by {out['method']} ({out['chosen_by']}), but no method is "
            f"distinguishable from a random pick {where}: {out['method']} has weighted tau "
            f"{_figure(out)}{against}. Treat this ranking as a guess; more targets (a wider "
            f"suite) would tell the methods apart.{runner}")


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def unjudged(method: str) -> dict[str, Any]:
    """The choice of a method the user named when the suite has no other finished target to
    judge it on: it ranks, and the message says its reliability is unknown."""
    return {"chosen_by": "asked for", "method": method, "n_targets": 0,
            "distinguishable_from_random": False, "better_than_random": [],
            "message": f"Ranked by {method} (asked for). The suite has no other finished "
                       "target to judge it on, so how far to trust this ranking is unknown; "
                       "run the suite on more targets to measure it."}


def judge(target: str, method: str, results: pd.DataFrame, probes: dict,
          pairs: pd.DataFrame, suite: str, sizes: dict[str, float],
          include_self: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every method's figures on the suite's targets other than ``target`` and the choice of
    a method for it (:func:`choose`): ``target``'s results and pairs take no part, neither in
    the figures nor in the learned ranker's training."""
    others = results[results["target"] != target]
    if others.empty and method != AUTO:
        return pd.DataFrame(columns=["method", "kind"]), unjudged(method)
    if others.empty:
        raise BenchError(f"Suite '{suite}' has no finished results on targets other than "
                         f"'{target}' to judge the methods on.",
                         f"Run `bench run --suite {suite}` with more targets.")
    scores = method_scores(others, probes, pairs[pairs["target"] != target], suite, sizes,
                           include_self)
    evaluation = evaluate_methods(others, scores, sizes, include_self)
    return evaluation, choose(evaluation, method)


def rank(target: str, candidates: list[str], method: str, probes: dict, pairs: pd.DataFrame,
         transfers: pd.DataFrame, sizes: dict[str, float], paths: BenchPaths,
         catalog: Catalog, include_self: bool = False) -> pd.DataFrame:
    """``target``'s candidates, best first, by ``method`` (a probe, the learned ranker or a
    baseline); the learned ranker is fitted on every pair whose target is not ``target``;
    best-on-average leaves out a source's transfer to itself unless ``include_self``, as its
    evaluation does (:func:`best_on_average_scores`)."""
    if method == LEARNED:
        score = _learned_for(target, candidates, probes, pairs, sizes, paths, catalog)
    elif method == "best-on-average":
        others = drop_self(transfers[transfers["target"] != target], include_self)
        mean = others.groupby("source")["auc_mean"].mean()
        score = [mean.get(s, np.nan) for s in candidates]
    elif method == "static-size":
        score = [size_score(sizes, s) for s in candidates]
    elif method in probes:
        names, matrix = probes[method]
        idx = {n: i for i, n in enumerate(names)}
        score = [-float(matrix[idx[s], idx[target]]) if s in idx and target in idx else np.nan
                 for s in candidates]
    else:
        raise BenchError(f"No method '{method}' for these datasets.",
                         f"Use {AUTO}, {LEARNED}, best-on-average, static-size or a logged "
                         f"probe ({', '.join(probes) or 'none logged'}); run the suite with "
                         "that probe, or `bench probe` on the sources and the target.")
    ranked = pd.DataFrame({"source": candidates, "score": np.asarray(score, dtype=float)})
    ranked = ranked.dropna(subset=["score"]).sort_values("score", ascending=False,
                                                         kind="stable")
    if ranked.empty:
        raise BenchError(f"Method '{method}' has no score for any source of '{target}'.",
                         f"Run the probe on the sources and '{target}' (`bench probe {method} "
                         f"--datasets {','.join([*candidates, target])}`), or use another "
                         "--method.")
    return ranked.reset_index(drop=True)


def _learned_for(target, candidates, probes, pairs, sizes, paths, catalog) -> np.ndarray:
    train = pairs[pairs["target"] != target].dropna(subset=[LABEL])
    why = refusal(train)
    if why:
        raise BenchError(f"The learned ranker cannot rank '{target}': {why}.",
                         "Run the benchmark on more targets, or use --method with a probe.")
    truth = pd.DataFrame({"source": candidates, "target": target, LABEL: np.nan})
    names = sorted({*candidates, target})
    test = pair_table(truth, distances=probes, datasets=dataset_tables(names, paths, catalog),
                      sizes=sizes)
    features = [c for c in feature_columns(train) if train[c].notna().any()]
    test = test.reindex(columns=[*test.columns, *(f for f in features if f not in test)])
    return LEARNERS[DEFAULT_LEARNER](train.sort_values(["target", "suite", "source"],
                                                       kind="stable"), test, features)


def _check_target(name: str, given: str, suite, paths: BenchPaths, catalog: Catalog) -> None:
    """A target is a registered dataset, a catalog card or a dataset of the suite; a typo
    fails here rather than being ranked for by the methods that never read the target."""
    known = set(catalog.cards) | set(suite.dataset_names())
    if paths.registry_db.is_file():
        known |= set(RegistryStore(paths.registry_db).names())
    if name not in known:
        raise BenchError(unknown_name_message("target", given, sorted(known))
                         + " It is not a registered dataset, a catalog card or a dataset of "
                         f"suite '{suite.name}'.",
                         "See `bench datasets`; register a new one with `bench add-dataset`.")


def recommend_from_store(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                         method: str = AUTO, tracking_uri: str | None = None,
                         catalog: Catalog | None = None, include_self: bool = False
                         ) -> Recommendation:
    """Rank ``suite``'s sources for ``target`` from the suite's finished results and probes and
    every finished pair in the store, by ``method`` (``auto``: chosen on the other targets)."""
    catalog = catalog or Catalog.load()
    name = catalog.key(target)
    resolved = resolve_suite(suite)
    _check_target(name, target, resolved, paths, catalog)
    tracker = open_tracker(paths, f"transfer-bench/{resolved.name}", tracking_uri)
    sizes = dataset_sizes(paths, catalog)
    with contextlib.redirect_stdout(sys.stderr):
        table, folds = results_tables(tracker, resolved.name)
        probes = load_probe_matrices(tracker, resolved.name)
        pairs = store_pairs(paths, tracking_uri, sizes, catalog)
    evaluation, choice = judge(name, method, repeat_results(folds), probes, pairs,
                               resolved.name, sizes, include_self)
    candidates = [s.name for s in resolved.sources if include_self or s.name != name]
    transfers = table[table["kind"] == "transfer"]
    ranking = rank(name, candidates, choice["method"], probes, pairs, transfers, sizes,
                   paths, catalog, include_self)
    return Recommendation(target=name, method=choice["method"], choice=choice,
                          ranking=ranking, evaluation=evaluation)
