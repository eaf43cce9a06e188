"""`bench recommend`: rank candidate sources for a target, by the method that has earned it.

The methods: every probe and estimator logged for the suite (smallest distance first), the
learned ranker (:mod:`benchmark.analysis.ranker`, fitted on every finished pair in the store
whose target is not the one it ranks) and the baselines best-on-average and static-size.
Without ``--method`` (``auto``) the method is chosen by its weighted Kendall tau on the suite's
OTHER targets (:mod:`benchmark.analysis.selection`: ties named, broken by lower regret, then the
cheaper method); the target being ranked never takes part, neither in the figures nor in the
learned ranker's training. Beside the winner's figure there (optimistic: the best of a dozen
methods on a few targets) stands the reliability of the whole procedure, nested: for each other
target, choose on the rest, score on it. Against a random pick: the exact permutation test
(:mod:`benchmark.analysis.nulls`). A target is never its own candidate unless asked
(``include_self``).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench_core.tracking import open_tracker
from benchmark.analysis.baselines import (BEST_ON_AVERAGE, RANDOM, STATIC_SIZE,
                                          mean_over_other_targets, size_score)
from benchmark.analysis.evaluation import (DECIDING, LEARNED, Evaluation, evaluate, figures,
                                           mean_figures)
from benchmark.analysis.gain import predict_gain
from benchmark.analysis.tables import combine, result_set_inputs, target_key
from benchmark.analysis.transfer_data import learning_pairs
from benchmark.analysis.inference import MIN_TARGETS
from benchmark.analysis.meta_dataset import dataset_tables, learned_scores, store_pairs
from benchmark.analysis.pair_features import LABEL, feature_columns, pair_table
from benchmark.analysis.ranker import DEFAULT_LEARNER, LEARNERS, refusal
from benchmark.analysis.ranking import truth_table
from benchmark.analysis.results import probe_scores, repeat_results, results_tables
from benchmark.analysis.selection import AUTO, nested_reliability, pick, require_choice
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from probes.tracking import load_probe_matrices
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.names import unknown_name_message
from registry.paths import BenchPaths
from registry.views import dataset_sizes, known_datasets


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """Sources for a target by one method, how that method was chosen, and every method's
    figures on the other targets; ``models``: the suite's and the published models scored on
    the target, when there are published models."""

    target: str
    method: str
    choice: dict[str, Any]     # how the method was chosen, its figures, ties, reliability
    ranking: pd.DataFrame      # source, score (higher = better)
    evaluation: pd.DataFrame   # per method on the other targets: figures with intervals
    models: pd.DataFrame | None = None


def as_scores(probes: dict) -> dict[str, pd.DataFrame]:
    """Method scores from a suite's probe matrices (names, distances) or score tables."""
    matrices = {k: v for k, v in probes.items() if isinstance(v, tuple)}
    return {**{k: v for k, v in probes.items() if not isinstance(v, tuple)},
            **probe_scores(matrices)}


def method_scores(results: pd.DataFrame, probes: dict, pairs: pd.DataFrame, suite: str | None
                  ) -> dict[str, pd.DataFrame]:
    """Every method's scores of ``results``' pairs besides the baselines (the evaluation adds
    those): the probes' and the learned ranker's (each target's from a model that never saw
    it, nor any target missing from ``pairs``); ``probes``: matrices or score tables."""
    return {**as_scores(probes), LEARNED: learned_scores(pairs, suite)}


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _figure(row: pd.Series | dict) -> dict[str, Any]:
    return {k: _num(row[k]) for k in (DECIDING, f"{DECIDING}_low", f"{DECIDING}_high",
                                      "top1_regret")} | {"n_targets": int(row["n_targets"])}


def _vs_random(row: pd.Series) -> dict[str, Any]:
    key = f"beats_random_{DECIDING}"
    return {"diff": _num(row[f"{key}_diff"]), "p": _num(row[f"{key}_p"]),
            "verdict": row[f"{key}_verdict"]}


def describe(summary: pd.DataFrame, method: str, chosen_by: str, *, tied_with=(),
             tie_break: str | None = None, runner_up: str | None = None,
             reliability: dict | None = None) -> dict[str, Any]:
    """The choice as JSON-ready facts and a message a user can weigh (:func:`choice_message`)."""
    rows = summary.set_index("method")
    if method not in rows.index:
        raise BenchError(f"No method '{method}' was scored on the other targets.",
                         f"Use {AUTO} or one of {sorted(m for m in rows.index if m != RANDOM)}.")
    row = rows.loc[method]
    better = [m for m, r in rows.iterrows()
              if m != RANDOM and r[f"beats_random_{DECIDING}_verdict"] == "better"]
    out = {"chosen_by": chosen_by, "method": method, **_figure(row),
           "vs_random": _vs_random(row), "tied_with": list(tied_with), "tie_break": tie_break,
           "better_than_random": better, "reliability": reliability}
    out["distinguishable_from_random"] = out["vs_random"]["verdict"] == "better"
    if runner_up is not None:
        out |= {"runner_up_method": runner_up,
                **{f"runner_up_{k}": v for k, v in _figure(rows.loc[runner_up]).items()}}
    return out | {"message": choice_message(out)}


