"""Importing this module registers every built-in probe."""

from probes import (expert, features, metafeatures, otdd, simex, task2vec,  # noqa: F401
                    transfer_estimators)
from probes.base import PROBES

__all__ = ["PROBES"]
