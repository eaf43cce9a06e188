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
    """The layout below one ``BENCH_HOME``."""

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

    def dataset_cache(self, name: str) -> Path:
        return self.cache_dir / name

    def dataset_downloads(self, name: str) -> Path:
        return self.downloads_dir / name