def _iv(value, low, high) -> str:
    if value is None:
        return "undefined"
    return f"{value:+.3f}" + ("" if low is None else f" [{low:+.3f}, {high:+.3f}]")


def _against(verdict: str) -> str:
    """A verdict against a random pick in words."""
    return {"better": "better than a random pick", "worse": "worse than a random pick",
            "not distinguishable": "not distinguishable from a random pick"}.get(
        verdict, f"{verdict} against a random pick")


def choice_message(out: dict) -> str:
    """The choice in sentences: the method and how it was chosen (ties named), its weighted
    tau on the other targets, its test against a random pick, the nested reliability of the
    procedure, the runner-up; and plainly when nothing beats a random pick."""
    vs = out["vs_random"]
    where = f"on the {out.get('evidence', 'suite' + chr(39) + 's')} {out['n_targets']} other " \
        "target(s)"
    tie = (f"; tied with {' and '.join(out['tied_with'])} on weighted tau, chosen by "
           f"{out['tie_break']}" if out["tied_with"] else "")
    if 0 < out["n_targets"] < MIN_TARGETS[DECIDING]:
        where += (f" (fewer than {MIN_TARGETS[DECIDING]}: an interval whose coverage "
                  "was not checked)")
    head = (f"Ranked by {out['method']} ({out['chosen_by']}{tie}): weighted tau "
            f"{_iv(out[DECIDING], out[f'{DECIDING}_low'], out[f'{DECIDING}_high'])} {where}")
    p = "" if vs["p"] is None else f" (permutation p = {vs['p']:.3g})"
    head += "." if vs["verdict"] is None else f", {_against(vs['verdict'])}{p}."
    rel = out["reliability"] or {}
    if rel.get("n_targets"):
        nested_vs = rel.get("vs_random") or {}
        against = ("" if nested_vs.get("verdict") is None else
                   f", {_against(nested_vs['verdict'])} (p = {nested_vs['p']:.3g})")
        head += (f" The whole procedure, nested (choose on the others, score on the held-out "
                 f"target, over {rel['n_targets']} targets): weighted tau "
                 f"{_iv(rel[DECIDING], rel.get(f'{DECIDING}_low'), rel.get(f'{DECIDING}_high'))}"
                 f"{against}; expect that for a new target, not the winner's figure.")
    if not out["better_than_random"]:
        head += (" No method is distinguishable from a random pick there: treat this ranking "
                 "as a guess; more targets (a wider suite) would tell the methods apart.")
    elif not out["distinguishable_from_random"]:
        head += (f" Better than a random pick there: {', '.join(out['better_than_random'])} "
                 f"(--method {out['better_than_random'][0]}).")
    if out.get("runner_up_method"):
        runner = [out[f"runner_up_{DECIDING}{end}"] for end in ("", "_low", "_high")]
        head += f" Runner-up: {out['runner_up_method']}, weighted tau {_iv(*runner)}."
    return head


def unjudged(method: str) -> dict[str, Any]:
    """The choice of a method the user named when the suite has no other finished target to
    judge it on: it ranks, and the message says its reliability is unknown."""
    return {"chosen_by": "asked for", "method": method, "n_targets": 0,
            "distinguishable_from_random": False, "better_than_random": [], "tied_with": [],
            "reliability": None,
            "message": f"Ranked by {method} (asked for). The suite has no other finished "
                       "target to judge it on, so how far to trust this ranking is unknown; "
                       "run the suite on more targets to measure it."}


def _auto_without(held: str, others: pd.DataFrame, probes: dict, pairs: pd.DataFrame,
                  suite: str, sizes: dict, include_self: bool) -> str | None:
    """The ``auto`` choice made without ``held`` (nor the target being ranked)."""
    rest = others[others["target"] != held]
    if rest.empty:
        return None
    scores = method_scores(rest, probes, pairs[pairs["target"] != held], suite)
    choice = pick(mean_figures(figures(rest, scores, sizes, include_self=include_self)))
    return None if choice is None else choice["method"]


