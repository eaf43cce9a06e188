"""The coverage benchmark (tests/bench/bench_coverage.py) on tiny settings: its table is
complete, its t-interval covers a known mean at the nominal rate, and its estimand of a random
ranking's taus is 0 within the Monte-Carlo error."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).parent / "bench" / "bench_coverage.py"
_SPEC = importlib.util.spec_from_file_location("bench_coverage", _PATH)
bc = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_coverage"] = bc  # dataclasses look their module up
_SPEC.loader.exec_module(bc)

TINY = ["--quick", "--sims", "30", "--targets", "3,5", "--designs", "4x2",
        "--estimand-targets", "5000", "--boot", "99", "--boot-2stage", "100"]


def test_the_quick_run_tables_every_method_at_every_number_of_targets(tmp_path, capsys):
    out = tmp_path / "coverage.json"
    result = bc.main([*TINY, "--out", str(out)])
    text = capsys.readouterr().out
    cells = {(r["method"], r["targets"]) for r in result["coverage"]}
    assert cells == set(itertools.product(bc.METHODS, (3, 5)))
    assert len(result["coverage"]) == len(bc.METHODS) * 2 * len(bc.PANELS)
    assert "| method | T=3 | T=5 |" in text
    for method in bc.METHODS:
        assert f"| {method} |" in text
    assert out.exists() and not out.with_name(out.name + ".tmp").exists()
    valid = [r for r in result["coverage"] if r["coverage"] is not None]
    assert all(r["sims"] == 30 and 0 <= r["coverage"] <= 1 for r in valid)
    fisher = [r for r in result["coverage"] if r["method"] == "t-fisher-z"]
    assert {r["series"] for r in fisher if r["coverage"] is None} >= {"strong-weak", "weak-null"}


def test_the_t_interval_covers_a_known_normal_mean_at_the_nominal_rate():
    rng = np.random.default_rng(3)
    n, t, mean = 8000, 5, 0.3
    block = bc.Block(rng.normal(mean, 1.0, size=(1, n, t, 1)), np.ones(1), 0)
    low, high = bc.t_interval(block, rng, bc.Config())
    coverage = float(((low <= mean) & (mean <= high)).mean())
    assert coverage == pytest.approx(0.95, abs=0.01)  # binomial se 0.0024
    p_low, p_high = bc.bayesian_bootstrap(block, rng, bc.Config(n_boot=199))
    assert float(((p_low <= mean) & (mean <= p_high)).mean()) < 0.9  # too narrow at 5 targets


def test_the_estimand_of_a_random_ranking_is_zero_for_the_taus():
    mean, se = bc.estimands(np.random.default_rng(1), bc.Config(estimand_targets=50_000), (4, 2))
    for metric in ("weighted_tau", "kendall_tau"):
        i = bc.PANELS.index(("null", metric))
        assert 0 < se[i] < 0.01
        assert abs(mean[i]) < 4 * se[i]
    regret = bc.PANELS.index(("null", "top1_regret"))
    assert mean[regret] > 10 * se[regret]  # a random pick loses AUC on average


def test_repeat_draws_are_enumerated_with_their_probabilities():
    counts, probs, full = bc.repeat_outcomes(2)
    assert counts.tolist() == [[0, 2], [1, 1], [2, 0]]
    assert probs.tolist() == [0.25, 0.5, 0.25] and full == 1
    counts, probs, full = bc.repeat_outcomes(3)
    assert len(counts) == 10 and probs.sum() == pytest.approx(1.0)
    assert counts[full].tolist() == [1, 1, 1] and probs[full] == pytest.approx(6 / 27)


def test_covered_from_is_the_fewest_targets_from_which_every_cell_reaches_the_floor():
    assert bc.covered_from({3: 0.90, 5: 0.94, 8: 0.92, 20: 0.95, 50: 0.96}) == 20
    assert bc.covered_from({3: 0.95, 5: 0.94}) == 3
    assert bc.covered_from({3: 0.95, 5: 0.80}) is None
