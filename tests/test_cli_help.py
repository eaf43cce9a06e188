"""What a new user trips over: help that lists every probe, YAML without anchors, artifacts
that stay in BENCH_HOME."""

from __future__ import annotations


def test_probe_help_lists_every_registered_probe(cli):
    from benchmark.cli import PROBE_NAMES
    from probes.registry import PROBES

    assert sorted(PROBE_NAMES) == PROBES.names()
    res = cli("probe", "--help")
    assert res.exit_code == 0
    flat = " ".join(res.stdout.split())
    for name in PROBES.names():
        assert name in flat, name


def test_datasets_show_prints_yaml_without_anchors(cli):
    import yaml

    assert cli("add-dataset", "digits").exit_code == 0
    res = cli("datasets", "show", "digits")
    assert res.exit_code == 0
    assert "&id" not in res.stdout and "*id" not in res.stdout
    shown = yaml.safe_load(res.stdout)
    assert shown == cli("datasets", "show", "digits", "--json").json()


def test_a_sqlite_tracking_uri_keeps_artifacts_in_bench_home(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    home, cwd = tmp_path / "home", tmp_path / "somewhere"
    cwd.mkdir()
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    env = {**os.environ, "BENCH_HOME": str(home), "MLFLOW_TRACKING_URI": uri}
    bench = str(Path(sys.executable).with_name("bench"))
    res = subprocess.run([bench, "probe", "expert", "--datasets", "imagenet,isic", "--json"],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert list(cwd.iterdir()) == []  # no ./mlruns, no ./mlflow.db
    run = MlflowClient(uri).get_run(json.loads(res.stdout)["run_id"])
    assert run.info.artifact_uri.startswith((home / "mlartifacts").as_uri())
    assert (home / "mlartifacts").is_dir()
