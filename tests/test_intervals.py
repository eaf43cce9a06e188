"""Bootstrap intervals, paired comparisons, the corrected noise ceiling and the SITE checks,
against independent computations (the evaluation module's own functions, loops, closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.baselines import (best_on_average_scores, random_expectation,
                                          static_size_scores)
from benchmark.analysis.ceiling import (corrected_ceiling, corrected_noise_ceiling,
                                        reliability_of_mean)
from benchmark.analysis.evaluation import evaluate_probes, summarize
from benchmark.analysis.fidelity import (baseline_score_tables, fidelity, largest_sources,
                                         leave_largest_out, without_sources)
from benchmark.analysis.intervals import (bootstrap_evaluation, evaluate_with_intervals,
                                          paired_comparison, paired_comparisons,
                                          per_target_intervals, pooled_intervals,
                                          summary_with_intervals)
from benchmark.analysis.ranking import METRICS, ranking_agreement, truth_table


def suite(seed: int, n_targets: int = 4, n_sources: int = 6, repeats: int = 3,
          noise: float = 0.05, same: bool = False, n_probes: int = 2):
    """A synthetic suite: results, sizes, latent truth and probes (random and noisy-truth)."""
    rng = np.random.default_rng(seed)
    names = [f"d{i}" for i in range(n_sources)]
    targets = names[:n_targets]
    latent = {(s, t): rng.random() for t in targets for s in names if s != t}
    rows = [{"source": s, "target": t, "repeat": r,
             "auc": mu if same else mu + rng.normal(0, noise)}
            for (s, t), mu in latent.items() for r in range(repeats)]
    sizes = {s: int(rng.integers(100, 100_000)) for s in names}
    probes = {f"p{k}": pd.DataFrame([{"source": s, "target": t, "score": rng.random()}
                                     for (s, t) in latent]) for k in range(n_probes)}
    return pd.DataFrame(rows), sizes, latent, probes


def table_of(values: dict, column: str = "score") -> pd.DataFrame:
    return pd.DataFrame([{"source": s, "target": t, column: v} for (s, t), v in values.items()])


# --- point estimates are today's figures --------------------------------------------------------


def test_point_estimates_equal_evaluate_probes_and_summarize():
    results, sizes, latent, probes = suite(1, noise=0.1)
    results["auc"] = results["auc"].round(1)           # ties in the truth
    probes["p0"]["score"] = probes["p0"]["score"].round(1)  # ties in a probe
    probes["p1"].loc[3, "score"] = np.nan               # a NaN score (ranked last)
    results = results.drop(index=[5])                   # a missing repeat
    boot = bootstrap_evaluation(results, probes, sizes, n_boot=20)
    evaluation = evaluate_probes(results, probes, sizes)
    reference = summarize(evaluation).set_index("method")
    pooled = pooled_intervals(boot).set_index("method")
    per_target = per_target_intervals(boot)
    assert list(pooled.index) == list(reference.index)
    for metric in METRICS:
        np.testing.assert_allclose(pooled[metric], reference[metric], rtol=0, atol=1e-12)
        merged = per_target.merge(evaluation, on=["method", "target"], suffixes=("", "_ref"))
        np.testing.assert_allclose(merged[metric].astype(float),
                                   merged[f"{metric}_ref"].astype(float), rtol=0, atol=1e-12)
    assert (merged["n_sources"] == merged["n_sources_ref"]).all()


# --- identical repeats: nothing to resample ----------------------------------------------------


def test_identical_repeats_collapse_the_repeat_bootstrap_and_the_ceiling_is_one():
    results, sizes, _, probes = suite(2, repeats=3, same=True)
    per_target = per_target_intervals(bootstrap_evaluation(results, probes, sizes, n_boot=50))
    for metric in METRICS:
        point = per_target[metric].to_numpy(dtype=float)
        for bound in ("low", "high"):
            np.testing.assert_array_equal(per_target[f"{metric}_{bound}"].to_numpy(float),
                                          point)
    ceiling = corrected_noise_ceiling(results, n_boot=50)
    for column in ("noise_ceiling", "noise_ceiling_low", "noise_ceiling_high", "split_half"):
        assert (ceiling[column] == 1.0).all(), column
    # with 2 repeats the pooled interval is still exactly [1, 1]
    two, *_ = suite(2, repeats=2, same=True)
    pooled = corrected_noise_ceiling(two, n_boot=50).query("scope == 'pooled'").iloc[0]
    assert (pooled["noise_ceiling"], pooled["noise_ceiling_low"],
            pooled["noise_ceiling_high"]) == (1.0, 1.0, 1.0)


def test_noise_widens_the_intervals():
    clean, sizes, latent, probes = suite(3, n_targets=5, repeats=3, same=True)
    noisy, *_ = suite(3, n_targets=5, repeats=3, noise=0.08)
    probes = {"oracle": table_of(latent), "p0": probes["p0"]}
    width = {}
    for name, results in (("clean", clean), ("noisy", noisy)):
        boot = bootstrap_evaluation(results, probes, sizes, n_boot=300, seed=4)
        t = per_target_intervals(boot).set_index(["method", "target"])
        p = pooled_intervals(boot).set_index("method")
        width[name] = {m: ((t.loc[m, "kendall_tau_high"] - t.loc[m, "kendall_tau_low"]).to_numpy(),
                           p.loc[m, "kendall_tau_high"] - p.loc[m, "kendall_tau_low"])
                       for m in probes}
    # no noise: the repeat bootstrap cannot move anything; the oracle is 1 on every resample
    assert all((width["clean"][m][0] == 0).all() for m in probes)
    assert width["clean"]["oracle"][1] == 0
    assert width["clean"]["p0"][1] > 0          # resampling targets still moves a random probe
    # noise: the truth now moves with the drawn repeats
    for m in probes:
        assert (width["noisy"][m][0] >= 0).all() and width["noisy"][m][0].max() > 0
    assert width["noisy"]["oracle"][1] > 0


# --- the interval against a brute-force loop on the same draws ---------------------------------


def brute_force_pooled(results, probes, sizes, boot):
    """Per resample: rebuild each slot's truth from its drawn repeats with pandas, score every
    method with the evaluation module's functions, pool by the mean over slots."""
    names = boot.methods
    pooled = {m: {k: [] for k in METRICS} for m in names}
    for b in range(boot.slots.shape[0]):
        truths, targets = [], []
        for k, ti in enumerate(boot.slots[b]):
            target = boot.targets[ti]
            drawn = [rid for r, rid in enumerate(boot.repeat_ids[ti])
                     for _ in range(boot.counts[b, k, r])]
            assert len(drawn) == len(boot.repeat_ids[ti])
            rows = results[(results["target"] == target) & (results["source"] != target)]
            by_repeat = rows.set_index(["source", "repeat"])["auc"]
            truth = pd.Series({s: np.mean([by_repeat[(s, r)] for r in drawn])
                               for s in sorted(rows["source"].unique())})
            truths.append(truth)
            targets.append(target)
        per_slot = {m: {k: [] for k in METRICS} for m in names}
        for k, (target, truth) in enumerate(zip(targets, truths)):
            others = [truths[j] for j in range(len(truths)) if targets[j] != target]
            boa = pd.concat(others, axis=1).mean(axis=1) if others else pd.Series(dtype=float)
            scores = {"random": None,
                      "best-on-average": pd.Series({s: boa.get(s, np.nan) for s in truth.index}),
                      "static-size": pd.Series({s: math.log10(sizes[s]) for s in truth.index})}
            for name, table in probes.items():
                part = table[table["target"] == target]
                scores[name] = pd.Series(part["score"].to_numpy(), index=part["source"])
            for m in names:
                res = (random_expectation(truth) if m == "random"
                       else ranking_agreement(truth, scores[m]))
                for metric in METRICS:
                    per_slot[m][metric].append(np.nan if res[metric] is None else res[metric])
        for m in names:
            for metric in METRICS:
                pooled[m][metric].append(np.nanmean(per_slot[m][metric]))
    return pooled


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_interval_equals_a_brute_force_loop_on_the_same_draws():
    results, sizes, _, probes = suite(5, n_targets=3, n_sources=5, repeats=2, noise=0.1)
    boot = bootstrap_evaluation(results, probes, sizes, n_boot=25, seed=9)
    table = pooled_intervals(boot).set_index("method")
    brute = brute_force_pooled(results, probes, sizes, boot)
    for m in boot.methods:
        for metric in METRICS:
            low, high = np.nanpercentile(brute[m][metric], [2.5, 97.5])
            assert table.loc[m, f"{metric}_low"] == pytest.approx(low, abs=1e-12), (m, metric)
            assert table.loc[m, f"{metric}_high"] == pytest.approx(high, abs=1e-12), (m, metric)
    # a paired difference the same way: p0 against best-on-average, regret flipped
    diffs = np.array(brute["best-on-average"]["top1_regret"]) - brute["p0"]["top1_regret"]
    got = paired_comparison(boot, "p0", "best-on-average", "top1_regret")
    assert got["low"] == pytest.approx(np.percentile(diffs, 2.5), abs=1e-12)
    assert got["win_share"] == pytest.approx(float(np.mean(diffs > 0)))


