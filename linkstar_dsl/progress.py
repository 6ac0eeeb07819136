"""Progress bars for long commands, on standard error, only where a person is watching.

`progress_bar(label, total)` is a context manager giving `advance(n=1)`: a rich progress bar when
standard error is a terminal and `NO_COLOR` is not set, and nothing at all otherwise (piped
output, CI logs and tests stay plain).  With `total=None` the bar counts without an end.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator


def wanted() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


@contextlib.contextmanager
def progress_bar(label: str, total: int | None = None, unit: str = "") -> Iterator[Callable[..., None]]:
    if not wanted():
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn() if total else
               TextColumn("{task.completed:,}"), TextColumn(unit), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)
