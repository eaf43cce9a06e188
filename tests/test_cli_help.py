"""What a new user trips over: help that lists every probe, YAML without anchors, artifacts
that stay in BENCH_HOME."""

from __future__ import annotations


def test_probe_help_lists_every_registered_probe(cli):
    from probes.base import PROBES

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
    default = MlflowClient(uri).get_experiment("0")  # MLflow's Default experiment too
    assert default.artifact_location.startswith((home / "mlartifacts").as_uri())


def test_a_new_store_puts_the_default_experiment_under_bench_home(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from benchmark import api
    from bench_core.stores import tracking_target
    from bench_core.tracking import open_client
    from registry.paths import BenchPaths

    home, cwd = tmp_path / "home", tmp_path / "somewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    team = f"sqlite:///{tmp_path / 'team.db'}"
    api.open_tracker(BenchPaths(home), "transfer-bench/x", team)  # MLFLOW_TRACKING_URI's file
    open_client(tracking_target(BenchPaths(home), None, ""))  # BENCH_HOME's store, as `--dry-run` opens it
    for uri in (team, f"sqlite:///{home / 'mlflow.db'}"):
        default = MlflowClient(uri).get_experiment("0")
        assert default.name == "Default"
        assert default.artifact_location == (home / "mlartifacts" / "0").as_uri(), uri
    assert list(cwd.iterdir()) == []  # no ./mlruns, no ./mlflow.db


def test_plan_errors_come_before_torch_and_mlflow_are_loaded(tmp_path):
    """An unknown target, a misspelt dataset in a suite file (whose other datasets are
    embedded ones), a missing suite file, a typo in a suite key: each fails at once, on a fresh
    BENCH_HOME, with nothing registered and none of the heavy libraries loaded."""
    import os
    import subprocess
    import sys

    import yaml

    from test_run import TINY

    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({**TINY, "targets": [{"name": "digits-nois"}]}))
    key = tmp_path / "key.yaml"
    key.write_text(yaml.safe_dump({**TINY, "fold": {"n": 3}}))
    cases = [(["run", "--targets", "nonexistent"], ["Unknown target 'nonexistent'"]),
             (["run", "--suite", str(typo)], [f"Suite file {typo} names an unknown dataset "
                                              "'digits-nois'", "Did you mean 'digits-noise'"]),
             (["run", "--suite", str(tmp_path / "nowhere.yaml")],
              [f"Suite file {tmp_path / 'nowhere.yaml'} does not exist", "mnist"]),
             (["run", "--suite", str(key)], [f"Suite {key} is invalid", "fold"])]
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from benchmark.cli import app\n"
            f"for args, expected in {cases!r}:\n"
            "    res = CliRunner().invoke(app, args)\n"
            "    flat = ' '.join(res.output.split())\n"
            "    assert res.exit_code == 1, res.output\n"
            "    assert all(e in flat for e in expected), (expected, res.output)\n"
            "heavy = [m for m in ('torch', 'mlflow', 'timm', 'sklearn') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    home = tmp_path / "home"
    env = {**os.environ, "BENCH_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (home / "registry.db").exists() and not (home / "cache").exists()  # digits too


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


def test_the_plan_bar_shows_time_left_from_jobs_minutes_apart():
    import io

    from rich.console import Console

    from registry.progress import RichBoard

    now = [0.0]  # the board's clock, moved by hand
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with RichBoard(console, clock=lambda: now[0]) as board:
        with board.factory("jobs (local)", 5) as plan_bar:
            assert board.times_left() == {"jobs (local)": None}  # nothing finished: no pace
            for minute in (2, 4):  # jobs finish 2 minutes apart, far beyond rich's 30 s window
                now[0] = minute * 60.0
                plan_bar(1)
            # 2 jobs in 240 s, 3 left: 3 x 120 s = 360 s, shown as 0:06:00
            assert board.times_left()["jobs (local)"] == 360.0
            now[0] = 300.0  # a minute later, still 2 done: the pace is 150 s a job
            assert board.times_left()["jobs (local)"] == 450.0
            console.file.truncate(0)
            board._progress.refresh()
            shown = console.file.getvalue()
    assert "0:07:30" in shown and "2/5" in shown and "0:05:00" in shown  # left, done, elapsed


def test_a_run_opens_the_plan_bar_with_its_job_total(tmp_path):
    import io

    from rich.console import Console

    from benchmark import api
    from benchmark.engine.executors.base import Job
    from benchmark.engine.executors import ExecutorContext
    from benchmark.engine.executors.local import LocalExecutor
    from benchmark.engine.session import execute
    from benchmark.engine.graph import SuiteGraph
    from registry.paths import BenchPaths
    from registry.progress import RichBoard

    console = Console(file=io.StringIO(), force_terminal=True)
    seen: list = []
    with RichBoard(console) as board:
        graph = SuiteGraph()
        for i in range(3):
            graph.add(Job(f"job{i}", f"job {i}", "probe", lambda deps: seen.append(board.tasks())))
        tracker = api.open_tracker(BenchPaths(tmp_path / "home"), "transfer-bench/bar")
        outcomes = execute(LocalExecutor(ExecutorContext()), graph, tracker, board.factory)
        assert board.tasks() == []  # the plan bar goes with the run
    assert [o.ok for o in outcomes] == [True, True, True]
    assert seen == [[("jobs (local)", done, 3)] for done in (0, 1, 2)]


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


def test_every_listing_group_answers_list_as_its_help_says(cli):
    """`bench results list` (the issue's and the group help's spelling) failed with
    "No such command 'list'" while the bare `bench results` listed."""
    for group, help_word in (("results", "list"), ("datasets", "List"), ("models", "List")):
        assert help_word in " ".join(cli(group, "--help").stdout.split())
        bare, named = cli(group, "--json"), cli(group, "list", "--json")
        assert bare.exit_code == named.exit_code == 0, (group, named.stderr)
        assert named.json() == bare.json()
    names = [r["name"] for r in cli("results", "list", "--json").json()]
    assert {"mnist", "wide"} <= set(names)


def _quoted_bench_commands() -> set[tuple[str, ...]]:
    """Every `bench WORD [WORD]` the docs and the code's messages quote."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [root / "README.md", *root.glob("docs/*.md")]
    for pkg in ("benchmark", "registry", "probes", "bench_core"):
        files += (root / pkg).rglob("*.py")
    found = set()
    for path in files:
        for words in re.findall(r"`bench ((?:[a-z][a-z-]* ?){1,2})", path.read_text()):
            found.add(tuple(words.split()))
    return found


def test_every_command_the_docs_and_messages_quote_exists():
    """A message that says "see `bench results list`" must name a command that runs."""
    import typer

    from benchmark.cli.app import app

    root = typer.main.get_command(app)
    quoted = _quoted_bench_commands()
    assert ("results", "list") in quoted and len(quoted) > 15
    for words in quoted:
        command = root.commands.get(words[0])
        assert command is not None, f"`bench {' '.join(words)}`: no command {words[0]!r}"
        if len(words) > 1 and hasattr(command, "commands"):  # a group: the next word is its verb
            assert words[1] in command.commands, f"`bench {' '.join(words)}`: no such verb"