def test_a_two_by_three_table_enumerated_by_hand():
    """2 targets x 3 sources x 2 repeats; a probe that ranks a > b > c everywhere."""
    aucs = {("a", "t1"): [0.9, 0.7], ("b", "t1"): [0.8, 0.8], ("c", "t1"): [0.6, 0.6],
            ("a", "t2"): [0.5, 0.9], ("b", "t2"): [0.8, 0.8], ("c", "t2"): [0.4, 0.4]}
    results = pd.DataFrame([{"source": s, "target": t, "repeat": r, "auc": v}
                            for (s, t), vs in aucs.items() for r, v in enumerate(vs)])
    probe = table_of({k: {"a": 3.0, "b": 2.0, "c": 1.0}[k[0]] for k in aucs})
    boot = bootstrap_evaluation(results, {"p": probe}, {"a": 1, "b": 2, "c": 3}, n_boot=200)
    # by hand: t1's truth is a > b > c whatever the draw (a: 0.9, 0.8 or 0.7 ... b = 0.8 ties
    # a when a draws one of each: then tau-b = 2/sqrt(2*3)); t2's truth: a draws {0.5, 0.5}
    # -> b > a > c (regret 0.3, tau 1/3), {0.5, 0.9} -> a = 0.7 < b (tau 1/3, regret 0.1),
    # {0.9, 0.9} -> a > b > c (tau 1, regret 0)
    mixed = 2 / math.sqrt(6)
    possible = {round(v, 12) for v in (1.0, 1 / 3, mixed)}
    t_draws = boot.target_draws[boot.index("p"), METRICS.index("kendall_tau")]
    assert {round(v, 12) for v in t_draws[:, 1]} <= {round(1 / 3, 12), 1.0}
    assert {round(v, 12) for v in t_draws[:, 0]} <= possible
    # top1 regret on t2 is 0.3, 0.1 or 0 with probabilities 1/4, 1/2, 1/4
    regret = boot.target_draws[boot.index("p"), METRICS.index("top1_regret"), :, 1]
    values, freq = np.unique(np.round(regret, 12), return_counts=True)
    assert list(values) == [0.0, 0.1, 0.3]
    np.testing.assert_allclose(freq / freq.sum(), [0.25, 0.5, 0.25], atol=0.08)
    t2 = per_target_intervals(boot).query("method == 'p' and target == 't2'").iloc[0]
    assert (t2["top1_regret_low"], t2["top1_regret_high"]) == pytest.approx((0.0, 0.3))


