"""MLflow tracking: one experiment per suite, runs keyed by config hash for resume.

Structure: a run per pretraining (``pretrain: SOURCE``), a parent run per source -> target pair
(``SOURCE -> TARGET``, tags ``source``/``target``) with nested runs per fold. The MLflow UI's
run comparison of sources for one target is a filter ``tags.target = 'X'`` on parent runs
(``tags.level = 'pair'``) and their ``test_auc_mean`` / ``transferability_mean`` metrics.

Resume, the same for every executor: a job whose FINISHED run with the same ``config_hash``
exists is skipped. A RUNNING run whose process is gone (its ``pid`` on this host is dead, it is
an earlier attempt of the same session, or its ``heartbeat`` tag stopped moving) is marked
FAILED and the job is redone; a pair's parent run is reopened so only its missing folds run. A
live run of the same job in another process is waited for, never duplicated.
"""

from __future__ import annotations

from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

import json
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from filelock import FileLock
from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from bench_core.logs import quiet_libraries
from bench_core.stores import ResumePolicy, TrackingTarget, tracking_target
from registry.paths import BenchPaths

log = logging.getLogger(__name__)


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


@contextmanager
def _store_creation_lock(target: TrackingTarget) -> Iterator[None]:
    """Hold a file lock beside a local SQLite store while it is opened: MLflow creates the
    tables and runs its migrations on first use, and two processes doing that at once (a
    driver and its workers, two users, a script reading the store) make one of them fail."""
    path = target.sqlite_path
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=300):
        if not path.is_file():
            _create_store(target)
        yield


def _create_store(target: TrackingTarget) -> None:
    """Create a new local SQLite store with its artifact root under BENCH_HOME: MLflow makes
    the store's Default experiment (id 0) on creation, with the artifact root it was given,
    which for a plain ``MlflowClient(uri)`` is ``./mlruns`` of the current folder."""

    if target.artifact_root is None:
        return
    root = Path(target.artifact_root)
    root.parent.mkdir(parents=True, exist_ok=True)
    SqlAlchemyStore(target.uri, root.as_uri()).engine.dispose()


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"  # MLflow 3's UI: runs table, not the GenAI view
PAIRS_VIEW = "pairs"  # the shared view of the runs table the suite's URL opens
# MLflow 3's UI reads a shared view of its runs table from the experiment tag
# mlflow.sharedViewState.<key> (search, sort, columns, grouping) when the URL names
# ?viewStateShareKey=<key>: parent runs grouped by target, best mean AUC first.
PAIRS_VIEW_STATE = {
    "searchFilter": "tags.level = 'pair'",
    "orderByKey": "metrics.`test_auc_mean`", "orderByAsc": False,
    "selectedColumns": ["metrics.`test_auc_mean`", "metrics.`test_auc_std`",
                        "metrics.`transferability_mean`", "metrics.`transferability_std`",
                        "metrics.`generality_mean`", "params.`kind`", "params.`source`",
                        "params.`target`", "params.`k`", "params.`arch`",
                        "params.`config_hash`"],
    "groupBy": {"aggregateFunction": "average",
                "groupByKeys": [{"mode": "tag", "groupByData": "target"}]},
}


def experiment_tags(name: str) -> dict[str, str]:
    """Tags of a suite's experiment: MLflow 3's UI opens an experiment whose kind it cannot
    infer in its GenAI view (traces, runs hidden); this marks it as model training. The
    description (``mlflow.note.content``) says how to compare sources in the UI; the shared
    view is the comparison table the suite's URL opens."""
    return {EXPERIMENT_KIND_TAG: MODEL_TRAINING,
            f"mlflow.sharedViewState.{PAIRS_VIEW}": json.dumps(PAIRS_VIEW_STATE),
            "mlflow.note.content": (
                f"transfer-bench: {name}. One parent run per pair, named `source -> target`, "
                "with the pair's params (source, target, kind, k, arch, config_hash) and summary "
                "metrics (test_auc_mean/std, transferability_mean/std: Eq. 1 against the scratch "
                "baseline); its folds are nested runs. Which source is best for a target: the "
                f"view `?viewStateShareKey={PAIRS_VIEW}` groups the pairs by target, best mean "
                "AUC first; or select runs and Compare.")}


def experiment_url(base: str, experiment_id: str, run_id: str | None = None) -> str:
    """The MLflow UI's address of an experiment's comparison view (or of one of its runs) on
    the UI at ``base``, in the UI's model-training mode (MLflow 3 defaults to GenAI)."""
    url = f"{base.rstrip('/')}/#/experiments/{experiment_id}"
    if run_id:
        return f"{url}/runs/{run_id}?workflowType=machine_learning"
    return f"{url}/runs?viewStateShareKey={PAIRS_VIEW}&workflowType=machine_learning"


def open_client(target: TrackingTarget) -> MlflowClient:
    """An MlflowClient of ``target``. Constructing one opens the store, which for a new local
    SQLite store creates its tables: done under the store's creation lock."""
    with _store_creation_lock(target):
        return MlflowClient(target.uri)