def judge(target: str, method: str, results: pd.DataFrame, probes: dict,
          pairs: pd.DataFrame, suite: str, sizes: dict[str, float],
          include_self: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every method's figures on the suite's targets other than ``target`` (the evaluation
    summary) and the choice of a method for it: ``target``'s results and pairs take no part,
    neither in the figures nor in the learned ranker's training. With ``auto`` the choice
    carries the nested reliability of the procedure."""
    others = results[results["target"] != target]
    if others.empty and method != AUTO:
        return pd.DataFrame(columns=["method", "kind"]), unjudged(method)
    if others.empty:
        raise BenchError(f"Suite '{suite}' has no finished results on targets other than "
                         f"'{target}' to judge the methods on.",
                         f"Run `bench run --suite {suite}` with more targets.")
    pairs = pairs[pairs["target"] != target]
    ev = evaluate(others, method_scores(others, probes, pairs, suite), sizes,
                  include_self=include_self)
    if method == AUTO:
        return ev.summary, _auto_choice(ev, others, probes, pairs, suite, sizes, include_self)
    if method not in set(ev.summary["method"]):  # rank() says what is known
        return ev.summary, {"method": method, "chosen_by": "asked for"}
    best = pick(mean_figures(ev.per_target[ev.per_target["method"] != method]))
    return ev.summary, describe(ev.summary, method, "asked for",
                                runner_up=None if best is None else best["method"])


def _auto_choice(ev: Evaluation, others, probes, pairs, suite, sizes, include_self
                 ) -> dict[str, Any]:
    choice = require_choice(pick(mean_figures(ev.per_target)))
    targets = sorted(others["target"].unique())
    reliability = (nested_reliability(ev, lambda h: _auto_without(
        h, others, probes, pairs, suite, sizes, include_self), targets)
        if len(targets) > 1 else None)
    return describe(ev.summary, choice["method"], "best weighted tau on the other targets",
                    tied_with=choice["tied_with"], tie_break=choice["tie_break"],
                    runner_up=choice["runner_up"], reliability=reliability)


def rank(target: str, candidates: list[str], method: str, probes: dict, pairs: pd.DataFrame,
         results: pd.DataFrame, sizes: dict[str, float], paths: BenchPaths,
         catalog: Catalog, include_self: bool = False,
         datasets: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """``target``'s candidates, best first, by ``method`` (a probe, the learned ranker or a
    baseline); the learned ranker is fitted on every pair whose target is not ``target``;
    best-on-average leaves out a source's transfer to itself unless ``include_self``, as its
    evaluation does (:func:`mean_over_other_targets`); ``results``: the suite's transfer
    results per repeat (source, target, repeat, auc)."""
    if method == LEARNED:
        test = test_pairs(target, candidates, probes, sizes, paths, catalog, datasets)
        score = _learned_for(target, test, pairs)
    elif method == BEST_ON_AVERAGE:
        mean = mean_over_other_targets(truth_table(results, include_self), target)
        score = [mean.get(s, np.nan) for s in candidates]
    elif method == STATIC_SIZE:
        score = [size_score(sizes, s) for s in candidates]
    elif method in probes:
        table = as_scores({method: probes[method]})[method]
        mine = table[table["target"] == target].set_index("source")["score"]
        score = [float(mine.get(s, np.nan)) for s in candidates]
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


def test_pairs(target: str, candidates: list[str], probes: dict, sizes: dict[str, float],
               paths: BenchPaths, catalog: Catalog,
               datasets: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """``target``'s candidate pairs with the features the learned models read: each method's
    score of the pair (a suite's probe matrices as ``dist:``, a result set's scores as
    ``est:``, as their training pairs have them), the datasets' meta-feature differences (a
    result set's own, else the registry's), the sizes."""
    truth = pd.DataFrame({"source": candidates, "target": target, LABEL: np.nan})
    names = sorted({*candidates, _plain(target)})
    tables = dataset_tables(names, paths, catalog)
    for key, table in (datasets or {}).items():
        tables[key] = pd.concat([table, tables[key].drop(index=table.index, errors="ignore")])
    if target != _plain(target):  # a result set's target key: the dataset's own row
        tables = {k: pd.concat([t, t.loc[[_plain(target)]].set_axis([target])])
                  if _plain(target) in t.index else t for k, t in tables.items()}
    matrices = {k: v for k, v in probes.items() if isinstance(v, tuple)}
    return pair_table(truth, distances=matrices, scores=as_scores(
        {k: v for k, v in probes.items() if not isinstance(v, tuple)}), datasets=tables,
        sizes=sizes)


def _plain(target: str) -> str:
    """A dataset's name from a combined result set's target key (``SET:NAME``)."""
    return target.split(":", 1)[1] if ":" in target else target


def _learned_for(target: str, test: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    train = pairs[pairs["target"] != target].dropna(subset=[LABEL])
    why = refusal(train)
    if why:
        raise BenchError(f"The learned ranker cannot rank '{target}': {why}.",
                         "Run the benchmark on more targets, or use --method with a probe.")
    features = [c for c in feature_columns(train) if train[c].notna().any()]
    test = test.reindex(columns=[*test.columns, *(f for f in features if f not in test)])
    return LEARNERS[DEFAULT_LEARNER](train.sort_values(["target", "suite", "source"],
                                                       kind="stable"), test, features)


def _check_target(name: str, given: str, suite, paths: BenchPaths, catalog: Catalog) -> None:
    """A target is a registered dataset, a catalog card or a dataset of the suite; a typo
    fails here rather than being ranked for by the methods that never read the target."""
    known = known_datasets(catalog, paths) | set(suite.dataset_names())
    if name not in known:
        raise BenchError(unknown_name_message("target", given, sorted(known))
                         + " It is not a registered dataset, a catalog card or a dataset of "
                         f"suite '{suite.name}'.",
                         "See `bench datasets`; register a new one with `bench add-dataset`.")


def with_gain(ranking: pd.DataFrame, target: str, test: pd.DataFrame, pairs: pd.DataFrame
              ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The ranking with each candidate's predicted gain over scratch (Eq. 1, %) and its
    prediction interval (:mod:`benchmark.analysis.gain`, trained on every pair whose target is
    not ``target``), and what the interval rests on."""
    train = pairs[pairs["target"] != target]
    if "transferability" not in train or train["transferability"].notna().sum() == 0:
        return ranking, {"reason": "no pair with a scratch baseline to learn the gain from"}
    gain = predict_gain(train, test)
    table = ranking.merge(gain.table, on="source", how="left")
    info = {"level": gain.level, "n_targets": gain.n_targets, "n_pairs": gain.n_pairs,
            "loto_coverage": gain.coverage, "reason": gain.reason}
    return table, info


