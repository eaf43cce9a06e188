"""Executors on real engines: a local Ray instance and submitit's local executor run the same
tiny grid as the local executor, with the same AUCs; retries, worker deaths, preemption and
second runs leave exactly one finished run per job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from stores import store_client
from test_run import TINY, write_suite

SUITE = {**TINY, "name": "exec", "generality": {"ks": []},
         "probes": [{"method": "expert"}, {"method": "logme", "options": {"suite": "exec"}}]}
BENCH = str(Path(sys.executable).with_name("bench"))


def bench(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`bench ARGS` in this process (the driver's process is not what these tests are about;
    the engines start their own workers), with its own BENCH_HOME and the local store."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    res = CliRunner().invoke(app, list(args), catch_exceptions=False,
                             env={"BENCH_HOME": str(home), "MLFLOW_TRACKING_URI": None})
    return subprocess.CompletedProcess(args, res.exit_code, res.stdout, res.stderr)


def finished_runs(home: Path, suite: str = "exec") -> list:
    c = store_client(home)
    exp = c.get_experiment_by_name(f"transfer-bench/{suite}")
    return c.search_runs([exp.experiment_id], max_results=1000)


def fold_aucs(home: Path) -> dict:
    runs = [r for r in finished_runs(home) if r.data.tags.get("level") == "fold"
            and r.info.status == "FINISHED"]
    return {(r.data.tags["source"], r.data.tags["target"], r.data.tags["fold"]):
            r.data.metrics["test_auc"] for r in runs}


def assert_one_finished_run_per_job(home: Path, folds: int = 4, pairs: int = 2) -> None:
    runs = finished_runs(home)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    done = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("level") != "report"]
    hashes = [r.data.tags["config_hash"] for r in done]
    assert len(hashes) == len(set(hashes)), "a job finished twice"
    assert sum(r.data.tags["level"] == "fold" for r in done) == folds
    assert sum(r.data.tags["level"] == "pair" for r in done) == pairs
    for pair in (r for r in done if r.data.tags["level"] == "pair"):
        kids = [r for r in done if r.data.tags.get("mlflow.parentRunId") == pair.info.run_id]
        assert sorted(r.data.tags["fold"] for r in kids) == ["0", "1"]
        assert "test_auc_mean" in pair.data.metrics


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory) -> dict:
    """The tiny grid through the local executor: the AUCs every engine must reproduce (one
    thread per job as the engines use by default: float sums depend on the thread count)."""
    tmp = tmp_path_factory.mktemp("local")
    res = bench(tmp / "home", "run", "--suite", str(write_suite(tmp, **SUITE)), "--json",
                "--cpus-per-job", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    return fold_aucs(tmp / "home")


@pytest.mark.slow
def test_ray_runs_the_grid_like_local_and_skips_it_the_second_time(tmp_path, local_reference):
    suite = write_suite(tmp_path, **SUITE)
    home = tmp_path / "home"
    res = bench(home, "run", "--suite", str(suite), "--executor", "ray", "--num-cpus", "2",
                "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert doc["executor"] == "ray" and doc["jobs_run"] == 9  # pretrain, 4 folds, 2 pairs, 2 probes
    assert fold_aucs(home) == local_reference
    assert_one_finished_run_per_job(home)
    before = len(finished_runs(home))
    again = bench(home, "run", "--suite", str(suite), "--executor", "ray", "--num-cpus", "2",
                  "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["jobs_run"] == 0
    assert len(finished_runs(home)) == before + 1  # only a new report run


@pytest.mark.slow
def test_slurm_local_runs_the_grid_like_local_and_skips_it_the_second_time(tmp_path,
                                                                          local_reference):
    home = tmp_path / "home"
    args = ("run", "--suite", str(write_suite(tmp_path, **SUITE)), "--executor", "slurm-local",
            "--array-parallelism", "2", "--json")
    res = bench(home, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["jobs_run"] == 9
    assert fold_aucs(home) == local_reference
    assert_one_finished_run_per_job(home)
    assert list((home / "submitit").iterdir()), "submitit's job folder"
    before = {r.info.run_id: r.info.status for r in finished_runs(home)}
    again = bench(home, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["jobs_run"] == 0
    after = {r.info.run_id: r.info.status for r in finished_runs(home)}
    new_runs = [r for r in finished_runs(home) if r.info.run_id not in before]
    assert [r.data.tags["level"] for r in new_runs] == ["report"]  # only a new report run
    assert {k: after[k] for k in before} == before  # the same runs, untouched


class FlakyOnce:
    """A job body that raises on its first call (a marker file remembers), then runs."""

    def __init__(self, inner, marker: Path) -> None:
        self.inner, self.marker = inner, marker

    def __call__(self, deps):
        calls = int(self.marker.read_text()) if self.marker.exists() else 0
        self.marker.write_text(str(calls + 1))
        if calls == 0:
            raise RuntimeError("injected failure of the first attempt")
        return self.inner(deps)


@pytest.mark.slow
def test_ray_retries_a_job_that_raises_once(tmp_path, paths, local_reference):
    import dataclasses

    import ray

    from benchmark import api
    from benchmark.engine.executors import ExecutorContext
    from benchmark.engine.executors.ray import RayExecutor
    from benchmark.engine.graph import build_graph
    from benchmark.engine.session import execute, job_env
    from registry.catalog import Catalog

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    plan = api.plan_suite(write_suite(tmp_path, **SUITE), paths)
    tracker = api.open_tracker(paths, "transfer-bench/exec", None, "sess-flaky")
    env = job_env(plan, paths, tracker, api.RunOptions(), None)
    graph = build_graph(plan, env, tracker, Catalog.load(), accelerated=False)
    marker = tmp_path / "calls"
    flaky = next(j for j in graph.jobs if j.kind == "fold" and "digits" in j.label)
    graph.jobs[graph.jobs.index(flaky)] = dataclasses.replace(flaky,
                                                              call=FlakyOnce(flaky.call, marker))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        outcomes = execute(RayExecutor(ExecutorContext(), max_retries=2), graph, tracker)
    finally:
        ray.shutdown()
    assert marker.read_text() == "2"
    assert all(o.ok for o in outcomes)
    assert fold_aucs(paths.home) == local_reference
    assert_one_finished_run_per_job(paths.home)


def _kill_a_running_fold(home: Path, proc: subprocess.Popen, sig: int, deadline_s: float,
                         stderr: Path) -> str:
    """Wait for a fold run to be RUNNING, send ``sig`` to the process its pid tag names."""
    deadline = time.time() + deadline_s
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
        try:
            runs = finished_runs(home)
        except Exception:  # the store is being created by the run
            continue
        running = [r for r in runs if r.data.tags.get("level") == "fold"
                   and r.info.status == "RUNNING"
                   and r.data.metrics.get("train_loss") is not None]  # mid-training
        if running:
            os.kill(int(running[0].data.tags["pid"]), sig)
            return running[0].info.run_id
    raise AssertionError(f"no fold run was caught mid-training (exit {proc.poll()}):\n"
                         f"{stderr.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("executor,sig", [("ray", signal.SIGKILL),
                                          ("slurm-local", signal.SIGUSR2)],
                         ids=["ray-worker-killed", "submitit-preempted"])
def test_a_job_killed_mid_training_is_redone_once(tmp_path, executor, sig):
    slow = {**SUITE, "probes": [],
            "finetune_defaults": {"image_size": [16, 16], "batch_size": 8, "epochs": 6}}
    home = tmp_path / "home"
    env = {**os.environ, "BENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as o, err.open("w") as e:  # files, not pipes nobody reads while it runs
        flags = ["--num-cpus", "2"] if executor == "ray" else ["--array-parallelism", "2"]
        proc = subprocess.Popen([BENCH, "run", "--suite", str(write_suite(tmp_path, **slow)),
                                 "--executor", executor, *flags, "--json"], env=env, text=True,
                                stdout=o, stderr=e)
        killed = _kill_a_running_fold(home, proc, sig, 300, err)
        proc.wait(timeout=600)
    assert proc.returncode == 0, err.read_text()[-3000:]
    assert json.loads(out.read_text())["executor"] == executor
    assert_one_finished_run_per_job(home)
    status = {r.info.run_id: r.info.status for r in finished_runs(home)}
    assert status[killed] == "FAILED"


def test_engines_are_registered_and_their_flags_checked(cli, tmp_path):
    from benchmark.engine.executors import EXECUTORS

    assert EXECUTORS.names() == ["local", "ray", "slurm", "slurm-local"]
    res = cli("run", "--suite", write_suite(tmp_path, **SUITE), "--executor", "ray",
              "--partition", "gpu")
    assert res.exit_code == 2 and "--partition do(es) not apply to --executor ray" in res.stderr
    res = cli("run", "--suite", write_suite(tmp_path, **SUITE), "--executor", "rayy")
    assert res.exit_code == 1 and "Unknown executor 'rayy'. Did you mean 'ray'?" in res.stderr


def test_the_driver_reads_where_jobs_run_from_the_executor_class():
    """Progress bars, the device check and whether jobs want a GPU follow each executor's
    declared ``placement``, never its name (the same choices as before it was declared)."""
    from types import SimpleNamespace

    import torch

    from benchmark.engine.executors import EXECUTORS
    from benchmark.engine.session import _accelerated

    assert {n: EXECUTORS.get(n).placement for n in EXECUTORS.names()} == {
        "local": "process", "ray": "cluster", "slurm": "cluster", "slurm-local": "machine"}
    for placement in ("process", "machine", "cluster"):
        ex = SimpleNamespace(placement=placement)
        assert not _accelerated("cpu", ex) and _accelerated("cuda:0", ex)
        assert _accelerated("auto", ex) == (placement == "cluster" or torch.cuda.is_available())


def test_slurm_without_sbatch_says_what_to_do(cli, tmp_path, bench_home):
    res = cli("run", "--suite", write_suite(tmp_path, **SUITE), "--executor", "slurm")
    assert res.exit_code == 1
    assert "needs Slurm's sbatch and srun, which are not on PATH" in res.stderr
    assert "--executor slurm-local" in res.stderr
    runs = finished_runs(bench_home)
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_a_missing_engine_names_its_extra():
    from benchmark.engine.executors.base import ExecutorError, import_extra

    with pytest.raises(ExecutorError, match=r'pip install -e "\.\[ray\]"'):
        import_extra("ray_is_not_this_module", "ray")


@pytest.mark.slow
def test_a_machine_without_the_weights_takes_them_from_the_pretraining_run(tmp_path):
    """Two BENCH_HOMEs sharing one tracking store (as two machines share a team server): the
    second trains nothing and fetches the source weights from the first one's run."""
    from benchmark import api
    from registry.paths import BenchPaths

    suite = write_suite(tmp_path, **{**SUITE, "probes": []})
    first, second = BenchPaths(tmp_path / "first"), BenchPaths(tmp_path / "second")
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    options = api.RunOptions(tracking_uri=uri, system_metrics=False)
    api.run_suite(api.plan_suite(suite, first), first, options, with_report=False)
    (weights,) = (first.home / "models").iterdir()

    result = api.run_suite(api.plan_suite(suite, second), second, options, with_report=False)
    assert [o.kind for o in result.outcomes] == ["pretrain"]  # every pair was reused
    assert (second.home / "models" / weights.name).read_bytes() == weights.read_bytes()
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("transfer-bench/exec")
    pretrain = [r for r in c.search_runs([exp.experiment_id]) if r.data.tags["level"] == "pretrain"]
    assert len(pretrain) == 1


