"""The team deployment for real: a PostgreSQL server (started here), mlflow/team/create-database.sh,
mlflow/team/server.sh, and `bench run` logging to it over HTTP."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import served
import yaml

TEAM = Path(__file__).resolve().parents[1] / "mlflow" / "team"


def _pg_bin() -> Path | None:
    for cand in [shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]:
        if cand:
            return Path(cand).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL server on 127.0.0.1; yields libpq environment variables."""
    pg = _pg_bin()
    if pg is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found; .ci/run installs the postgresql package")
        pytest.skip("PostgreSQL is not installed on this machine")
    root = Path(tempfile.mkdtemp(prefix="bench-pg-", dir="/tmp"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(_as_postgres([str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "bench",
                                 "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                                 str(root / "log"), "-w", "start"]), check=True, capture_output=True)
    try:
        yield {"PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "bench",
               "PGDATABASE": "postgres"}
    finally:
        subprocess.run(_as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _psql(env: dict[str, str], sql: str, db: str = "mlflow") -> str:
    out = subprocess.run(["psql", "-At", "-d", db, "-c", sql], env={**os.environ, **env,
                         "PGUSER": "mlflow", "PGPASSWORD": "s3cret"},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.slow
def test_team_server_on_postgresql(postgres, tmp_path):
    env = {**os.environ, **postgres, "DB_PASSWORD": "s3cret"}
    made = subprocess.run(["bash", str(TEAM / "create-database.sh")], env=env,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    again = subprocess.run(["bash", str(TEAM / "create-database.sh")], env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # idempotent

    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server_env = {**os.environ, "PORT": str(port), "WORKERS": "1",
                  "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                  "MLFLOW_BACKEND_STORE_URI": (f"postgresql+psycopg://mlflow:s3cret@127.0.0.1:"
                                               f"{postgres['PGPORT']}/mlflow"),
                  "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts")}
    with served(["bash", str(TEAM / "server.sh")], uri, server_env, tmp_path / "server.log"):
        suite = tmp_path / "team.yaml"
        suite.write_text(yaml.safe_dump({
            "name": "team", "architecture": {"name": "resnet10t"}, "folds": {"n": 2},
            "pretrain_defaults": {"image_size": [16, 16], "epochs": 1},
            "finetune_defaults": {"image_size": [16, 16], "epochs": 1, "batch_size": 32},
            "sources": [{"name": "digits"}], "targets": [{"name": "lfw-faces"}]}))
        from typer.testing import CliRunner

        from benchmark.cli import app

        run = CliRunner().invoke(app, ["run", "--suite", str(suite), "--json"],
                                 env={"BENCH_HOME": str(tmp_path / "home"),
                                      "MLFLOW_TRACKING_URI": uri})
        assert run.exit_code == 0, run.stderr[-3000:]
        assert json.loads(run.stdout)["tracking_uri"] == uri
        # the runs are rows in PostgreSQL, the artifacts in the server's destination
        assert _psql(postgres, "SELECT count(*) FROM experiments WHERE name = 'transfer-bench/team'") == "1"
        assert int(_psql(postgres, "SELECT count(*) FROM runs WHERE status = 'FINISHED'")) == 8
        assert list((tmp_path / "artifacts").rglob("curves.png"))
