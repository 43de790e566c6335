"""Wake requests blocked in UWS WAIT when their job changes phase (LISTEN uws_phase).

One listening connection per server process fans notifications out to asyncio events. Waiters
register before they read the job, so a change between the read and the wait is not missed.
If the listening connection is down, waits still end: callers re-read the job every few
seconds (see router.py), so a lost notification costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg

from escape_vo.uws.store import CHANNEL_PHASE

log = logging.getLogger(__name__)


class PhaseWatcher:
    def __init__(self, url: str) -> None:
        self.url = url
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="uws-phase-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL_PHASE}")
                    self.connected.set()
                    delay = 0.5
                    async for note in conn.notifies():
                        self._wake(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restarted or unreachable: retry, wake everyone
                self.connected.clear()
                log.warning("UWS phase listener lost its connection (%s); retrying", exc)
                for job_id in list(self._waiters):
                    self._wake(job_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    def _wake(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set at the next phase change of `job_id` (register, then read the job)."""
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]
