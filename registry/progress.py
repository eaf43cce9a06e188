"""Progress reporting: heavy loops take a ``ProgressFactory`` and report through it.

The CLI passes :func:`rich_progress` (bars on stderr); library callers get silence by default.
"""

from __future__ import annotations

from datetime import timedelta
from rich.console import Console
from rich.progress import ProgressColumn
from rich.text import Text
import sys

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
    """A rich progress bar on stderr with rate and time left; none when stderr is not a
    terminal (a log file gets the commands' log lines instead)."""

    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeRemainingColumn, TransferSpeedColumn)

    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               MofNCompleteColumn(), TimeRemainingColumn()]
    if description.startswith("download"):
        columns[3] = TransferSpeedColumn()
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def time_left(elapsed: float | None, completed: float, total: float | None) -> float | None:
    """Seconds left at the pace so far: ``elapsed / completed`` per unit (wall time, so jobs
    running side by side count as such) times the units left; None before the first unit."""
    if elapsed is None or total is None or completed <= 0:
        return None
    return max(0.0, elapsed / completed * (total - completed))


def _pace_column():
    """A rich column with :func:`time_left` of its task. Rich's own time-left column forgets
    advances older than 30 s, so a plan whose jobs finish minutes apart would show none."""


    class PaceTimeLeft(ProgressColumn):
        def render(self, task) -> Text:
            seconds = time_left(task.elapsed, task.completed, task.total)
            shown = "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))
            return Text(shown, style="progress.remaining")

    return PaceTimeLeft()


class RichBoard:
    """One live rich display on stderr for a whole run: a bar over the plan's jobs (done /
    total, elapsed, time left at the pace of the jobs finished so far) above the bars of the
    jobs running here. ``factory`` is a :data:`ProgressFactory`. Off when stderr is not a
    terminal, unless a console is given; ``clock`` (seconds, rich's ``get_time``) is for
    tests."""

    def __init__(self, console=None, clock: Callable[[], float] | None = None) -> None:
        self._console = console
        self._clock = clock
        self.live = console is not None or sys.stderr.isatty()
        self._progress = None

    def __enter__(self) -> RichBoard:
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress,
                                       TaskProgressColumn, TextColumn, TimeElapsedColumn)

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), _pace_column(),
                console=self._console or Console(stderr=True), get_time=self._clock)
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def tasks(self) -> list[tuple[str, float, float | None]]:
        """What the board shows now: (description, completed, total) per bar."""
        if self._progress is None:
            return []
        return [(t.description, t.completed, t.total) for t in self._progress.tasks]

    def times_left(self) -> dict[str, float | None]:
        """The time left each bar shows now, in seconds (None: not known yet)."""
        if self._progress is None:
            return {}
        return {t.description: time_left(t.elapsed, t.completed, t.total)
                for t in self._progress.tasks}

    @contextmanager
    def factory(self, description: str, total: int | None) -> Iterator[Advance]:
        if self._progress is None:
            yield lambda n: None
            return
        task = self._progress.add_task(description, total=total)
        try:
            yield lambda n: self._progress.advance(task, n)
        finally:
            self._progress.remove_task(task)
