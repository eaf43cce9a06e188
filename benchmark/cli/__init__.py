"""The ``bench`` command line (Typer). Commands only turn flags into calls of
:mod:`benchmark.api`; they import it when they run, so ``bench --help`` and errors in flags
come without loading torch or MLflow."""

from benchmark.cli.app import app

__all__ = ["app"]
