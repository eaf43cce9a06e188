"""``bench ui``: the MLflow UI on the local store, with the address of the suite's view."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bench_core.processes import run_process_group
from bench_core.stores import tracking_target
from benchmark.cli.options import tracking_uri
from benchmark.suite.files import DEFAULT_SUITE
from registry.paths import BenchPaths


def ui_cmd(ctx: typer.Context,
           suite: Annotated[str, typer.Option(help="Suite whose experiment URL to print.")]
           = DEFAULT_SUITE,
           port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
           workers: Annotated[int, typer.Option(
               help="Server worker processes (one: a local UI has one user, and on a busy "
                    "machine uvicorn kills workers slow to start; MLflow's default is 4).")
           ] = 1) -> None:
    """Start the MLflow UI on the local store (127.0.0.1 only) and print the address of the
    suite's experiment; Ctrl-C or SIGTERM stops the whole server, its workers included."""
    paths: BenchPaths = ctx.find_root().obj
    target = tracking_target(paths, tracking_uri(), f"transfer-bench/{suite}")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", target.uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if target.artifact_root:
        paths.home.mkdir(parents=True, exist_ok=True)
        command += ["--artifacts-destination", Path(target.artifact_root).as_uri()]
    base = f"http://127.0.0.1:{port}"
    typer.echo(f"MLflow UI for {target.uri} on {base} (Ctrl-C stops it)", err=True)
    typer.echo(_experiment_line(target, base, suite), err=True)
    code = run_process_group(command)
    typer.echo("MLflow UI stopped.", err=True)
    raise typer.Exit(code)


def _experiment_line(target, base: str, suite: str) -> str:
    """Where the suite's runs are in the UI, or how to make them."""
    from mlflow.exceptions import MlflowException  # MLflow: only once the UI is started

    from bench_core.tracking import experiment_url, open_client

    try:
        exp = open_client(target).get_experiment_by_name(target.experiment)
    except MlflowException as err:  # the UI may still start; say why there is no link
        return f"Could not look up '{target.experiment}' in {target.uri}: {err.message[:200]}"
    if exp is None:
        return (f"No experiment '{target.experiment}' in this store yet: run "
                f"`bench run --suite {suite}` (or pass --suite).")
    return f"suite {suite}: {experiment_url(base, exp.experiment_id)}"
