"""Library log levels (no heavy imports here)."""

from __future__ import annotations

import logging


def quiet_libraries(verbose: bool) -> None:
    """Keep library INFO chatter off stderr (mlflow resets its loggers on first import, so
    callers call this again after importing it)."""
    for noisy in ("mlflow", "alembic", "urllib3", "openml", "ray", "submitit"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