def test_run_probes_alone_waits_for_nothing_it_cannot_have(tmp_path, paths):
    from benchmark import api
    from registry.errors import BenchError

    plan = api.plan_suite(write_suite(tmp_path, **SUITE), paths)
    with pytest.raises(BenchError, match="score its pretrained models, and some are not "
                                         "trained yet"):
        api.run_probes(plan, paths)
    card_only = api.plan_suite(write_suite(tmp_path, **{**SUITE, "probes": [{"method": "expert"}]}),
                               paths)
    (outcome,) = api.run_probes(card_only, paths)
    assert outcome.ok and outcome.kind == "probe"
    runs = finished_runs(paths.home)
    assert [r.data.tags["probe"] for r in runs] == ["expert"]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert api.run_probes(card_only, paths) == []  # finished: nothing to run again


def test_slurm_refuses_a_store_the_compute_nodes_cannot_reach(cli, tmp_path, monkeypatch,
                                                              bench_home):
    """With sbatch on PATH (a stand-in that is never called: the refusal comes first)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho '{tool} must not be called' >&2\nexit 3\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    res = cli("run", "--suite", write_suite(tmp_path, **SUITE), "--executor", "slurm",
              "--partition", "gpu")
    assert res.exit_code == 1
    assert "the tracking store is a local SQLite file they cannot reach" in res.stderr
    assert "MLFLOW_TRACKING_URI=http://HOST:5000" in res.stderr
    assert not [r for r in finished_runs(bench_home) if r.info.status == "RUNNING"]
    assert not (bench_home / "submitit").exists()


def test_a_live_run_elsewhere_is_waited_for_and_a_silent_one_taken_over(paths):
    import threading

    from bench_core.tracking import ResumePolicy, Tracker, tracking_target

    policy = ResumePolicy(heartbeat_s=0.2, stale_after_s=30, wait_poll_s=0.1)
    tracker = Tracker(tracking_target(paths, None, "t"), "session-b", policy)
    other = {"host": "other-host", "pid": "1", "session": "session-a", "config_hash": "h1"}
    now = time.time()
    live = tracker.client.create_run(tracker.experiment_id,
                                     tags={**other, "heartbeat": str(int(now))})
    silent = tracker.client.create_run(tracker.experiment_id, tags={
        **other, "config_hash": "h2", "heartbeat": str(int(now - 31))})
    assert not tracker.is_stale(tracker.client.get_run(live.info.run_id))
    assert tracker.is_stale(tracker.client.get_run(silent.info.run_id))
    assert tracker.fail_stale("h2") == 1 and tracker.fail_stale("h1") == 0

    done = threading.Timer(0.5, tracker.client.set_terminated, (live.info.run_id, "FINISHED"))
    done.start()
    start = time.perf_counter()
    assert tracker.wait_for_others("h1").info.run_id == live.info.run_id
    assert 0.4 < time.perf_counter() - start < 10

    mine = tracker.client.create_run(tracker.experiment_id, tags={
        **other, "session": "session-b", "config_hash": "h3", "heartbeat": str(int(now - 100))})
    assert tracker.is_stale(tracker.client.get_run(mine.info.run_id))  # an earlier attempt
    with tracker.heartbeat(lambda: [mine.info.run_id]):
        time.sleep(0.5)
    beat = float(tracker.client.get_run(mine.info.run_id).data.tags["heartbeat"])
    assert beat >= int(now)  # refreshed by the heartbeat thread


@pytest.mark.slow
def test_dry_run_marks_what_a_run_would_skip(cli, tmp_path, bench_home):
    suite = write_suite(tmp_path, **{**SUITE, "probes": []})
    before = cli("run", "--suite", suite, "--dry-run", "--json").json()
    assert before["pretrain_finished"] == [] and before["runs_to_do"] == before["runs"] == 5
    assert not any(p["finished"] for p in before["pairs"])
    assert not (bench_home / "mlflow.db").exists()  # a dry run writes no store
    assert cli("run", "--suite", suite, "--json").exit_code == 0
    after = cli("run", "--suite", suite, "--dry-run", "--json").json()
    assert after["pretrain_finished"] == ["digits"] and after["runs_to_do"] == 0
    assert all(p["finished"] for p in after["pairs"])
    changed = cli("run", "--suite", suite, "--dry-run", "--json",
                  "--set", "finetune_defaults.epochs=3").json()
    assert changed["pretrain_finished"] == ["digits"] and changed["runs_to_do"] == 4


@pytest.mark.parametrize("address", ["ray://192.0.2.7:10001", "192.0.2.7:6379"])
def test_ray_refuses_a_local_store_for_workers_on_other_machines(cli, tmp_path, bench_home,
                                                                 address):
    """A ray:// client URI or a head that is not this host (192.0.2.x is TEST-NET: no machine
    has it) fails before any run is opened; nothing connects to it."""
    res = cli("run", "--suite", write_suite(tmp_path, **SUITE), "--executor", "ray",
              "--address", address)
    assert res.exit_code == 1, res.stderr
    assert f"--address {address}" in res.stderr
    assert "local SQLite file workers there cannot reach" in res.stderr
    assert "team server (mlflow/team" in res.stderr
    assert "MLFLOW_TRACKING_URI=http://HOST:5000" in res.stderr
    assert finished_runs(bench_home) == []  # no run was created


def test_ray_knows_which_addresses_are_this_machine():
    import socket

    from benchmark.engine.executors.ray import is_this_host, remote_address

    for local in (None, "auto", "127.0.0.1:6379", "localhost:6379", "[::1]:6379",
                  "ray://127.0.0.1:10001", f"{socket.gethostname()}:6379"):
        assert remote_address(local) is None, local
    assert "client URI of another machine" in remote_address("ray://192.0.2.7:10001")
    assert "not this machine" in remote_address("192.0.2.7:6379")
    assert not is_this_host("192.0.2.7") and is_this_host("127.0.0.1")


def test_ray_num_cpus_is_for_a_local_instance_only(cli, tmp_path):
    suite = write_suite(tmp_path, **SUITE)
    res = cli("run", "--suite", suite, "--executor", "ray", "--address", "127.0.0.1:6379",
              "--num-cpus", "2")
    assert res.exit_code == 1
    assert "--num-cpus sizes a Ray instance started here" in res.stderr
    assert "Drop --num-cpus" in res.stderr
    res = cli("run", "--suite", suite, "--executor", "slurm-local", "--num-cpus", "2")
    assert res.exit_code == 2 and "--num-cpus do(es) not apply to --executor slurm-local" \
        in res.stderr


@pytest.mark.parametrize("executor,module,extra", [("ray", "ray", "ray"),
                                                   ("slurm-local", "submitit", "slurm")])
def test_the_cli_without_an_engine_names_its_extra(tmp_path, executor, module, extra):
    """The bench command in a Python whose ``import MODULE`` fails (a package of that name
    first on PYTHONPATH that raises ImportError, as a missing package does)."""
    shim = tmp_path / "shim" / module
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(f"raise ImportError('No module named {module}')\n")
    env = {**os.environ, "BENCH_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(shim.parent), os.environ.get("PYTHONPATH", "")])}
    env.pop("MLFLOW_TRACKING_URI", None)
    res = subprocess.run([BENCH, "run", "--suite", str(write_suite(tmp_path, **SUITE)),
                          "--executor", executor], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0
    assert f"needs {module}, which is not installed" in res.stderr
    assert f'pip install -e ".[{extra}]"' in res.stderr
    assert not (tmp_path / "home" / "mlflow.db").exists()  # failed before any work
