"""The predicted gain over scratch and its cross-conformal interval, and bench recommend on
result sets: coverage on exchangeable targets, the negative-transfer flag, targets kept inside
their own tables, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.gain import (GAIN, conformal_half_width, loto_coverage,
                                     negative_transfer, predict_gain)
from registry.errors import BenchError
from result_files import plain_files


def pairs(n_targets: int, seed: int = 0, n_sources: int = 6) -> pd.DataFrame:
    """Pairs whose transferability is 5 x a feature plus noise, targets exchangeable."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_targets):
        shift = rng.normal(0, 1)
        for s in range(n_sources):
            x = rng.normal()
            rows.append({"source": f"s{s}", "target": f"t{t}", "auc": 0.8,
                         "est:signal": x, GAIN: 5 * x + shift + rng.normal(0, 1)})
    return pd.DataFrame(rows)


def test_the_interval_covers_held_out_targets_at_its_level():
    train = pairs(20, seed=1)
    coverage = loto_coverage(train)
    assert 0.88 <= coverage <= 1.0
    test = pairs(1, seed=99).assign(target="new")
    got = predict_gain(train, test)
    assert got.n_targets == 20 and got.coverage == pytest.approx(coverage)
    width = (got.table["gain_high"] - got.table["gain_low"]).to_numpy()
    assert np.allclose(width, width[0]) and 0 < width[0] < 20
    truth = test[GAIN].to_numpy()
    assert np.corrcoef(got.table["predicted_gain"], truth)[0, 1] > 0.8


def test_the_half_width_is_the_conformal_quantile():
    residuals = np.arange(1.0, 20.0)             # 19 values: ceil(0.95 * 20) = 19th
    assert conformal_half_width(residuals, 0.95) == 19.0
    assert conformal_half_width(np.arange(1.0, 10.0), 0.95) == np.inf  # too few for 95 %


def test_negative_transfer_flags():
    assert negative_transfer(-3.0, -0.5) == "likely"
    assert negative_transfer(-1.0, 2.0) == "possible"
    assert negative_transfer(1.0, 4.0) == ""


def test_too_few_targets_give_no_interval_and_say_why():
    got = predict_gain(pairs(2), pairs(1).assign(target="new"))
    assert got.table["predicted_gain"].isna().all() and "3 are needed" in got.reason


def _import(cli, files, name, **changes):
    frame = pd.read_csv(files["results"])
    for k, v in changes.items():
        frame[k] = v(frame) if callable(v) else v
    path = files["results"].with_name(f"{name}.csv")
    frame.to_csv(path, index=False)
    res = cli("results", "import", path, "--name", name, "--scores", files["scores"],
              "--attributes", files["attributes"])
    assert res.exit_code == 0, res.stderr


def test_recommend_on_result_sets_keeps_each_target_in_its_table(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in", n_targets=4)
    _import(cli, files, "paper-a")
    _import(cli, files, "paper-b", auc=lambda f: f["auc"] + 0.01)
    res = cli("recommend", "--target", "t1", "--results", "paper-a,paper-b", "--json")
    assert res.exit_code == 1 and "is in several result sets" in res.stderr
    res = cli("recommend", "--target", "paper-a:t1", "--results", "paper-a,paper-b", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["target"] == "paper-a:t1" and {r["source"] for r in doc["ranking"]} == \
        {"a", "b", "c", "d"}
    assert {"predicted_gain", "gain_low", "gain_high", "negative_transfer"} <= \
        set(doc["ranking"][0])
    assert doc["choice"]["gain_model"]["n_targets"] == 7   # every target but paper-a:t1
    assert doc["choice"]["result_sets"] == ["paper-a", "paper-b"]
    assert "result sets' 7 other target(s)" in doc["choice"]["message"]
    one = cli("recommend", "--target", "t1", "--results", "paper-a", "--method", "good",
              "--json")
    assert one.exit_code == 0 and one.json()["target"] == "t1"


def test_recommend_on_result_sets_never_reads_the_targets_results(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in", n_targets=5)
    _import(cli, files, "clean")
    frame = pd.read_csv(files["results"])
    rows = frame["target"] == "t2"
    frame.loc[rows, "auc"] = 1.6 - frame.loc[rows, "auc"]       # t2's ranking reversed
    frame.to_csv(tmp_path / "poisoned.csv", index=False)
    assert cli("results", "import", tmp_path / "poisoned.csv", "--name", "poisoned",
               "--scores", files["scores"], "--attributes", files["attributes"]).exit_code == 0
    a = cli("recommend", "--target", "t2", "--results", "clean", "--json").json()
    b = cli("recommend", "--target", "t2", "--results", "poisoned", "--json").json()
    assert a["ranking"] == b["ranking"] and a["method"] == b["method"]


def test_result_sets_of_different_metrics_are_not_pooled(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in")
    _import(cli, files, "auc-set")
    frame = pd.read_csv(files["results"]).rename(columns={"auc": "accuracy"})
    frame.to_csv(tmp_path / "acc.csv", index=False)
    assert cli("results", "import", tmp_path / "acc.csv", "--name", "acc-set").exit_code == 0
    res = cli("recommend", "--target", "t0", "--results", "auc-set,acc-set")
    assert res.exit_code == 1 and "different metrics" in res.stderr


def test_an_unknown_target_is_refused(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in")
    _import(cli, files, "mine")
    res = cli("recommend", "--target", "nowhere", "--results", "mine")
    assert res.exit_code == 1 and "no target of mine" in " ".join(res.stderr.split())


def test_combine_refuses_nothing_it_should_keep(tmp_path):
    from benchmark.analysis.tables import combine
    from benchmark.analysis.transfer_data import inputs_from_table
    from registry.result_readers import read_any

    files = plain_files(tmp_path)
    table = read_any(files["results"], scores=[files["scores"]])
    a, b = inputs_from_table(table, "a"), inputs_from_table(table, "b")
    both = combine([a, b])
    assert set(both.results()["target"]) == {f"{x}:t{k}" for x in "ab" for k in range(3)}
    assert len(both.scores["good"]) == 2 * len(a.scores["good"])
    with pytest.raises(BenchError, match="different metrics"):
        combine([a, inputs_from_table(read_any(files["results"], metric="auc"), "c")
                 .__class__(**{**b.__dict__, "metric": "accuracy"})])
