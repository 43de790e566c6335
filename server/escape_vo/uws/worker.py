"""Job workers: take QUEUED jobs from PostgreSQL, run them, record the outcome.

Why a queue in the jobs table (SELECT ... FOR UPDATE SKIP LOCKED plus LISTEN/NOTIFY) rather
than procrastinate: the UWS job row *is* the queue entry, so job state and queue can never
disagree (no second table to keep in step, no window where one says "done" and the other
"running"); crash recovery is a lease on that row (a heartbeat extends it, an expired lease
re-queues the job); ABORT is a phase change that the worker hears through NOTIFY and turns
into pg_cancel_backend of the running statement; and nothing but our own Alembic revision
owns the schema. Any number of workers on any number of machines can share one database.

A worker runs up to `concurrency` jobs at once in threads (runners are blocking: ADBC,
file writing) under one asyncio loop that claims jobs, heartbeats, listens and cleans up.
On SIGINT/SIGTERM it stops taking jobs, cancels the running ones and puts them back in the
queue with their place kept, so Ctrl-C loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from escape_vo.uws import store
from escape_vo.uws.cleaner import maintain, reap, worker_id_for
from escape_vo.uws.files import job_dir, remove_inputs, remove_job_dir
from escape_vo.uws.model import Job, JobContext, JobFailure, JobKind

log = logging.getLogger(__name__)


@dataclass
class _Running:
    job: Job
    ctx: JobContext
    reason: str | None = None  # why it was cancelled: abort, timeout, shutdown
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    def __init__(
        self,
        db_url: str,
        settings,
        kinds: Iterable[JobKind],
        *,
        concurrency: int = 2,
        lease: float = 30.0,
        poll: float = 2.0,
        maintenance_every: float = 30.0,
    ) -> None:
        self.db_url = db_url
        self.settings = settings
        self.kinds = {k.name: k for k in kinds}
        self.concurrency = max(1, concurrency)
        self.lease = lease
        self.poll = poll
        self.maintenance_every = maintenance_every
        self.worker_id = worker_id_for(os.getpid(), secrets.token_hex(4))
        self.stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[str, _Running] = {}
        self.completed = 0

    # ---- main loop ----

    async def run(self) -> None:
        """Work until `stop` is set."""
        data_dir = Path(self.settings.data_dir)
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="uws-job")
        async with AsyncConnectionPool(
            self.db_url,
            min_size=1,
            max_size=self.concurrency + 2,
            kwargs={"autocommit": True},
            open=False,
        ) as pool:
            await pool.open(wait=True, timeout=30)
            self.pool = pool
            listener = asyncio.create_task(self._listen(), name="uws-worker-listen")
            async with pool.connection() as conn:
                await reap(conn)  # jobs of a previous run of this machine's workers
            loop = asyncio.get_running_loop()
            for kind in self.kinds.values():
                if kind.warm_up is not None:  # e.g. build the ADQL parser before the first job
                    await loop.run_in_executor(self._threads, kind.warm_up)
            log.info(
                "worker %s ready: %s job(s) at once, kinds %s",
                self.worker_id,
                self.concurrency,
                ", ".join(self.kinds),
            )
            next_maintenance = 0.0
            tasks: set[asyncio.Task] = set()
            try:
                while not self.stop.is_set():
                    if time.monotonic() >= next_maintenance:
                        await self._maintain(data_dir)
                        next_maintenance = time.monotonic() + self.maintenance_every
                    self._wake.clear()  # before claiming: a NOTIFY from now on is not lost
                    while len(tasks) < self.concurrency and not self.stop.is_set():
                        job = await self._claim()
                        if job is None:
                            break
                        task = asyncio.create_task(self._execute(job), name=f"job-{job.job_id}")
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wait_any(), timeout=self.poll)
            finally:
                for running in list(self._running.values()):
                    self._cancel(running, "shutdown")
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
                self._threads.shutdown(wait=True)
                for kind in self.kinds.values():
                    if kind.close is not None:
                        kind.close()
        log.info("worker %s stopped", self.worker_id)

    async def _wait_any(self) -> None:
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(self.stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _claim(self) -> Job | None:
        try:
            async with self.pool.connection() as conn:
                return await store.claim_job(conn, self.worker_id, list(self.kinds), self.lease)
        except psycopg.Error as exc:
            log.warning("cannot claim jobs (%s); retrying", exc)
            return None

    async def _maintain(self, data_dir: Path) -> None:
        try:
            async with self.pool.connection() as conn:
                await maintain(conn, data_dir, self.kinds.values())
        except psycopg.Error as exc:
            log.warning("housekeeping failed (%s); will retry", exc)

    async def _listen(self) -> None:
        """NOTIFY uws_queue wakes the claim loop; NOTIFY uws_abort cancels a running job."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.db_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {store.CHANNEL_QUEUE}")
                    await conn.execute(f"LISTEN {store.CHANNEL_ABORT}")
                    self._wake.set()  # look at the queue once after (re)connecting
                    async for note in conn.notifies():
                        if note.channel == store.CHANNEL_QUEUE:
                            if note.payload in self.kinds:
                                self._wake.set()
                        elif (running := self._running.get(note.payload)) is not None:
                            self._cancel(running, "abort")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(1)

    # ---- one job ----

    async def _execute(self, job: Job) -> None:
        kind = self.kinds[job.kind]
        work_dir = job_dir(Path(self.settings.data_dir), job.job_id)
        ctx = JobContext(
            job=job,
            work_dir=work_dir,
            db_url=self.db_url,
            settings=self.settings,
            deadline=time.monotonic() + job.execution_duration,
            tag=store.session_tag(job.job_id),
        )
        running = _Running(job, ctx)
        self._running[job.job_id] = running
        started = time.monotonic()
        if self.stop.is_set():  # claimed just as the worker was asked to stop: hand it back
            running.reason = "shutdown"
            running.done.set()
            self._running.pop(job.job_id, None)
            await self._record(running, [], None, True)
            return
        log.info("job %s (%s) started, attempt %d", job.job_id, job.kind, job.attempts)
        heartbeat = asyncio.create_task(self._heartbeat(running))
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, kind.run, ctx)
        results, error, fatal = [], None, True
        try:
            results = await asyncio.shield(future)
        except JobFailure as exc:
            error, fatal = exc.message, exc.fatal
        except asyncio.CancelledError:
            self._cancel(running, "shutdown")
            with contextlib.suppress(Exception):
                await future
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.job_id)
            error = (
                f"internal error while running the job ({type(exc).__name__}); the operators "
                "have the details in the log"
            )
            fatal = False
        finally:
            running.done.set()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self._running.pop(job.job_id, None)
        await self._record(running, results, error, fatal)
        log.info(
            "job %s %s after %.2f s",
            job.job_id,
            running.reason or ("failed: " + error if error else "completed"),
            time.monotonic() - started,
        )
        self._wake.set()

    async def _record(self, running: _Running, results, error: str | None, fatal: bool) -> None:
        job, reason = running.job, running.reason
        data_dir = Path(self.settings.data_dir)
        try:
            async with self.pool.connection() as conn:
                if reason == "shutdown" and not (results and error is None):
                    # (a job that finished anyway while stopping is recorded as usual below)
                    await store.requeue_job(conn, job.job_id, self.worker_id)
                    log.info("job %s handed back to the queue", job.job_id)
                    return
                if reason == "abort":
                    if await store.job_phase(conn, job.job_id) is None:
                        remove_job_dir(data_dir, job.job_id)  # deleted while running
                    return
                if reason == "timeout":
                    error = (
                        f"the job ran longer than its execution duration "
                        f"({job.execution_duration} s) and was cancelled; ask for a longer "
                        "EXECUTIONDURATION or make the query cheaper (fewer rows, a narrower "
                        "region, indexed columns in WHERE)"
                    )
                    fatal = False
                ours = await store.finish_job(
                    conn,
                    job.job_id,
                    self.worker_id,
                    results=() if error else results,
                    error=error,
                    fatal=fatal,
                )
                if ours:
                    self.completed += 1
                    remove_inputs(data_dir, job.job_id)
                elif await store.job_phase(conn, job.job_id) is None:
                    remove_job_dir(data_dir, job.job_id)
        except psycopg.Error as exc:
            # The lease runs out and the job is retried: nothing is lost.
            log.error("cannot record the outcome of job %s (%s)", job.job_id, exc)

    async def _heartbeat(self, running: _Running) -> None:
        job, ctx = running.job, running.ctx
        interval = max(0.2, self.lease / 3)
        while True:
            await asyncio.sleep(min(interval, max(0.05, ctx.remaining() + 1)))
            if ctx.remaining() < -1 and running.reason is None:
                self._cancel(running, "timeout")
            try:
                async with self.pool.connection() as conn:
                    ours = await store.heartbeat(conn, job.job_id, self.worker_id, self.lease)
            except psycopg.Error as exc:
                log.warning("heartbeat of job %s failed (%s)", job.job_id, exc)
                continue
            if not ours and running.reason is None:
                self._cancel(running, "abort")

    def _cancel(self, running: _Running, reason: str) -> None:
        """Stop a running job: flag it, then cancel its statements until the runner returns."""
        if running.reason is not None or running.done.is_set():
            return
        running.reason = reason
        running.ctx.cancelled.set()
        log.info("cancelling job %s (%s)", running.job.job_id, reason)
        asyncio.get_running_loop().create_task(self._cancel_statements(running))

    async def _cancel_statements(self, running: _Running) -> None:
        while not running.done.is_set():
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(
                        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s AND pid <> pg_backend_pid()",
                        (running.ctx.tag,),
                    )
            except psycopg.Error as exc:
                log.warning("cannot cancel job %s yet (%s)", running.job.job_id, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.done.wait(), timeout=1.0)
