"""Importing this module registers every built-in probe."""

from probes import (expert, features, metafeatures, simex, task2vec,  # noqa: F401
                    transfer_estimators)
from probes.base import PROBES

__all__ = ["PROBES"]
