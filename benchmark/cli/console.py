"""Terminal plumbing for the CLI: logging and progress on stderr, JSON alone on stdout, errors
as one paragraph with a non-zero exit."""

from __future__ import annotations

from rich.console import Console
from rich.logging import RichHandler
import yaml

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from bench_core.logs import quiet_libraries
from registry.errors import BenchError

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(verbose: bool) -> None:
    """Log to stderr through rich (stdout stays clean for --json)."""

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler],
                        format="%(message)s", force=True)
    quiet_libraries(verbose)


def plain_yaml(doc: Any) -> str:
    """``doc`` as readable YAML: keys in their order, no anchors or aliases (``&id001``) for
    values that appear twice, unicode as is."""

    class _Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(doc, Dumper=_Plain, sort_keys=False, allow_unicode=True)


def print_json(doc: Any) -> None:
    """Write one strict JSON document (no NaN) to stdout and nothing else."""
    sys.stdout.write(json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready rows, missing values as None (JSON null, never NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr as an error paragraph; return the Exit to raise."""
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Turn :class:`BenchError` into an error paragraph on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BenchError as err:
            raise fail(str(err), err.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted; nothing partial was kept.", 130) from None

    return wrapper  # type: ignore[return-value]
