"""Shared fixtures: every test gets its own BENCH_HOME (registry, caches, downloads)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # tests/formats.py, tests/openml_cache.py

from benchmark.cli import app  # noqa: E402
from registry.catalog import Catalog  # noqa: E402
from registry.paths import BenchPaths  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread per pytest-xdist worker (and per process it starts): two workers on
    two cores with two threads each oversubscribe them. Measured, see docs/results.md;
    BENCH_TEST_THREADS=0 leaves torch's default for comparison."""
    import os

    threads = int(os.environ.get("BENCH_TEST_THREADS", "1"))
    if threads and os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture
def bench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bench-home"
    monkeypatch.setenv("BENCH_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def paths(bench_home: Path) -> BenchPaths:
    return BenchPaths(bench_home)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def json(self):
        """Parse stdout as strict JSON (NaN or Infinity are not JSON: fail on them)."""
        def reject(token):
            raise ValueError(f"not strict JSON: {token}")
        return json.loads(self.stdout, parse_constant=reject)


@pytest.fixture
def cli(bench_home: Path) -> Callable[..., CliResult]:
    """Run `bench ARGS...` in-process; stdout and stderr are kept apart."""
    runner = CliRunner()

    def run(*args: str) -> CliResult:
        res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return CliResult(res.exit_code, res.stdout, res.stderr)

    return run


def python_in_fresh_process(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter at the repository's root (what a module imports,
    nothing cached by this process), assert it exited 0 and return its stdout."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder`` (empty list if it does not exist)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def wait_for_health(url: str, proc, log: Path, timeout: float = 120.0) -> None:
    """Poll ``url``/health until it answers OK; fail with the server's log if it died."""
    import time
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                assert r.read().strip() == b"OK"
                return
        except OSError:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.time() < deadline, f"{url} did not answer /health in {timeout:.0f} s"
            time.sleep(1)


@contextlib.contextmanager
def served(command: list[str], url: str, env: dict, log: Path, **popen) -> Iterator:
    """A server in its own process group, its output in ``log`` (a pipe nobody reads fills up
    and blocks a chatty server); up at ``url`` on entry, its whole group gone on exit."""
    import signal
    import subprocess

    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **popen)
    try:
        wait_for_health(url, proc, log)
        yield proc
    finally:
        stop_group(proc, signal.SIGTERM)


def stop_group(proc, sig: int, grace_s: float = 20.0) -> None:
    """Send ``sig`` to ``proc``'s process group; SIGKILL what is left after ``grace_s``."""
    import os
    import signal
    import subprocess

    for s, wait in ((sig, grace_s), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, s)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _register_three(paths: BenchPaths) -> list:
    from registry.register import AddRequest, add_dataset
    from registry.store import RegistryStore

    catalog = Catalog.load()
    for name in ("digits", "digits-noise", "lfw-faces"):
        add_dataset(AddRequest(name), paths, catalog)
    store = RegistryStore(paths.registry_db)
    return [store.get(n) for n in ("digits", "digits-noise", "lfw-faces")]


@pytest.fixture
def three(paths):
    """Three small registered datasets (two related, one not), in that order."""
    return _register_three(paths)


@pytest.fixture(scope="session")
def shared_three(tmp_path_factory):
    """The same three datasets registered once per test worker, for tests that only read
    them: (their BENCH_HOME's paths, the records)."""
    paths = BenchPaths(tmp_path_factory.mktemp("three") / "home")
    return paths, _register_three(paths)


@pytest.fixture
def closed_port():
    """A local TCP port bound but not listening: every connection to it is refused at once,
    whether or not this machine is online."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="session")
def resnet50_weights(tmp_path_factory) -> dict[str, Path]:
    """A timm ResNet50 state dict with an ImageNet head (randomly initialised, seeded: no
    download), as the two files users pass to --imagenet-weights: .safetensors and .pth."""
    import timm
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("resnet50")
    torch.manual_seed(0)
    state = timm.create_model("resnet50", num_classes=1000).state_dict()
    out = {"safetensors": folder / "resnet50_imagenet.safetensors",
           "pth": folder / "resnet50_imagenet.pth"}
    save_file({k: v.contiguous() for k, v in state.items()}, str(out["safetensors"]))
    torch.save(state, out["pth"])
    return out
