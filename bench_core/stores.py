"""Where runs go and when a run counts as abandoned, as plain values (no MLflow import: the
CLI checks a plan before it loads MLflow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go, as plain values a worker process on another machine can use: the
    tracking URI, the experiment name and (local stores only) the artifact root."""

    uri: str
    experiment: str
    artifact_root: str | None = None

    @property
    def local_only(self) -> bool:
        """True when only this machine can reach the store (a SQLite or file URI)."""
        return self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:///`` store, else None."""
        prefix = "sqlite:///"
        return Path(self.uri[len(prefix):]) if self.uri.startswith(prefix) else None


def tracking_target(home: Path, uri: str | None, experiment: str) -> TrackingTarget:
    """``uri`` (e.g. from MLFLOW_TRACKING_URI), else the SQLite store in BENCH_HOME. Artifacts
    of experiments created in a local store go to ``BENCH_HOME/mlartifacts`` (never to
    ``./mlruns`` of the current folder); a server decides for itself."""
    uri = uri or f"sqlite:///{home / 'mlflow.db'}"
    probe = TrackingTarget(uri, experiment)
    return TrackingTarget(uri, experiment, str(home / "mlartifacts") if probe.local_only else None)


@dataclass(frozen=True)
class ResumePolicy:
    """When a RUNNING run counts as abandoned: its process is dead (same host), it belongs to
    an earlier attempt of the same job in this session (engines retry only after an attempt
    died), or its heartbeat (refreshed every ``heartbeat_s``) is older than ``stale_after_s``."""

    heartbeat_s: float = 60.0
    stale_after_s: float = 600.0
    wait_poll_s: float = 10.0
