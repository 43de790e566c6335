"""Helpers shared by the benchmarks: a throw-away embedded server, timing."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from escape_vo.db.embedded import EmbeddedPostgres
from escape_vo.db.migrate import migrate

CACHE = Path(__file__).parent / ".cache"


@contextlib.contextmanager
def scratch_database() -> Iterator[tuple[str, Path]]:
    """A fresh embedded server and migrated database, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="escape-vo-bench-"))
    server = EmbeddedPostgres(work / "data")
    server.ensure_running()
    try:
        migrate(server.url())
        yield server.url(), work
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times
