"""A BENCH_HOME copied or moved works where it is and never touches the old place: a small
suite run and published once (CLI, as a user does it), its home copied and moved; in the copy
`bench report`, `bench run` (nothing redone), `bench datasets show` and `bench models show`
work, write their new artifacts under the copy, and leave every byte and time stamp of the
original as it was, also once the original is gone. A home opened in place is not written; a
rewrite that fails leaves the store as it was; a tracking store elsewhere is not rewritten."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bench_core.relocate import hashed_options
from benchmark.cli import app
from registry.paths import BenchPaths
from registry.store import RegistryStore
from test_run import TINY, write_suite

T2V = {"arch": "resnet10t", "image_size": [16, 16], "subsets": 1, "fraction": 0.1,
       "head_epochs": 1, "max_draws": 64, "head_draws": 64}
SUITE = {**TINY, "name": "moves", "generality": {"ks": []},
         "pretrain_defaults": {"image_size": [16, 16], "batch_size": 64, "epochs": 1},
         "finetune_defaults": {"image_size": [16, 16], "batch_size": 32, "epochs": 1},
         "targets": [{"name": "lfw-faces", "max_samples": 40}],
         # task2vec's network is the suite's pretrained digits: its file in BENCH_HOME/models
         # is part of the probe's config hash
         "probes": [{"method": "expert"}, {"method": "task2vec", "options": T2V}]}
MODEL = "tb-moves-digits"


def bench(home: Path, *args, uri: str | None = None):
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False,
                             env={"BENCH_HOME": str(home), "MLFLOW_TRACKING_URI": uri})
    return res


def ok(res) -> dict:
    assert res.exit_code == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A home with a suite run (pretraining, folds, probes, report) and a published model:
    the tests that use it are slow."""
    tmp = tmp_path_factory.mktemp("moves")
    home, suite = tmp / "original", write_suite(tmp, **SUITE)
    run = ok(bench(home, "run", "--suite", suite, "--json"))
    assert run["jobs_run"] > 0
    ok(bench(home, "publish", "digits", "--suite", suite, "--json"))
    return home, suite


def copy_of(made, dest: Path) -> Path:
    shutil.copytree(made[0], dest, symlinks=True)  # copy2: times kept, as cp -a
    return dest


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every file and folder below ``folder``: sha256 (files), size and mtime."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        out[str(p.relative_to(folder))] = (digest, st.st_size, st.st_mtime_ns)
    return out


