"""Progress bars and terminal tables (rich), written to stderr so stdout stays parseable."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None or _console.file is not sys.stderr:
        _console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _console


def quiet() -> bool:
    return os.environ.get("DENSE_EDGE_QUIET", "") not in ("", "0")


_said: set[str] = set()


def info(message: str, *, once: bool = False) -> None:
    """A line on stderr; ``once``: not again in this process (``reusing ...`` is said once per
    stage and run, however many targets ask for the same stage's output)."""
    if once:
        if message in _said:
            return
        _said.add(message)
    if not quiet():
        console().print(message)


class Bar:
    """One task on a rich progress display; ``advance(n, **fields)`` updates it."""

    def __init__(self, progress: Progress | None, task: Any):
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **fields)

    def update(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **fields)


class _Count(Bar):
    """What a bar would show, counted, for a log that is not a terminal."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self.done = 0.0

    def advance(self, n: float = 1, **fields: Any) -> None:
        self.done += n


@contextlib.contextmanager
def no_bar() -> Iterator[Bar]:
    """A bar that shows nothing (for worker processes and non-main ranks)."""
    yield Bar(None, None)


@contextlib.contextmanager
def bar(description: str, total: float | None, *, status: bool = False) -> Iterator[Bar]:
    """A progress bar on stderr (silent when DENSE_EDGE_QUIET is set)."""
    if quiet():
        yield Bar(None, None)
        return
    if not console().is_terminal:  # a log file or a pipe: one plain line, no redrawn bars
        count, t0 = _Count(), time.perf_counter()
        yield count
        of = f"/{total:g}" if total else ""
        info(f"{description}: {count.done:g}{of} in {time.perf_counter() - t0:.1f} s")
        return
    columns: list[Any] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total and float(total).is_integer() else TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console(), transient=False) as progress:
        task = progress.add_task(description, total=total, status="")
        yield Bar(progress, task)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        numeric = all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
        t.add_column(c, justify="right" if numeric and rows else "left")
    for r in rows:
        t.add_row(*[_cell(v) for v in r])
    return t


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    # Tables are results: print them to stdout even when progress is quiet. Piped or captured
    # output gets a wide console rather than rich's 80 columns.
    width = None if sys.stdout.isatty() else 160
    Console(highlight=False, soft_wrap=True, width=width).print(table(title, columns, rows))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