# --- the ceiling and the probes ----------------------------------------------------------------


def test_a_probe_equal_to_the_truth_is_not_below_the_corrected_ceiling():
    results, sizes, latent, _ = suite(6, n_targets=30, n_sources=10, repeats=2, noise=0.12,
                                      n_probes=0)
    truth = truth_table(results).rename(columns={"auc": "score"})
    probes = {"observed": truth, "latent": table_of(latent)}
    ceiling = corrected_noise_ceiling(results, n_boot=300)
    summary, per_target = evaluate_with_intervals(results, probes, sizes, n_boot=300,
                                                  ceiling=ceiling)
    s = summary.set_index("method")
    pooled = ceiling.query("scope == 'pooled'").iloc[0]
    assert s.loc["observed", "kendall_tau"] == 1.0 >= pooled["noise_ceiling_low"]
    assert bool(s.loc["observed", "above_ceiling"]) is True     # it fits the noise too
    # the noise-free predictor reaches the corrected ceiling, beyond the split-half value
    latent_tau = s.loc["latent", "kendall_tau"]
    assert latent_tau >= pooled["noise_ceiling_low"]
    assert latent_tau <= pooled["noise_ceiling_high"]
    assert latent_tau > pooled["split_half_high"]
    assert {"noise_ceiling_low", "above_ceiling"} <= set(per_target.columns)


