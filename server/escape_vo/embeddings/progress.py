"""Progress bars for the long steps (preprocess, training epochs, apply), quiet when not wanted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def __call__(self, advance: int = 1, **fields: object) -> None: ...


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr; `enabled=False` (tests, libraries) draws nothing."""
    if not enabled:
        yield lambda advance=1, **fields: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task(description, total=total, info="")

        def advance(advance: int = 1, **fields: object) -> None:
            info = " ".join(f"{k}={v}" for k, v in fields.items())
            bar.update(task, advance=advance, **({"info": info} if fields else {}))

        yield advance
