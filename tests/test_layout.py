"""The project layout contracts of design.md."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mlflow_folder_never_shadows_the_real_package():
    import mlflow

    assert not (ROOT / "mlflow" / "__init__.py").exists()
    assert Path(mlflow.__file__).resolve().parent != (ROOT / "mlflow").resolve()
    assert hasattr(mlflow, "start_run")


def test_nothing_is_created_at_import(tmp_path, monkeypatch):
    import importlib
    import subprocess
    import sys

    home = tmp_path / "home"
    monkeypatch.setenv("BENCH_HOME", str(home))
    code = "import benchmark.cli, registry.register, registry.views, registry.loaders"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert not home.exists()
    importlib.import_module("registry.paths")


def test_bench_home_resolution(tmp_path):
    from registry.paths import DEFAULT_HOME, resolve_home

    assert resolve_home({}) == DEFAULT_HOME.expanduser().absolute()
    assert resolve_home({"BENCH_HOME": str(tmp_path)}) == tmp_path
    assert resolve_home({"BENCH_HOME": "./.bench"}) == (Path.cwd() / ".bench").absolute()
