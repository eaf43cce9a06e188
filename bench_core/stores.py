"""Where runs go and when a run counts as abandoned, as plain values (no MLflow import: the
CLI checks a plan before it loads MLflow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench_core.relocate import relocate_tracking_store
from registry.paths import BenchPaths


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


def tracking_target(paths: BenchPaths, uri: str | None, experiment: str) -> TrackingTarget:
    """``uri`` (e.g. from MLFLOW_TRACKING_URI), else the SQLite store in BENCH_HOME. Artifacts
    of experiments created in a local store go to ``BENCH_HOME/mlartifacts`` (never to
    ``./mlruns`` of the current folder); a server decides for itself. Every use of BENCH_HOME's
    own store starts here: side effect, a store whose home was copied or moved has the
    locations it recorded in the old place rewritten to this one first (bench_core.relocate);
    a store in place is only read."""
    uri = uri or f"sqlite:///{paths.mlflow_db}"
    if TrackingTarget(uri, experiment).sqlite_path == paths.mlflow_db:
        relocate_tracking_store(paths)
    local = TrackingTarget(uri, experiment).local_only
    return TrackingTarget(uri, experiment, str(paths.mlartifacts_dir) if local else None)


def store_uri(paths: BenchPaths, tracking_uri: str | None) -> str:
    """``tracking_uri``, else BENCH_HOME's SQLite store: where ``models:/`` weights are looked
    up. Never None, which MLflow would read as its own default store (``./mlflow.db`` of the
    current folder, or whatever store this process opened last)."""
    return tracking_target(paths, tracking_uri, "").uri


@dataclass(frozen=True)
class ResumePolicy:
    """When a RUNNING run counts as abandoned: its process is dead (same host), it belongs to
    an earlier attempt of the same job in this session (engines retry only after an attempt
    died), or its heartbeat (refreshed every ``heartbeat_s``) is older than ``stale_after_s``."""

    heartbeat_s: float = 60.0
    stale_after_s: float = 600.0
    wait_poll_s: float = 10.0
