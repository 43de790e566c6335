"""What a web server process runs for UWS besides the routes: the phase listener for WAIT, and
either an in-process job worker (JOB_WORKERS jobs at once, default 2) or, with JOB_WORKERS=0
(jobs left to `escape-vo worker` processes), the periodic housekeeping, so that expired jobs are
destroyed and orphaned ones re-queued even when no worker runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from escape_vo.uws.cleaner import maintain
from escape_vo.uws.notify import PhaseWatcher
from escape_vo.uws.registry import load_kinds
from escape_vo.uws.worker import Worker

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 60.0  # seconds


@contextlib.asynccontextmanager
async def uws_service(app, url: str, every: float = HOUSEKEEPING_EVERY) -> AsyncIterator[None]:
    """Start the WAIT listener and the worker or housekeeping; needs app.state.pool, settings."""
    watcher = PhaseWatcher(url)
    await watcher.start()
    app.state.uws_watcher = watcher
    kinds = list(load_kinds().values())
    data_dir = Path(app.state.settings.data_dir)
    concurrency = max(0, app.state.settings.job_workers)
    worker = None
    if concurrency:
        worker = Worker(url, app.state.settings, kinds, concurrency=concurrency)

        async def supervise() -> None:
            while not worker.stop.is_set():
                try:
                    await worker.run()
                except asyncio.CancelledError:
                    raise
                except Exception:  # e.g. the database was unreachable: start again
                    log.exception("the job worker stopped; starting it again in 5 s")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(worker.stop.wait(), timeout=5)

        task = asyncio.create_task(supervise(), name="uws-worker")
    else:

        async def housekeeping() -> None:
            while True:
                try:
                    async with app.state.pool.connection() as conn:
                        await maintain(conn, data_dir, kinds)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database may be restarting: try again later
                    log.warning("UWS housekeeping failed (%s); will retry", exc)
                await asyncio.sleep(every)

        task = asyncio.create_task(housekeeping(), name="uws-housekeeping")
    app.state.uws_worker = worker
    try:
        yield
    finally:
        if worker is not None:
            worker.stop.set()  # running jobs go back to the queue
        else:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await watcher.stop()
