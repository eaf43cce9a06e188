"""Config hashes: the key of every job, probe and cached model (resume depends on them)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def config_hash(data: Any) -> str:
    """Stable short hash of a JSON-able config."""
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
