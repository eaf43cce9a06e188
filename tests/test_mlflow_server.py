"""A real MLflow tracking server: mlflow/local-server.sh starts it on the BENCH_HOME store,
and `bench run` logs to it over HTTP when MLFLOW_TRACKING_URI points at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import served, wait_for_health
import yaml
from mlflow.tracking import MlflowClient

SCRIPT = Path(__file__).resolve().parents[1] / "mlflow" / "local-server.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A tracking server on its own store; yields (uri, its BENCH_HOME)."""
    home = tmp_path / "server-home"
    port = _free_port()
    env = {**os.environ, "BENCH_HOME": str(home), "PORT": str(port),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    uri = f"http://127.0.0.1:{port}"
    with served(["bash", str(SCRIPT)], uri, env, tmp_path / "server.log"):
        yield uri, home


@pytest.mark.slow
def test_local_server_answers_health(server):
    _, home = server
    assert (home / "mlflow.db").is_file()


@pytest.mark.slow
def test_bench_run_logs_to_a_tracking_server(server, tmp_path, monkeypatch):
    uri, server_home = server
    client_home = tmp_path / "client-home"
    suite = tmp_path / "srv.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "srv", "architecture": {"name": "resnet10t"},
        "folds": {"n": 2}, "pretrain_defaults": {"image_size": [16, 16], "epochs": 1},
        "finetune_defaults": {"image_size": [16, 16], "epochs": 1, "batch_size": 32},
        "sources": [{"name": "digits"}], "targets": [{"name": "lfw-faces"}]}))
    from typer.testing import CliRunner

    from benchmark.cli import app

    done = CliRunner().invoke(app, ["run", "--suite", str(suite), "--json"],  # the server is
                              env={"BENCH_HOME": str(client_home), "MLFLOW_TRACKING_URI": uri})
    assert done.exit_code == 0, done.stderr[-3000:]  # what is tested, not the CLI's process
    assert json.loads(done.stdout)["tracking_uri"] == uri  # stdout holds only the JSON
    assert not (client_home / "mlflow.db").exists()  # nothing went to the local store
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("transfer-bench/srv")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    levels = sorted(r.data.tags.get("level") for r in runs)
    assert levels.count("fold") == 4 and levels.count("pair") == 2 and "pretrain" in levels
    pair = next(r for r in runs if r.data.tags.get("level") == "pair"
                and r.data.tags["kind"] == "transfer")
    assert "curves.png" in {a.path for a in client.list_artifacts(pair.info.run_id)}
    assert list((server_home / "mlartifacts").rglob("curves.png"))  # proxied to the server


@pytest.mark.slow
def test_bench_ui_serves_the_local_store(tmp_path):
    port = _free_port()
    home = tmp_path / "ui-home"
    bench = str(Path(sys.executable).with_name("bench"))
    env = {**os.environ, "BENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    with served([bench, "ui", "--port", str(port)], f"http://127.0.0.1:{port}", env,
                tmp_path / "ui.log"):
        assert (home / "mlflow.db").is_file()
        log = (tmp_path / "ui.log").read_text()
        assert "No experiment 'transfer-bench/mnist' in this store yet" in log  # nothing run
        assert "bench run --suite mnist" in log


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_bench_ui_stops_its_whole_server(tmp_path, sig):
    """`bench ui` on a store, then Ctrl-C / SIGTERM to bench alone: no process is left."""
    import psutil

    port = _free_port()
    env = {**os.environ, "BENCH_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    bench = str(Path(sys.executable).with_name("bench"))
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([bench, "ui", "--port", str(port)], env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", proc, log)
        server = psutil.Process(proc.pid).children(recursive=True)
        assert len(server) >= 2, [p.cmdline() for p in server]  # mlflow and its workers
        proc.send_signal(sig)
        proc.wait(timeout=60)
        gone, alive = psutil.wait_procs(server, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        assert proc.returncode == 128 + sig
        assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
