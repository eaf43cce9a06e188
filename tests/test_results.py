"""Result sets (transfer tables): the format and its refusals, import/list/show/remove through
the CLI, the published layouts (cats-scans, model-zoo) and `bench score` / `bench report
--results` on them, judged against independent computations with scipy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr, weightedtau

from registry.result_readers import read_any
from registry.transfer_table import (TransferTable, TransferTableError, read_table, validate,
                                     write_table)
from result_files import cats_scans_csv, model_zoo_csv, plain_files


def _rows_in_registry(home: Path) -> int:
    db = home / "registry.db"
    if not db.is_file():
        return 0
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        return con.execute("SELECT COUNT(*) FROM result_sets").fetchone()[0] \
            if "result_sets" in tables else 0


def _nothing_imported(home: Path) -> None:
    results = home / "results"
    assert _rows_in_registry(home) == 0
    assert not results.exists() or not any(results.iterdir())


# --- the format ---------------------------------------------------------------------------------


def test_a_table_round_trips_through_its_folder_with_a_stable_version(tmp_path):
    files = plain_files(tmp_path / "in")
    table = read_any(files["results"], scores=[files["scores"]], attributes=files["attributes"])
    folder = write_table(table, tmp_path / "out")
    doc = json.loads((folder / "datapackage.json").read_text())
    assert doc["profile"] == "tabular-data-package" and doc["version"] == table.version
    assert {r["name"] for r in doc["resources"]} == {"results", "scores"}
    back = read_table(folder)
    assert back.version == table.version
    pd.testing.assert_frame_equal(back.results.reset_index(drop=True),
                                  table.results.reset_index(drop=True), check_dtype=False)
    # pyarrow reads the resources as they are
    import pyarrow.parquet as pq

    assert pq.read_table(folder / "results.parquet").num_rows == len(table.results)
    # a file changed after export is refused: its content no longer has the recorded version
    changed = pd.read_parquet(folder / "results.parquet")
    changed.loc[0, "value"] += 0.01
    changed.to_parquet(folder / "results.parquet", index=False)
    with pytest.raises(TransferTableError, match="changed after export"):
        read_table(folder)


def test_the_version_is_the_content_not_the_name_or_the_date(tmp_path):
    files = plain_files(tmp_path)
    a = read_any(files["results"])
    b = TransferTable(results=a.results.sample(frac=1, random_state=0), meta={**a.meta,
                                                                            "name": "other"})
    assert validate(b).version == a.version
    c = TransferTable(results=a.results.assign(value=a.results["value"] + 1e-9), meta=a.meta)
    assert validate(c).version != a.version


BAD = {
    "missing column": (lambda f: f.drop(columns="repeat"), r"lacks column\(s\) \['repeat'\]"),
    "unknown candidate kind": (lambda f: f.assign(candidate_kind="planet"),
                               "'planet' is not one of"),
    "duplicated row": (lambda f: pd.concat([f, f.iloc[[3]]]),
                       r"row 4 \(candidate=.*\) is duplicated by row\(s\) 31"),
    "non-finite metric": (lambda f: f.assign(auc=f["auc"].where(f.index != 4, np.inf)),
                          "line 6|row 5"),
    "one candidate per target": (lambda f: f[f["candidate"].isin(["scratch", "a"])],
                                 "fewer than two candidates"),
    "not a number": (lambda f: f.assign(auc=f["auc"].astype(str).where(f.index != 2, "high")),
                     "line 4, column 'auc': 'high' is not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tables_are_refused_naming_row_and_column_and_nothing_is_imported(
        case, cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in")
    change, message = BAD[case]
    frame = change(pd.read_csv(files["results"]))
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    res = cli("results", "import", bad, "--name", "broken")
    assert res.exit_code == 1, res.stdout
    flat = " ".join(res.stderr.split())
    assert "bad.csv" in flat or case == "one candidate per target"
    import re

    assert re.search(message, flat), flat
    _nothing_imported(bench_home)


def test_non_finite_values_name_the_row(tmp_path):
    files = plain_files(tmp_path)
    frame = pd.read_csv(files["results"])
    frame.loc[4, "auc"] = np.inf
    frame.to_csv(files["results"], index=False)
    with pytest.raises(TransferTableError, match=r"row 5 \(candidate=.*column 'value'"):
        read_any(files["results"])


# --- import, list, show, remove -----------------------------------------------------------------


def test_import_is_idempotent_by_content_and_a_changed_table_needs_replace(cli, tmp_path,
                                                                           bench_home):
    files = plain_files(tmp_path / "in")
    args = ("results", "import", files["results"], "--name", "mine", "--scores",
            files["scores"], "--attributes", files["attributes"], "--json")
    first, again = cli(*args), cli(*args)
    assert first.exit_code == again.exit_code == 0, first.stderr
    assert first.json()["status"] == "imported" and again.json()["status"] == "unchanged"
    assert first.json()["version"] == again.json()["version"]
    assert _rows_in_registry(bench_home) == 1
    changed = pd.read_csv(files["results"])
    changed.loc[0, "auc"] += 0.01
    changed.to_csv(files["results"], index=False)
    refused = cli(*args)
    assert refused.exit_code == 1 and "exists with another content" in refused.stderr
    assert "--replace" in refused.stderr
    replaced = cli(*args, "--replace")
    assert replaced.exit_code == 0 and replaced.json()["status"] == "replaced"
    listed = cli("results", "--json").json()
    mine = next(r for r in listed if r["name"] == "mine")
    assert mine["rows"] == 30 and mine["targets"] == 3 and mine["candidates"] == 4
    shown = cli("results", "show", "mine", "--json").json()
    assert shown["descriptor"]["transfer_bench"]["metric"] == "auc"
    assert cli("results", "remove", "mine").exit_code == 0
    _nothing_imported(bench_home)
    missing = cli("results", "show", "mine")
    assert missing.exit_code == 1 and "Unknown result set 'mine'" in missing.stderr


def test_an_unvalidated_table_imported_from_python_gets_the_version_of_its_files(tmp_path,
                                                                                 paths):
    """The version was hashed before validation added the optional columns: the registry row
    and datapackage.json disagreed, and importing the stored table again was refused."""
    from registry.result_store import ResultStore

    table = read_any(plain_files(tmp_path / "in")["results"])
    raw = TransferTable(results=table.results.drop(columns=["fold", "config_hash"]),
                        meta=table.meta)
    assert raw.version != table.version  # validation changes what is hashed
    store = ResultStore(paths)
    first = store.import_table(raw, "api")
    doc = json.loads((first.record.path / "datapackage.json").read_text())
    assert first.status == "imported" and first.record.version == doc["version"]
    assert first.record.descriptor == doc  # the row holds the descriptor that was written
    assert store.import_table(store.load("api"), "api").status == "unchanged"


def test_a_plain_csv_with_two_metric_columns_needs_metric(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in")
    frame = pd.read_csv(files["results"]).assign(accuracy=0.5)
    frame.to_csv(files["results"], index=False)
    res = cli("results", "import", files["results"], "--name", "two")
    assert res.exit_code == 1 and "exactly one metric column" in res.stderr
    ok = cli("results", "import", files["results"], "--name", "two", "--metric", "auc",
             "--json")
    assert ok.exit_code == 1 and "not part of the format" in ok.stderr  # the other column
    _nothing_imported(bench_home)


# --- published layouts --------------------------------------------------------------------------


def test_cats_scans_layout_gives_fig4_of_the_paper_by_scipy(cli, tmp_path, bench_home):
    """Fig. 4 of van den Brandt et al. (2021): Spearman of the expert and the Task2Vec
    distance with the mean transferability over non-self rows (their file's score_k)."""
    path = cats_scans_csv(tmp_path / "aucs_scores_distances_experts.csv")
    res = cli("results", "import", path, "--name", "cats-scans", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["repeats_are"] == "folds of one split"
    rep = cli("report", "--results", "cats-scans", "--json")
    assert rep.exit_code == 0, rep.stderr
    corr = {(r["probe"], r["scope"]): r for r in rep.json()["correlations"]}
    raw = pd.read_csv(path, index_col=0)
    pairs = raw[raw["source"] != raw["target"]]
    transfer = pairs[[f"score_{k}" for k in range(1, 6)]].mean(axis=1)
    t2v = pairs[[f"distance_{k}" for k in range(1, 6)]].mean(axis=1)
    assert corr[("task2vec", "pooled")]["spearman_rho"] == pytest.approx(
        spearmanr(t2v, transfer).statistic)
    assert corr[("expert", "pooled")]["spearman_rho"] == pytest.approx(
        spearmanr(pairs["expert_distance"], transfer).statistic)
    methods = {r["method"] for r in rep.json()["evaluation"]}
    assert {"task2vec", "expert", "learned", "random", "best-on-average"} <= methods
    text = Path(rep.json()["report"]["evaluation_markdown"]).read_text()
    assert "folds of one split" in text
    html = Path(rep.json()["report"]["html"]).read_text()
    assert "result set cats-scans" in html


def test_model_zoo_layout_ranks_models_by_the_metric_alone(cli, tmp_path, bench_home):
    path = model_zoo_csv(tmp_path / "zoo.csv")
    assert cli("results", "import", path, "--name", "zoo").exit_code == 0
    rep = cli("report", "--results", "zoo", "--json")
    assert rep.exit_code == 0, rep.stderr
    doc = rep.json()
    assert {r["source"] for r in doc["results"]} == {"resnet18", "resnet50", "densenet121",
                                                     "mobilenet_v2", "inception_v3"}
    assert all(r["kind"] == "transfer" and r["transferability_mean"] is None
               for r in doc["results"])
    rows = {r["method"]: r for r in doc["evaluation"]}
    zoo = pd.read_csv(path)
    for target in ("aircraft", "cars", "dtd", "pets"):  # static-size = params, by scipy
        got = next(r for r in doc["evaluation_per_target"]
                   if r["method"] == "static-size" and r["target"] == target)
        assert got["weighted_tau"] == pytest.approx(
            weightedtau(zoo[target], np.log10(zoo["params"]), rank=None).statistic)
    assert "imagenet-accuracy" in rows


# --- bench score ---------------------------------------------------------------------------------


def test_bench_score_judges_a_method_against_an_existing_truth(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in", n_targets=5)
    assert cli("results", "import", files["results"], "--name", "truth").exit_code == 0
    rng = np.random.default_rng(3)
    scores = pd.read_csv(files["scores"]).rename(columns={"good": "mine"})[
        ["candidate", "target", "mine"]].assign(coinflip=lambda f: rng.random(len(f)))
    scores.to_csv(tmp_path / "mine.csv", index=False)
    res = cli("score", tmp_path / "mine.csv", "--results", "truth", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["submitted"] == ["coinflip", "mine"]
    truth = pd.read_csv(files["results"])
    truth = truth[truth["candidate"] != "scratch"].groupby(["candidate", "target"])["auc"].mean()
    for row in (r for r in doc["evaluation_per_target"] if r["method"] == "mine"):
        part = scores[scores["target"] == row["target"]].set_index("candidate")["mine"]
        t = truth.xs(row["target"], level="target").loc[part.index]
        assert row["weighted_tau"] == pytest.approx(
            weightedtau(t.to_numpy(), part.to_numpy(), rank=None).statistic)
    by = {r["method"]: r for r in doc["evaluation"]}
    assert by["mine"]["weighted_tau"] > 0.8
    assert by["mine"]["beats_random_weighted_tau_verdict"] == "better"
    assert by["coinflip"]["beats_random_weighted_tau_verdict"] == "not distinguishable"
    text = cli("score", tmp_path / "mine.csv", "--results", "truth")
    assert text.exit_code == 0 and "| mine |" in text.stdout


def test_bench_score_refuses_what_it_cannot_judge(cli, tmp_path, bench_home):
    files = plain_files(tmp_path / "in")
    assert cli("results", "import", files["results"], "--name", "truth",
               "--scores", files["scores"]).exit_code == 0
    clash = tmp_path / "clash.csv"
    pd.read_csv(files["scores"]).to_csv(clash, index=False)        # 'good' is the table's own
    res = cli("score", clash, "--results", "truth")
    assert res.exit_code == 1 and "already methods of 'truth'" in res.stderr
    elsewhere = tmp_path / "elsewhere.csv"
    pd.DataFrame({"candidate": ["x"], "target": ["y"], "m": [1.0]}).to_csv(elsewhere,
                                                                            index=False)
    res = cli("score", elsewhere, "--results", "truth")
    assert res.exit_code == 1 and "scores no (candidate, target) pair" in res.stderr
    nan = tmp_path / "nan.csv"
    pd.DataFrame({"candidate": ["a"], "target": ["t0"], "m": ["inf"]}).to_csv(nan, index=False)
    res = cli("score", nan, "--results", "truth")
    assert res.exit_code == 1 and "line 2, column 'm'" in res.stderr
    both = cli("score", nan)
    assert both.exit_code == 2 and "exactly one of --results NAME or --suite NAME" in both.stderr


# --- a suite's store, exported and imported elsewhere -------------------------------------------


@pytest.mark.slow
def test_a_suites_results_round_trip_to_the_same_evaluation(cli, tmp_path, bench_home,
                                                            monkeypatch):
    """Export a store's table, import it into a fresh BENCH_HOME where none of its datasets is
    registered, and `bench report --results` gives the store's evaluation figures."""
    from test_run import write_suite

    suite = write_suite(tmp_path, repeats=2, generality={"ks": []},
                        sources=[{"name": "digits"}, {"name": "texture-patches"}],
                        targets=[{"name": "lfw-faces"}, {"name": "histology-dab",
                                                         "max_samples": 120}])
    assert cli("run", "--suite", suite).exit_code == 0
    store = cli("report", "--suite", suite, "--json")
    assert store.exit_code == 0, store.stderr
    out = tmp_path / "exported"
    exported = cli("results", "export", "--suite", suite, "-o", out, "--json")
    assert exported.exit_code == 0, exported.stderr
    assert set(exported.json()["methods"]) == {"expert", "metafeatures"}
    fresh = tmp_path / "elsewhere"
    monkeypatch.setenv("BENCH_HOME", str(fresh))
    assert cli("results", "import", out, "--name", "tiny").exit_code == 0
    assert not (fresh / "cache").exists()       # nothing of the datasets was registered
    imported = cli("report", "--results", "tiny", "--json")
    assert imported.exit_code == 0, imported.stderr
    a = pd.DataFrame(store.json()["evaluation"]).set_index("method")
    b = pd.DataFrame(imported.json()["evaluation"]).set_index("method")
    assert set(a.index) == set(b.index) >= {"expert", "metafeatures", "learned", "random"}
    numbers = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c])]
    pd.testing.assert_frame_equal(a.loc[b.index, numbers].astype(float),
                                  b[numbers].astype(float), atol=1e-9, check_exact=False)
    ra = pd.DataFrame(store.json()["results"]).set_index(["target", "source", "kind"])
    rb = pd.DataFrame(imported.json()["results"]).set_index(["target", "source", "kind"])
    ra = ra[ra.index.get_level_values("kind") != "freeze"]
    np.testing.assert_allclose(ra.loc[rb.index, "auc_mean"], rb["auc_mean"], atol=1e-12)
    np.testing.assert_allclose(ra.loc[rb.index, "transferability_mean"].astype(float),
                               rb["transferability_mean"].astype(float), atol=1e-9)


def test_the_built_in_result_sets_load_on_a_fresh_home_and_are_package_data(cli, bench_home):
    from registry.result_store import BUILTIN_DIR, builtin_names

    assert "mnist" in builtin_names()
    listed = {r["name"]: r for r in cli("results", "--json").json()}
    assert listed["mnist"]["builtin"] is True and listed["mnist"]["targets"] == 3
    table = read_table(BUILTIN_DIR / "mnist")          # its content still has its version
    assert table.version == listed["mnist"]["version"]
    assert {"logme", "knn", "task2vec"} <= set(table.scores["method"])
    removed = cli("results", "remove", "mnist")
    assert removed.exit_code == 1 and "built-in result set" in removed.stderr
    import tomllib

    data = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "results_builtin/*/*" in data["tool"]["setuptools"]["package-data"]["registry"]


def test_a_result_set_page_links_to_no_mlflow_ui(cli, bench_home):
    """A result set has no MLflow experiment behind it: the best-source table linked each
    target's best source to '/#/experiments//runs?...', a page that does not exist."""
    assert cli("report", "--results", "mnist").exit_code == 0
    page = (bench_home / "reports" / "results-mnist" / "report.html").read_text()
    assert "picture-crops" in page and "#/experiments/" not in page


def test_the_built_in_wide_set_reproduces_its_published_weighted_taus(cli, bench_home, tmp_path):
    """The wide suite's table ships (8 targets x 9 sources, 3 repeats of 2 folds), and `bench
    score` on it gives the weighted taus docs/results.md publishes, which an independent
    computation from the table's rows (scipy's weightedtau of each target's mean AUC against
    the method's scores, mean over targets) reproduces."""
    from registry.result_store import BUILTIN_DIR

    table = read_table(BUILTIN_DIR / "wide")
    res = table.results
    assert (res["target"].nunique(), res.loc[res["candidate_kind"] != "scratch", "candidate"]
            .nunique(), res["repeat"].nunique(), res["fold"].nunique()) == (8, 9, 3, 2)
    truth = res[res["candidate_kind"] != "scratch"].groupby(["target", "candidate"])["value"].mean()
    expected = {}
    for method in ("hscore", "logme", "simex"):
        rows = table.scores[table.scores["method"] == method]
        taus = [weightedtau(truth.loc[t].reindex(g["candidate"]).to_numpy(), g["score"].to_numpy(),
                            rank=None).statistic for t, g in rows.groupby("target")]
        expected[method] = float(np.mean(taus))
    assert expected == pytest.approx({"hscore": 0.7675, "logme": 0.7085, "simex": 0.0640},
                                     abs=5e-5)          # the figures in docs/results.md
    scores = table.scores.pivot_table(index=["candidate", "target"], columns="method",
                                      values="score")[["hscore", "logme"]].reset_index()
    assert len(scores) == 69                             # 9 sources x 8 targets, none its own
    path = tmp_path / "scores.csv"
    scores.rename(columns={"hscore": "my-hscore", "logme": "my-logme"}).to_csv(path, index=False)
    got = cli("score", str(path), "--results", "wide", "--json")
    assert got.exit_code == 0, got.stderr
    rows = {r["method"]: r for r in got.json()["evaluation"]}
    assert rows["my-hscore"]["weighted_tau"] == pytest.approx(expected["hscore"], abs=1e-9)
    assert rows["my-logme"]["weighted_tau"] == pytest.approx(expected["logme"], abs=1e-9)
