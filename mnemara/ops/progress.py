"""A progress bar for long command-line work (import, reindex).

The bar goes to stderr and only when stderr is a terminal: piped or captured output stays clean,
and the command's final line says what happened. `rich` (installed with textual) is imported only
when a bar is actually drawn, so commands that never need one do not pay for it.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

Update = Callable[[int, int], None]


def _ignore(done: int, total: int) -> None:
    pass


@contextmanager
def progress_bar(label: str, *, stream: TextIO | None = None) -> Iterator[Update]:
    """`with progress_bar("indexing") as update: ... update(done, total)`.

    A total of 0 means "not known yet" (the bar pulses). The bar is removed when the block ends,
    so the line the command prints next is not mixed with it.
    """
    stream = stream if stream is not None else sys.stderr
    if not _is_terminal(stream):
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