def test_a_random_probe_interval_of_weighted_tau_holds_zero():
    results, sizes, _, probes = suite(7, n_targets=30, n_sources=8, n_probes=1)
    boot = bootstrap_evaluation(results, probes, sizes, n_boot=500, seed=1)
    row = pooled_intervals(boot).set_index("method").loc["p0"]
    assert row["weighted_tau_low"] < 0 < row["weighted_tau_high"]
    assert paired_comparison(boot, "p0", "random", "weighted_tau")["verdict"] == \
        "not distinguishable"


def test_paired_difference_of_a_method_with_itself_is_zero():
    results, sizes, _, probes = suite(8, noise=0.1)
    boot = bootstrap_evaluation(results, probes, sizes, n_boot=100)
    for metric in METRICS:
        got = paired_comparison(boot, "p0", "p0", metric)
        assert got == {"diff": 0.0, "low": 0.0, "high": 0.0, "win_share": 0.0,
                       "verdict": "not distinguishable"}
    table = paired_comparisons(boot)
    same = table[table["method"] == table["baseline"]]
    assert (same["diff"] == 0).all() and (same["verdict"] == "not distinguishable").all()


def test_verdicts_and_the_summary_columns():
    results, sizes, latent, _ = suite(10, n_targets=8, n_sources=7, noise=0.02, n_probes=0)
    probes = {"good": table_of(latent), "bad": table_of({k: -v for k, v in latent.items()})}
    boot = bootstrap_evaluation(results, probes, sizes, n_boot=300)
    summary = summary_with_intervals(boot).set_index("method")
    for metric in METRICS:
        assert summary.loc["good", f"beats_random_{metric}_verdict"] == "better"
        assert summary.loc["bad", f"beats_random_{metric}_verdict"] == "worse"
        assert summary.loc["good", f"beats_random_{metric}_win_share"] == 1.0
    for b in ("random", "best_on_average", "static_size"):
        for field in ("diff", "low", "high", "win_share", "verdict"):
            assert f"beats_{b}_weighted_tau_{field}" in summary.columns
    # JSON-friendly: plain scalars
    summary.reset_index().to_json(orient="records")


def test_best_on_average_is_resampled_from_the_other_targets_or_held_fixed():
    results, sizes, _, probes = suite(11, n_targets=5, noise=0.1)
    fixed_table = {"boa-fixed": best_on_average_scores(results)}
    held = bootstrap_evaluation(results, fixed_table, sizes, n_boot=100,
                                resample_best_on_average=False)
    moved = bootstrap_evaluation(results, fixed_table, sizes, n_boot=100)
    i, j = held.index("best-on-average"), held.index("boa-fixed")
    np.testing.assert_allclose(held.draws[i], held.draws[j], atol=1e-12)
    assert not np.allclose(moved.draws[i], moved.draws[j], equal_nan=True)
    np.testing.assert_allclose(moved.point[i], moved.point[j], atol=1e-12)


# --- the correction against its closed form ----------------------------------------------------


@pytest.mark.parametrize("tau", [0.05, 0.3, 0.5, 0.8, 0.99])
@pytest.mark.parametrize("repeats", [2, 4])
def test_spearman_brown_correction_against_the_closed_form(tau, repeats):
    r = math.sin(math.pi * tau / 2)
    k = 2  # halves of R/2 -> R: Spearman-Brown with a factor 2
    rel = k * r / (1 + (k - 1) * r)
    expected = 2 / math.pi * math.asin(math.sqrt(rel))
    assert float(corrected_ceiling(tau, repeats)) == pytest.approx(expected, abs=1e-12)
    assert float(corrected_ceiling(tau, repeats)) > tau


@pytest.mark.parametrize("lam", [0.1, 1.0, 7.0])
@pytest.mark.parametrize("a,b", [(1, 2), (2, 3), (1, 1)])
def test_reliability_of_unequal_halves_inverts_the_classical_model(lam, a, b):
    rho = lambda m: m * lam / (1 + m * lam)  # noqa: E731
    r = math.sqrt(rho(a) * rho(b))
    assert float(reliability_of_mean(r, a, b, a + b)) == pytest.approx(rho(a + b), abs=1e-12)


