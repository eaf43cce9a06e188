"""MLflow tracking: one experiment per suite, runs keyed by config hash for resume.

Structure: a run per pretraining (``pretrain: SOURCE``), a parent run per source -> target pair
(``SOURCE -> TARGET``, tags ``source``/``target``) with nested runs per fold. The MLflow UI's
run comparison of sources for one target is a filter ``tags.target = 'X'`` on parent runs
(``tags.level = 'pair'``) and their ``test_auc_mean`` / ``transferability_mean`` metrics.

Resume: a job whose FINISHED run with the same ``config_hash`` exists is skipped. A run left
RUNNING by a killed process (its ``pid`` tag names a dead process on this host) is marked
FAILED; a pair's parent run is then reopened and only its missing folds are run.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


def default_tracking_uri(home: Path, environ: Mapping[str, str]) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store in BENCH_HOME."""
    return environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists as ``a.b.c`` params (MLflow values are strings, max 6000 chars)."""
    out: dict[str, str] = {}
    if isinstance(data, Mapping):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, (list, tuple)) and data and isinstance(data[0], Mapping):
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}{v.get('name', i)}."))
    else:
        out[prefix.rstrip(".")] = str(data)[:6000]
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Tracker:
    """The suite's experiment in one MLflow store."""

    def __init__(self, uri: str, experiment: str, artifact_root: Path | None = None,
                 system_metrics_interval: float = 2.0) -> None:
        mlflow.set_tracking_uri(uri)
        mlflow.set_system_metrics_sampling_interval(system_metrics_interval)
        self.uri = uri
        self.client = MlflowClient(uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            location = artifact_root.as_uri() if artifact_root else None
            exp_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        self.experiment_id = exp_id
        self.host = socket.gethostname()
        self.commit = git_commit()

    def base_tags(self) -> dict[str, str]:
        return {"host": self.host, "pid": str(os.getpid()), "git_commit": self.commit}

    def runs(self, config_hash: str) -> list[Run]:
        return self.client.search_runs([self.experiment_id],
                                       f"tags.config_hash = '{config_hash}'",
                                       max_results=100)

    def finished(self, config_hash: str) -> Run | None:
        done = [r for r in self.runs(config_hash) if r.info.status == "FINISHED"]
        return done[0] if done else None

    def is_stale(self, run: Run) -> bool:
        tags = run.data.tags
        if tags.get("host") != self.host:
            log.warning("run %s is RUNNING on host %s; treating it as interrupted",
                        run.info.run_id, tags.get("host"))
            return True
        return not _pid_alive(int(tags.get("pid", "0") or 0))

    def reopenable(self, config_hash: str) -> Run | None:
        """An interrupted run with this hash (RUNNING by a dead process, or FAILED/KILLED)."""
        for run in self.runs(config_hash):
            status = run.info.status
            if status == "RUNNING" and self.is_stale(run) or status in ("FAILED", "KILLED"):
                return run
        return None

    def fail_stale(self, config_hash: str) -> int:
        """Mark interrupted RUNNING runs with this hash FAILED; return how many."""
        n = 0
        for run in self.runs(config_hash):
            if run.info.status == "RUNNING" and self.is_stale(run):
                self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
                n += 1
        return n

    def set_terminated(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)
