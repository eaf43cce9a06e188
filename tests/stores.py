"""Reading a BENCH_HOME's SQLite MLflow store from a test while a `bench` process writes it."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock
from mlflow.tracking import MlflowClient


def store_client(home: Path) -> MlflowClient:
    """A client of ``home/mlflow.db``, opened under the lock `bench` holds while it creates the
    store: MLflow builds the tables on first use, and a reader doing that at the same moment
    as a `bench` process makes one of the two fail."""
    db = home / "mlflow.db"
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db}.lock", timeout=300):
        client = MlflowClient(f"sqlite:///{db}")  # constructing it creates the tables
        client.search_experiments(max_results=1)
    return client
