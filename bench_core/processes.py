"""A child command that is stopped whole: its own process group, ended with it on Ctrl-C or
SIGTERM (servers such as MLflow's start workers that would otherwise outlive us)."""

from __future__ import annotations

import os
import signal
import subprocess


def run_process_group(command: list[str], grace_s: float = 10.0) -> int:
    """Run ``command`` in a new process group and return its exit code. SIGINT or SIGTERM to
    this process sends SIGTERM to the whole group, then SIGKILL after ``grace_s``."""
    proc = subprocess.Popen(command, start_new_session=True)
    stopping: list[int] = []

    def stop(signum, frame) -> None:
        stopping.append(signum)
        _signal_group(proc.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = proc.wait(timeout=grace_s if stopping else None)
                break
            except subprocess.TimeoutExpired:  # asked to stop, still there: no more grace
                _signal_group(proc.pid, signal.SIGKILL)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _signal_group(proc.pid, signal.SIGTERM)  # workers left behind by a dead parent
    return 128 + stopping[0] if stopping else code  # 130 for Ctrl-C, 143 for SIGTERM


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
