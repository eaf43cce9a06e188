"""Pretrained source weights, cached by config hash in ``BENCH_HOME/models`` (written
atomically) and kept as an artifact of the pretraining run, so a worker on another machine
(or a later session) takes them from the store instead of training again."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import mlflow.artifacts
from safetensors.torch import save_file

from bench_core.tracking import Tracker
from registry.files import atomic_write

log = logging.getLogger(__name__)


def fetch_weights(tracker: Tracker, config_hash: str, path: Path) -> bool:
    """Bring the weights of a pretraining finished by another process or machine (waiting
    while one runs it now) from its run's artifacts to ``path``; False if there is none."""
    run = tracker.finished(config_hash) or tracker.wait_for_others(config_hash)
    if run is None:
        return False
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                      artifact_path=f"weights/{path.name}",
                                                      dst_path=tmp, tracking_uri=tracker.uri)
            os.replace(got, path)  # same folder: atomic
    log.info("weights of %s taken from run %s", config_hash, run.info.run_id)
    return True


def save_weights(state: dict, path: Path, meta: dict[str, str]) -> None:
    """``state`` as a safetensors file at ``path`` (atomically) with ``meta``."""
    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                             str(tmp), metadata=meta))