class Tracker:
    """The suite's experiment in one MLflow store, seen from one process of one session."""

    def __init__(self, target: TrackingTarget, session: str = "",
                 policy: ResumePolicy = ResumePolicy(),
                 system_metrics_interval: float = 2.0) -> None:
        mlflow.set_tracking_uri(target.uri)
        mlflow.set_system_metrics_sampling_interval(system_metrics_interval)
        self.target, self.uri, self.session, self.policy = target, target.uri, session, policy
        with _store_creation_lock(target):
            self.client = MlflowClient(target.uri)  # opens (maybe creates) the store
            self.experiment_id = self._experiment_id(target)
        self.host = socket.gethostname()
        self.commit = git_commit()

    def _experiment_id(self, target: TrackingTarget) -> str:
        exp = self.client.get_experiment_by_name(target.experiment)
        if exp is None:
            if target.artifact_root:
                Path(target.artifact_root).parent.mkdir(parents=True, exist_ok=True)
            location = Path(target.artifact_root).as_uri() if target.artifact_root else None
            try:
                exp_id = self.client.create_experiment(target.experiment,
                                                       artifact_location=location,
                                                       tags=experiment_tags(target.experiment))
            except MlflowException:  # created meanwhile by another process of the session
                exp_id = self.client.get_experiment_by_name(target.experiment).experiment_id
        else:
            exp_id = exp.experiment_id
            for key, value in experiment_tags(target.experiment).items():
                user_text = key == "mlflow.note.content" and key in exp.tags  # theirs now
                if exp.tags.get(key) != value and not user_text:  # made by an older version
                    self.client.set_experiment_tag(exp_id, key, value)
        return exp_id

    def base_tags(self) -> dict[str, str]:
        return {"host": self.host, "pid": str(os.getpid()), "git_commit": self.commit,
                "session": self.session, "heartbeat": str(int(time.time()))}

    def runs(self, config_hash: str) -> list[Run]:
        return self.client.search_runs([self.experiment_id],
                                       f"tags.config_hash = '{config_hash}'",
                                       max_results=100)

    def finished(self, config_hash: str) -> Run | None:
        done = [r for r in self.runs(config_hash) if r.info.status == "FINISHED"]
        return done[0] if done else None

    def is_stale(self, run: Run) -> bool:
        """Whether a RUNNING ``run`` was abandoned (see :class:`ResumePolicy`)."""
        tags = run.data.tags
        if self.session and tags.get("session") == self.session:
            return True
        if tags.get("host") == self.host and not _pid_alive(int(tags.get("pid", "0") or 0)):
            return True
        beat = tags.get("heartbeat")
        if beat is None:  # written before heartbeats existed: only the host rule applies
            if tags.get("host") != self.host:
                log.warning("run %s is RUNNING on host %s; treating it as interrupted",
                            run.info.run_id, tags.get("host"))
                return True
            return False
        return time.time() - float(beat) > self.policy.stale_after_s

    def running_elsewhere(self, config_hash: str) -> Run | None:
        """A live RUNNING run with this hash (another process is doing this job now)."""
        for run in self.runs(config_hash):
            if run.info.status == "RUNNING" and not self.is_stale(run):
                return run
        return None

    def wait_for_others(self, config_hash: str) -> Run | None:
        """Wait while another live process runs this job; its FINISHED run, or None when it
        died (then this process takes the job over)."""
        other = self.running_elsewhere(config_hash)
        if other is not None:
            log.info("run %s (host %s, pid %s) is doing this job now; waiting for it",
                     other.info.run_id, other.data.tags.get("host"), other.data.tags.get("pid"))
        while other is not None:
            time.sleep(self.policy.wait_poll_s)
            other = self.running_elsewhere(config_hash)
        return self.finished(config_hash)

    def reopenable(self, config_hash: str) -> Run | None:
        """An interrupted run with this hash (RUNNING but abandoned, or FAILED/KILLED)."""
        for run in self.runs(config_hash):
            status = run.info.status
            if status == "RUNNING" and self.is_stale(run) or status in ("FAILED", "KILLED"):
                return run
        return None

    def fail_stale(self, config_hash: str) -> int:
        """Mark abandoned RUNNING runs with this hash FAILED; return how many."""
        n = 0
        for run in self.runs(config_hash):
            if run.info.status == "RUNNING" and self.is_stale(run):
                self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
                n += 1
        return n

    def set_terminated(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    @contextmanager
    def heartbeat(self, run_ids: Callable[[], Iterable[str]]) -> Iterator[None]:
        """Refresh the ``heartbeat`` tag of the runs ``run_ids()`` names, every
        ``policy.heartbeat_s`` seconds, in a background thread while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.policy.heartbeat_s):
                now = str(int(time.time()))
                for run_id in list(run_ids()):
                    try:
                        self.client.set_tag(run_id, "heartbeat", now)
                    except MlflowException as err:  # the store is busy: try next beat
                        log.debug("heartbeat of %s failed: %s", run_id, err)

        thread = threading.Thread(target=beat, name="mlflow-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def open_tracker(paths: BenchPaths, experiment: str, tracking_uri: str | None = None,
                 session: str = "", policy: ResumePolicy = ResumePolicy()) -> Tracker:
    """The experiment in ``tracking_uri``, or in the SQLite store of BENCH_HOME (artifacts in
    ``BENCH_HOME/mlartifacts``)."""
    target = tracking_target(paths, tracking_uri, experiment)
    if tracking_uri is None:
        paths.home.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(target, session, policy)
    quiet_libraries(logging.getLogger().level <= logging.DEBUG)  # mlflow resets its loggers
    return tracker
