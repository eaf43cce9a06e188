"""Where transfer-bench keeps its files (``BENCH_HOME``).

Only the CLI layer calls :func:`resolve_home` with the environment; everything below takes a
:class:`BenchPaths` and creates nothing until it writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.cache/transfer-bench")


def resolve_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$BENCH_HOME`` if set (relative paths taken from the current folder), else the default."""
    env = os.environ if environ is None else environ
    raw = env.get("BENCH_HOME")
    home = Path(raw) if raw else DEFAULT_HOME
    return home.expanduser().absolute()


@dataclass(frozen=True)
class BenchPaths:
    """The layout below one ``BENCH_HOME``: the one place every file and folder there is
    named (nothing else joins paths onto the home)."""

    home: Path

    @property
    def registry_db(self) -> Path:
        return self.home / "registry.db"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def downloads_dir(self) -> Path:
        return self.home / "downloads"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def registry_models_dir(self) -> Path:
        """Published models downloaded from an MLflow Model Registry (models:/NAME/VERSION)."""
        return self.home / "registry-models"

    @property
    def openml_dir(self) -> Path:
        return self.home / "openml"

    @property
    def mlflow_db(self) -> Path:
        """The local MLflow store (``sqlite:///``) when MLFLOW_TRACKING_URI is not set."""
        return self.home / "mlflow.db"

    @property
    def mlartifacts_dir(self) -> Path:
        """The artifacts of experiments created in the local store."""
        return self.home / "mlartifacts"

    @property
    def origin_marker(self) -> Path:
        """Where this home was first used, once it has moved (bench_core.relocate): paths
        under the home enter config hashes in that form, so a moved home keeps its hashes."""
        return self.home / "origin.json"

    @property
    def models_dir(self) -> Path:
        """Pretrained source weights, one file per pretraining config hash."""
        return self.home / "models"

    def pretrained_weights(self, config_hash: str) -> Path:
        return self.models_dir / f"{config_hash}.safetensors"

    def kept_model(self, run_id: str) -> Path:
        """A fine-tuned fold model (``keep_models``) downloaded from its run for publishing."""
        return self.home / "kept-models" / run_id

    def published(self, name: str) -> Path:
        """The timm / Hugging Face folder of a published model."""
        return self.home / "published" / name

    def report(self, suite: str) -> Path:
        """The report folder of a suite."""
        return self.home / "reports" / suite

    def submitit(self, session: str) -> Path:
        """submitit's job folders of one driver session (Slurm executors)."""
        return self.home / "submitit" / session

    def probe_cache(self, method: str) -> Path:
        """What a probe keeps between runs (Task2Vec's embeddings by options)."""
        return self.home / "probes" / method

    def openml_export(self, name: str) -> Path:
        return self.home / "openml-export" / name

    def dataset_cache(self, name: str) -> Path:
        return self.cache_dir / name

    def dataset_downloads(self, name: str) -> Path:
        return self.downloads_dir / name