def test_correction_edges():
    assert float(corrected_ceiling(1.0, 2)) == 1.0 and float(corrected_ceiling(1.0, 3)) == 1.0
    assert float(corrected_ceiling(0.0, 3)) == 0.0 and float(corrected_ceiling(-0.4, 2)) == 0.0
    assert np.isnan(corrected_ceiling(np.nan, 3)) and np.isnan(corrected_ceiling(0.5, 1))


# --- the SITE checks ---------------------------------------------------------------------------


def test_fidelity_against_numpy():
    results, sizes, _, probes = suite(12, n_targets=4, n_sources=6, noise=0.05, n_probes=1)
    probes["p0"].loc[2, "score"] = np.nan      # a source without a score drops out
    table = fidelity(results, probes, n_boot=50)
    truth = truth_table(results)
    all_dx, all_dy = [], []
    for target in sorted(truth["target"].unique()):
        t = truth[truth["target"] == target].set_index("source")["auc"]
        p = probes["p0"][probes["p0"]["target"] == target].set_index("source")["score"]
        common = [s for s in t.index if s in p.index and not np.isnan(p[s])]
        dx = [t[i] - t[j] for i in common for j in common if i != j]
        dy = [p[i] - p[j] for i in common for j in common if i != j]
        all_dx += dx
        all_dy += dy
        row = table.query("scope == 'target' and target == @target").iloc[0]
        assert row["fidelity"] == pytest.approx(np.corrcoef(dx, dy)[0, 1], abs=1e-12)
        assert row["n_pairs"] == len(dx) // 2
        assert row["fidelity_low"] <= row["fidelity"] <= row["fidelity_high"]
    pooled = table.query("scope == 'pooled'").iloc[0]
    assert pooled["fidelity"] == pytest.approx(np.corrcoef(all_dx, all_dy)[0, 1], abs=1e-12)
    # a method whose scores are the truth has fidelity 1
    perfect = fidelity(results, {"t": truth.rename(columns={"auc": "score"})}, n_boot=20)
    assert perfect.query("scope == 'pooled'")["fidelity"].iloc[0] == pytest.approx(1.0)


def test_leave_largest_out_removes_exactly_the_largest_source():
    results, sizes, _, probes = suite(13, n_targets=4, n_sources=7, noise=0.05)
    largest = max(sizes, key=sizes.get)
    assert largest_sources(results, sizes) == [largest]
    reduced = without_sources(results, [largest])
    assert set(reduced["source"]) == set(results["source"]) - {largest}
    assert set(reduced["target"]) == set(results["target"])   # still a target if it was one
    assert len(results) - len(reduced) == (results["source"] == largest).sum()
    table = leave_largest_out(results, probes, sizes, n_boot=50).set_index("method")
    assert (table["left_out"] == largest).all()
    expected = summarize(evaluate_probes(
        reduced, {k: without_sources(v, [largest]) for k, v in probes.items()},
        sizes)).set_index("method")
    before = summarize(evaluate_probes(results, probes, sizes)).set_index("method")
    for metric in METRICS:
        for m in expected.index:
            assert table.loc[m, f"{metric}_without"] == pytest.approx(expected.loc[m, metric],
                                                                      abs=1e-12)
            assert table.loc[m, f"{metric}_all"] == pytest.approx(before.loc[m, metric],
                                                                  abs=1e-12)


def test_static_size_is_one_list_for_every_target_and_a_method_table():
    results, sizes, _, probes = suite(14, n_targets=4, n_sources=6)
    static = static_size_scores(results, sizes)
    assert list(static.columns) == ["source", "target", "score"]
    per_source = static.groupby("source")["score"].nunique()
    assert (per_source == 1).all()
    for s, v in static.groupby("source")["score"].first().items():
        assert v == pytest.approx(math.log10(sizes[s]))
    # usable as a method by evaluate_probes-style code, ranking as the static-size baseline
    evaluation = evaluate_probes(results, {"static": static}, sizes)
    a = evaluation[evaluation["method"] == "static"].set_index("target")
    b = evaluation[evaluation["method"] == "static-size"].set_index("target")
    for metric in METRICS:
        np.testing.assert_allclose(a[metric].astype(float), b[metric].astype(float))
    assert set(baseline_score_tables(results, sizes)) == {"best-on-average", "static-size"}