def recommend_from_store(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                         method: str = AUTO, tracking_uri: str | None = None,
                         catalog: Catalog | None = None, include_self: bool = False
                         ) -> Recommendation:
    """Rank ``suite``'s sources for ``target`` from the suite's finished results and probes and
    every finished pair in the store, by ``method`` (``auto``: chosen on the other targets),
    with each source's predicted gain over scratch."""
    catalog = catalog or Catalog.load()
    name = catalog.key(target)
    resolved = resolve_suite(suite)
    _check_target(name, target, resolved, paths, catalog)
    tracker = open_tracker(paths, f"transfer-bench/{resolved.name}", tracking_uri)
    sizes = dataset_sizes(paths, catalog)
    with contextlib.redirect_stdout(sys.stderr):
        _, folds = results_tables(tracker, resolved.name)
        probes = load_probe_matrices(tracker, resolved.name)
        pairs = store_pairs(paths, tracking_uri, sizes, catalog)
    results = repeat_results(folds)
    evaluation, choice = judge(name, method, results, probes, pairs, resolved.name, sizes,
                               include_self)
    candidates = [s.name for s in resolved.sources if include_self or s.name != name]
    ranking = rank(name, candidates, choice["method"], probes, pairs, results, sizes,
                   paths, catalog, include_self)
    test = test_pairs(name, list(ranking["source"]), probes, sizes, paths, catalog)
    ranking, gain = with_gain(ranking, name, test, pairs)
    return Recommendation(target=name, method=choice["method"], choice={**choice,
                          "gain_model": gain}, ranking=ranking, evaluation=evaluation)


def recommend_from_tables(target: str, names: list[str], paths: BenchPaths, *,
                          method: str = AUTO, catalog: Catalog | None = None,
                          include_self: bool = False) -> Recommendation:
    """Rank candidates for ``target`` from result sets ``names`` (imported or built-in), each
    target judged within its own table (:func:`benchmark.analysis.tables.combine`): the
    target's own candidates when a table holds it (``SET:TARGET`` when several do), else every
    candidate of the tables, for a new dataset the registry knows."""
    catalog = catalog or Catalog.load()
    inputs = combine([result_set_inputs(n, paths, catalog) for n in names])
    results = inputs.results()
    key = target_key(target, results, names, catalog, paths)
    pairs = learning_pairs(inputs)
    evaluation, choice = judge(key, method, results, inputs.scores, pairs, None, inputs.sizes,
                               include_self)
    if "n_targets" in choice and "message" in choice:
        choice["message"] = choice_message({**choice, "evidence": "result sets'"})
    held = results[results["target"] == key]
    candidates = sorted(held["source"].unique()) if len(held) else \
        sorted(set(results["source"]) - {_plain(key)})
    ranking = rank(key, candidates, choice["method"], inputs.scores, pairs, results,
                   inputs.sizes, paths, catalog, include_self, datasets=inputs.datasets)
    test = test_pairs(key, list(ranking["source"]), inputs.scores, inputs.sizes, paths,
                      catalog, inputs.datasets)
    ranking, gain = with_gain(ranking, key, test, pairs)
    return Recommendation(target=key, method=choice["method"], choice={
        **choice, "gain_model": gain, "result_sets": names, "protocols": inputs.methods.get(
            "_protocols", {})}, ranking=ranking, evaluation=evaluation)