def recorded(db: Path, text: str) -> list[tuple[str, str]]:
    """(table, column) of every value of ``db`` that contains ``text``, any column."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")]
        return [(t, c) for t in tables for (_, c, *_) in conn.execute(f'PRAGMA table_info("{t}")')
                if conn.execute(f'SELECT count(*) FROM "{t}" WHERE instr(CAST("{c}" AS TEXT), ?)',
                                (text,)).fetchone()[0]]
    finally:
        conn.close()


def report_run(home: Path, suite: str = "moves"):
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name(f"transfer-bench/{suite}")
    return client.search_runs([exp.experiment_id], "tags.level = 'report'",
                              order_by=["attributes.start_time DESC"], max_results=1)[0]


def check_works_here(home: Path, suite: Path) -> None:
    """Report, resume, dataset and model views in ``home``, all of it read and written there."""
    report = bench(home, "report", "--suite", suite, "--json")
    ok(report)
    assert "locations its MLflow store recorded there were rewritten" in \
        " ".join(report.stderr.split())
    run = report_run(home)
    assert run.info.artifact_uri.startswith(home.as_uri() + "/")
    assert (home / "mlartifacts" / run.info.run_id / "artifacts" / "report").is_dir()
    again = ok(bench(home, "run", "--suite", suite, "--json"))
    assert again["jobs_run"] == 0 and again["jobs_reused"] > 0  # the probe's hash kept too
    shown = ok(bench(home, "datasets", "show", "digits", "--json"))
    assert Path(shown["cache_dir"]).parent.parent == home / "cache"
    assert all(Path(f["path"]).is_file() and Path(f["path"]).is_relative_to(home)
               for f in shown["cache_files"])
    model = ok(bench(home, "models", "show", MODEL, "--json"))
    assert Path(model["folder"]) == home / "published" / MODEL and model["card"]
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    uri = client.get_model_version_download_uri(MODEL, "1")
    assert uri.startswith(home.as_uri() + "/") and Path(uri.removeprefix("file://")).is_dir()


@pytest.mark.slow
def test_a_copy_writes_only_into_itself(made, tmp_path):
    original, suite = made
    before = snapshot(original)
    copy = copy_of(made, tmp_path / "copy")
    first = bench(copy, "datasets", "show", "digits", "--json")  # the registry: no rewrite
    assert ok(first)["cache_dir"].startswith(str(copy))
    check_works_here(copy, suite)
    assert snapshot(original) == before
    assert recorded(copy / "mlflow.db", str(original)) == []
    assert recorded(copy / "registry.db", str(original)) == []
    assert json.loads((copy / "origin.json").read_text()) == {"origin": str(original)}


@pytest.mark.slow
def test_a_moved_home_works_once_the_old_place_is_gone(made, tmp_path):
    _, suite = made
    old = copy_of(made, tmp_path / "old")
    ok(bench(old, "report", "--suite", suite, "--json"))  # used where it was, then moved
    new = Path(shutil.move(old, tmp_path / "elsewhere" / "new"))
    assert not old.exists()
    check_works_here(new, suite)
    assert recorded(new / "mlflow.db", str(old)) == []
    # config hashes: a path in the home is hashed as it was where the home was first used
    weights = {"weights": f"file:{new}/models/x.safetensors", "arch": "resnet10t"}
    assert hashed_options(BenchPaths(new), weights)["weights"] == \
        f"file:{made[0]}/models/x.safetensors"


@pytest.mark.slow
def test_a_home_opened_in_place_is_not_written(made):
    home, suite = made
    ok(bench(home, "models", "--json"))  # the first time, it makes its experiment
    before = snapshot(home)
    ok(bench(home, "run", "--suite", suite, "--dry-run", "--json"))  # opens the MLflow store
    ok(bench(home, "datasets", "show", "digits", "--json"))
    ok(bench(home, "models", "--json"))  # opens a Tracker
    assert snapshot(home) == before
    assert not (home / "origin.json").exists()
    weights = {"weights": f"file:{home}/models/x.safetensors"}
    assert hashed_options(BenchPaths(home), weights) == weights


@pytest.mark.slow
def test_a_failed_rewrite_leaves_the_store_as_it_was(made, tmp_path):
    original, suite = made
    copy = copy_of(made, tmp_path / "copy")
    db = copy / "mlflow.db"
    with sqlite3.connect(db) as conn:  # the rewrite fails at the model version's folder tag,
        # after runs, params, experiments and model versions were rewritten
        conn.execute("CREATE TRIGGER refuse BEFORE UPDATE ON model_version_tags "
                     "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END")
    conn.close()
    before = db.read_bytes()
    res = bench(copy, "report", "--suite", suite)
    assert res.exit_code == 1
    assert "the store was left as it was" in " ".join(res.stderr.split())
    assert db.read_bytes() == before  # rolled back
    assert recorded(db, str(original)) != []
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER refuse")
    conn.close()
    ok(bench(copy, "report", "--suite", suite, "--json"))
    assert recorded(db, str(original)) == []
    assert report_run(copy).info.artifact_uri.startswith(copy.as_uri() + "/")


@pytest.mark.slow
def test_a_tracking_store_elsewhere_is_not_rewritten(made, tmp_path):
    original, suite = made
    before = snapshot(original)
    copy = copy_of(made, tmp_path / "copy")
    local = (copy / "mlflow.db").read_bytes()
    server = f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}"
    (tmp_path / "server").mkdir()
    shown = ok(bench(copy, "datasets", "show", "digits", "--json", uri=server))
    assert Path(shown["cache_dir"]).is_relative_to(copy)
    plan = ok(bench(copy, "run", "--suite", suite, "--dry-run", "--json", uri=server))
    assert plan["runs_to_do"] > 0  # a store of its own: nothing of the home's store in it
    assert (copy / "mlflow.db").read_bytes() == local
    assert snapshot(original) == before
    weights = {"weights": f"file:{copy}/models/x.safetensors"}
    assert hashed_options(BenchPaths(copy), weights) == \
        {"weights": f"file:{original}/models/x.safetensors"}


def test_registry_paths_in_the_home_are_relative_and_old_rows_read_here(shared_three,
                                                                         tmp_path):
    home = shared_three[0].home
    with sqlite3.connect(f"{(home / 'registry.db').as_uri()}?mode=ro", uri=True) as conn:
        stored = conn.execute("SELECT cache_dir FROM datasets UNION ALL "
                              "SELECT path FROM files").fetchall()
    conn.close()
    assert stored and all(not Path(p).is_absolute() for (p,) in stored)
    # a registry written before paths were relative: absolute paths in a home elsewhere
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy2(home / "registry.db", moved / "registry.db")
    old = Path("/nowhere/old-home")
    with sqlite3.connect(moved / "registry.db") as conn:
        conn.execute("UPDATE datasets SET cache_dir = ? || '/' || cache_dir, root = ?",
                     (str(old), "/data/mine"))
        conn.execute("UPDATE files SET path = ? || '/' || path", (str(old),))
    conn.close()
    store = RegistryStore(moved / "registry.db")
    assert store.legacy_homes() == {old}
    rec = store.get("digits")
    assert Path(rec.cache_dir).is_relative_to(moved / "cache" / "digits")
    assert all(Path(f.path).is_relative_to(rec.cache_dir) for f in rec.files)
    assert rec.root == "/data/mine"  # outside the home: as stored
