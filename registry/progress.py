"""Progress reporting: heavy loops take a ``ProgressFactory`` and report through it.

The CLI passes :func:`rich_progress` (bars on stderr); library callers get silence by default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ContextManager

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, "int | None"], ContextManager[Advance]]


@contextmanager
def no_progress(description: str, total: int | None) -> Iterator[Advance]:
    yield lambda n: None


@contextmanager
def rich_progress(description: str, total: int | None) -> Iterator[Advance]:
    """A rich progress bar on stderr with rate and time left."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeRemainingColumn, TransferSpeedColumn)

    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               MofNCompleteColumn(), TimeRemainingColumn()]
    if description.startswith("download"):
        columns[3] = TransferSpeedColumn()
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
