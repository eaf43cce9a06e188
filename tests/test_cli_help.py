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


def test_plan_errors_come_before_torch_and_mlflow_are_loaded(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from benchmark.cli import app\n"
            "res = CliRunner().invoke(app, ['run', '--targets', 'nonexistent'])\n"
            "assert res.exit_code == 1, res.output\n"
            "assert \"Unknown target 'nonexistent'\" in res.output, res.output\n"
            "heavy = [m for m in ('torch', 'mlflow', 'timm', 'sklearn') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = {**os.environ, "BENCH_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_misspelt_dataset_in_a_suite_file_gets_a_suggestion(cli, tmp_path):
    import yaml

    from test_run import TINY

    suite = tmp_path / "mine.yaml"
    suite.write_text(yaml.safe_dump({**TINY, "targets": [{"name": "digits-nois"}]}))
    res = cli("run", "--suite", suite, "--dry-run")
    assert res.exit_code == 1
    assert f"Suite file {suite} names an unknown dataset 'digits-nois'" in res.stderr
    assert "Did you mean 'digits-noise'" in res.stderr
    suite.write_text(yaml.safe_dump({**TINY, "targets": [{"name": "qqqqq"}]}))
    res = cli("run", "--suite", suite, "--dry-run")
    assert res.exit_code == 1 and "names an unknown dataset 'qqqqq'." in res.stderr
    assert "Did you mean" not in res.stderr


def test_the_run_board_shows_the_plan_bar_beside_job_bars():
    import io

    from rich.console import Console

    from registry.progress import RichBoard

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with RichBoard(console) as board:
        with board.factory("jobs (local)", 3) as plan_bar:
            with board.factory("digits -> noise fold 0", 4) as job:
                job(2)
                assert board.tasks() == [("jobs (local)", 0, 3), ("digits -> noise fold 0", 2, 4)]
            plan_bar(1)
            assert board.tasks() == [("jobs (local)", 1, 3)]  # finished job bars go
    assert "jobs (local)" in console.file.getvalue()
    assert not RichBoard().live  # pytest's stderr is no terminal: no bars at all


def test_an_unknown_target_names_the_suite_file(cli, tmp_path):
    import yaml

    from test_run import TINY

    suite = tmp_path / "mine.yaml"
    suite.write_text(yaml.safe_dump(TINY))
    res = cli("run", "--suite", suite, "--targets", "lfw-face", "--dry-run")
    assert res.exit_code == 1
    flat = " ".join(res.stderr.split())
    assert "Unknown target 'lfw-face'. Did you mean 'lfw-faces'?" in flat
    assert f"The targets of {suite}: lfw-faces" in flat


def test_report_accepts_the_suite_file_it_ran(cli, tmp_path):
    import yaml

    from test_run import TINY

    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({**TINY, "probes": []}))
    res = cli("report", "--suite", suite)
    assert res.exit_code == 1  # nothing ran yet, and it says so for the suite's name
    assert "No finished results for suite 'tiny'" in res.stderr
