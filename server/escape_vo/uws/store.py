"""Job state in PostgreSQL: every read and state change of a UWS job, as small SQL statements.

The jobs table is also the queue. A worker claims the oldest QUEUED job with
`UPDATE ... WHERE job_id = (SELECT ... FOR UPDATE SKIP LOCKED)`, so any number of workers on
any number of machines share one database without handing out a job twice; the claim sets a
lease that the worker's heartbeat extends. A job whose lease has expired (its worker was killed
or lost the database) is put back in the queue, or failed with a message once it has been
interrupted MAX_ATTEMPTS times. Every phase change sends NOTIFY uws_phase (payload: job id),
which wakes the clients blocked in WAIT; enqueueing sends NOTIFY uws_queue (payload: kind), which
wakes idle workers; ABORT and DELETE send NOTIFY uws_abort, which stops the running query.

Times come from the database clock (now()), the one clock all machines share; creation times
are kept to the millisecond, the precision the documents show, so AFTER=<a creationTime> is exact.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import psycopg
from psycopg.rows import tuple_row

from escape_vo.uws.model import (
    ACTIVE,
    COMPLETED,
    ERROR,
    HELD,
    PENDING,
    QUEUED,
    Job,
    ResultFile,
)

MAX_ATTEMPTS = 3  # executions interrupted by a dying worker before the job ends in ERROR
CHANNEL_PHASE, CHANNEL_QUEUE, CHANNEL_ABORT = "uws_phase", "uws_queue", "uws_abort"

_COLUMNS = (
    "job_id, kind, phase, creation_time, execution_duration, destruction, owner_id, run_id, "
    "start_time, end_time, error_message, error_type, attempts"
)
Conn = psycopg.AsyncConnection


def session_tag(job_id: str) -> str:
    """The application_name of the database sessions running a job (to find and cancel them)."""
    return f"uws:{job_id}"


def new_job_id() -> str:
    """128 random bits, lower-case hex: unguessable, and safe in URLs and file names."""
    return secrets.token_hex(16)


def _job(row: Sequence) -> Job:
    return Job(*row)


async def _notify(conn: Conn, channel: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


async def _load_details(conn: Conn, job: Job) -> Job:
    cur = await conn.execute(
        "SELECT name, value FROM escape.uws_job_parameters WHERE job_id = %s ORDER BY position",
        (job.job_id,),
    )
    job.parameters = [(n, v) for n, v in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT result_id, file_name, mime_type, size, row_count FROM escape.uws_job_results "
        "WHERE job_id = %s ORDER BY result_id",
        (job.job_id,),
    )
    job.results = [ResultFile(*r) for r in await cur.fetchall()]
    return job


# ---- the HTTP side ------------------------------------------------------------------------


async def create_job(
    conn: Conn,
    *,
    job_id: str,
    kind: str,
    parameters: list[tuple[str, str]],
    run_id: str | None,
    owner_id: str | None,
    execution_duration: int,
    destruction: datetime | None,
    retention_default: int,
    retention_hard: int,
    run: bool,
) -> None:
    """Insert a job with its parameters in one transaction (queued at once if `run`)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO escape.uws_jobs (job_id, kind, owner_id, run_id, phase, creation_time, "
            "queued_at, execution_duration, destruction, attempts) "
            "VALUES (%(id)s, %(kind)s, %(owner)s, %(run_id)s, %(phase)s, "
            "date_trunc('milliseconds', now()), "
            "CASE WHEN %(run)s THEN now() END, %(duration)s, "
            "LEAST(GREATEST(COALESCE(%(destruction)s, now() + make_interval(secs => %(keep)s)), "
            "now()), now() + make_interval(secs => %(hard)s)), 0)",
            {
                "id": job_id,
                "kind": kind,
                "owner": owner_id,
                "run_id": run_id,
                "phase": QUEUED if run else PENDING,
                "run": run,
                "duration": execution_duration,
                "destruction": destruction,
                "keep": retention_default,
                "hard": retention_hard,
            },
        )
        await _insert_parameters(conn, job_id, parameters, start=0)
        if run:
            await _notify(conn, CHANNEL_QUEUE, kind)


async def _insert_parameters(
    conn: Conn, job_id: str, parameters: list[tuple[str, str]], start: int
) -> None:
    if not parameters:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO escape.uws_job_parameters (job_id, position, name, value) "
            "VALUES (%s, %s, %s, %s)",
            [(job_id, start + i, name, value) for i, (name, value) in enumerate(parameters)],
        )


async def get_job(conn: Conn, job_id: str, kind: str, details: bool = True) -> Job | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM escape.uws_jobs WHERE job_id = %s AND kind = %s",
        (job_id, kind),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    job = _job(row)
    return await _load_details(conn, job) if details else job


def list_sql(phases: bool, after: bool, last: bool, owner: str | None) -> str:
    """The job list's query for the filters given (see list_jobs; named parameters)."""
    where = ["kind = %(kind)s"]
    # = or IS NULL, not IS NOT DISTINCT FROM, which no index can answer
    where.append("owner_id IS NULL" if owner is None else "owner_id = %(owner)s")
    where.append("phase = ANY(%(phases)s)" if phases else "phase <> 'ARCHIVED'")
    if after:
        where.append("creation_time > %(after)s")
    sql = (
        "SELECT job_id, phase, run_id, owner_id, creation_time FROM escape.uws_jobs "
        f"WHERE {' AND '.join(where)} ORDER BY creation_time DESC, job_id"
    )
    return sql + " LIMIT %(last)s" if last else sql


async def list_jobs(
    conn: Conn,
    kind: str,
    phases: Sequence[str] = (),
    after: datetime | None = None,
    last: int | None = None,
    owner: str | None = None,
) -> AsyncIterator[tuple]:
    """(job_id, phase, run_id, owner_id, creation_time), most recent first, streamed: the
    jobs of `owner`, or the anonymous ones for None.

    Without PHASE, ARCHIVED jobs are left out (UWS 1.1). The (kind, owner_id, creation_time)
    index answers the list of one owner, most recent first, however many jobs others have;
    (phase, queued_at) serves the workers.
    """
    sql = list_sql(bool(phases), after is not None, last is not None, owner)
    params = {"kind": kind, "phases": list(phases), "after": after, "last": last, "owner": owner}
    async with (
        conn.transaction(),
        conn.cursor(name="uws_job_list", row_factory=tuple_row) as cur,
    ):
        cur.itersize = 2000
        await cur.execute(sql, params)
        async for row in cur:
            yield row


async def queue_job(conn: Conn, job_id: str, kind: str) -> str | None:
    """PHASE=RUN: PENDING (or HELD) -> QUEUED. Returns the phase after the request."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET phase = 'QUEUED', queued_at = now() "
            "WHERE job_id = %s AND kind = %s AND phase IN (%s, %s) RETURNING phase",
            (job_id, kind, PENDING, HELD),
        )
        row = await cur.fetchone()
        if row:
            await _notify(conn, CHANNEL_QUEUE, kind)
            await _notify(conn, CHANNEL_PHASE, job_id)
            return row[0]
    job = await get_job(conn, job_id, kind, details=False)
    return job.phase if job else None


async def abort_job(conn: Conn, job_id: str, kind: str) -> str | None:
    """PHASE=ABORT: any active phase -> ABORTED (a running query is cancelled by its worker)."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET phase = 'ABORTED', end_time = now(), worker_id = NULL, "
            "lease_until = NULL WHERE job_id = %s AND kind = %s AND phase = ANY(%s) "
            "RETURNING phase",
            (job_id, kind, list(ACTIVE)),
        )
        row = await cur.fetchone()
        if row:
            await _notify(conn, CHANNEL_ABORT, job_id)
            await _notify(conn, CHANNEL_PHASE, job_id)
            return row[0]
    job = await get_job(conn, job_id, kind, details=False)
    return job.phase if job else None


async def delete_job(conn: Conn, job_id: str, kind: str) -> bool:
    async with conn.transaction():
        cur = await conn.execute(
            "DELETE FROM escape.uws_jobs WHERE job_id = %s AND kind = %s RETURNING phase",
            (job_id, kind),
        )
        row = await cur.fetchone()
        if row and row[0] in ACTIVE:
            await _notify(conn, CHANNEL_ABORT, job_id)
        if row:
            await _notify(conn, CHANNEL_PHASE, job_id)
        return row is not None


async def set_execution_duration(conn: Conn, job_id: str, kind: str, seconds: int) -> bool:
    """Only before the job starts; False if it has started already."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET execution_duration = %s WHERE job_id = %s AND kind = %s "
            "AND phase IN (%s, %s, %s) RETURNING 1",
            (seconds, job_id, kind, PENDING, QUEUED, HELD),
        )
        return await cur.fetchone() is not None


async def set_destruction(
    conn: Conn, job_id: str, kind: str, when: datetime, retention_hard: int
) -> None:
    """Move the destruction time: never before now, never past creation + the hard limit."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE escape.uws_jobs SET destruction = LEAST(GREATEST(%s, now()), "
            "creation_time + make_interval(secs => %s)) WHERE job_id = %s AND kind = %s",
            (when, retention_hard, job_id, kind),
        )


async def set_parameters(
    conn: Conn, job_id: str, kind: str, parameters: list[tuple[str, str]]
) -> bool:
    """Replace the named parameters of a PENDING job; False if the job is no longer PENDING."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT phase FROM escape.uws_jobs WHERE job_id = %s AND kind = %s FOR UPDATE",
            (job_id, kind),
        )
        row = await cur.fetchone()
        if row is None or row[0] != PENDING:
            return False
        names = sorted({n for n, _ in parameters})
        await conn.execute(
            "DELETE FROM escape.uws_job_parameters WHERE job_id = %s AND name = ANY(%s)",
            (job_id, names),
        )
        cur = await conn.execute(
            "SELECT COALESCE(max(position) + 1, 0) FROM escape.uws_job_parameters "
            "WHERE job_id = %s",
            (job_id,),
        )
        (start,) = await cur.fetchone()
        await _insert_parameters(conn, job_id, parameters, start=start)
        return True


async def set_run_id(conn: Conn, job_id: str, kind: str, run_id: str) -> None:
    await conn.execute(
        "UPDATE escape.uws_jobs SET run_id = %s WHERE job_id = %s AND kind = %s",
        (run_id, job_id, kind),
    )


# ---- the worker side ----------------------------------------------------------------------


async def claim_job(conn: Conn, worker_id: str, kinds: Sequence[str], lease_s: float) -> Job | None:
    """Take the oldest QUEUED job of these kinds, or None; it is EXECUTING under our lease."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET phase = 'EXECUTING', start_time = now(), "
            "worker_id = %(worker)s, lease_until = now() + make_interval(secs => %(lease)s), "
            "attempts = attempts + 1 "
            "WHERE job_id = (SELECT job_id FROM escape.uws_jobs WHERE phase = 'QUEUED' "
            "AND kind = ANY(%(kinds)s) ORDER BY queued_at, job_id LIMIT 1 "
            "FOR UPDATE SKIP LOCKED) "
            f"RETURNING {_COLUMNS}",
            {"worker": worker_id, "lease": lease_s, "kinds": list(kinds)},
        )
        row = await cur.fetchone()
        if row is None:
            return None
        job = await _load_details(conn, _job(row))
        await _notify(conn, CHANNEL_PHASE, job.job_id)
        return job


async def heartbeat(conn: Conn, job_id: str, worker_id: str, lease_s: float) -> bool:
    """Extend our lease; False if the job is no longer ours to run (aborted, deleted, reaped)."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET lease_until = now() + make_interval(secs => %s) "
            "WHERE job_id = %s AND worker_id = %s AND phase = 'EXECUTING' RETURNING 1",
            (lease_s, job_id, worker_id),
        )
        return await cur.fetchone() is not None


async def finish_job(
    conn: Conn,
    job_id: str,
    worker_id: str,
    *,
    results: Sequence[ResultFile] = (),
    error: str | None = None,
    fatal: bool = True,
) -> bool:
    """EXECUTING -> COMPLETED (with results) or ERROR; False if the job is no longer ours."""
    phase = ERROR if error is not None else COMPLETED
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET phase = %s, end_time = now(), error_message = %s, "
            "error_type = %s, worker_id = NULL, lease_until = NULL "
            "WHERE job_id = %s AND worker_id = %s AND phase = 'EXECUTING' RETURNING 1",
            (
                phase,
                error,
                None if error is None else ("fatal" if fatal else "transient"),
                job_id,
                worker_id,
            ),
        )
        if await cur.fetchone() is None:
            return False
        if results:
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO escape.uws_job_results (job_id, result_id, file_name, mime_type, "
                    "size, row_count) VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (job_id, r.result_id, r.file_name, r.mime_type, r.size, r.row_count)
                        for r in results
                    ],
                )
        await _notify(conn, CHANNEL_PHASE, job_id)
        return True


async def requeue_job(conn: Conn, job_id: str, worker_id: str) -> bool:
    """A worker shutting down hands its job back, keeping its place in the queue."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET phase = 'QUEUED', start_time = NULL, worker_id = NULL, "
            "lease_until = NULL, attempts = GREATEST(attempts - 1, 0) "
            "WHERE job_id = %s AND worker_id = %s AND phase = 'EXECUTING' RETURNING kind",
            (job_id, worker_id),
        )
        row = await cur.fetchone()
        if row is None:
            return False
        await _notify(conn, CHANNEL_QUEUE, row[0])
        await _notify(conn, CHANNEL_PHASE, job_id)
        return True


async def reap_jobs(
    conn: Conn, dead_workers: Sequence[str] = (), max_attempts: int = MAX_ATTEMPTS
) -> list[tuple[str, str]]:
    """Jobs whose worker is gone (lease expired, or known dead): back to QUEUED, or ERROR.

    Returns (job_id, new phase) for each job reaped.
    """
    message = (
        "the job was interrupted %s times because the worker running it stopped "
        "(killed, crashed or out of memory) and was not retried again; if the query is heavy, "
        "make it lighter (fewer rows or columns, a narrower region) and submit it again"
    )
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE escape.uws_jobs SET "
            "phase = CASE WHEN attempts >= %(max)s THEN 'ERROR' ELSE 'QUEUED' END, "
            "end_time = CASE WHEN attempts >= %(max)s THEN now() END, "
            "start_time = CASE WHEN attempts >= %(max)s THEN start_time END, "
            "error_message = CASE WHEN attempts >= %(max)s "
            "THEN format(%(message)s, attempts) END, "
            "error_type = CASE WHEN attempts >= %(max)s THEN 'transient' END, "
            "worker_id = NULL, lease_until = NULL "
            "WHERE phase = 'EXECUTING' AND (lease_until < now() OR worker_id = ANY(%(dead)s)) "
            "RETURNING job_id, phase, kind",
            {"max": max_attempts, "message": message, "dead": list(dead_workers)},
        )
        rows = await cur.fetchall()
        if rows:  # statements of the dead worker may still run: stop them before anyone retries
            await conn.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = ANY(%s)",
                ([session_tag(job_id) for job_id, _, _ in rows],),
            )
        for job_id, phase, kind in rows:
            await _notify(conn, CHANNEL_PHASE, job_id)
            if phase == QUEUED:
                await _notify(conn, CHANNEL_QUEUE, kind)
        return [(job_id, phase) for job_id, phase, _ in rows]


async def executing_workers(conn: Conn) -> list[str]:
    cur = await conn.execute(
        "SELECT DISTINCT worker_id FROM escape.uws_jobs WHERE phase = 'EXECUTING' "
        "AND worker_id IS NOT NULL"
    )
    return [r[0] for r in await cur.fetchall()]


async def destroy_expired(conn: Conn, batch: int = 1000) -> list[str]:
    """Delete jobs past their destruction time (a batch at a time); returns their ids."""
    async with conn.transaction():
        cur = await conn.execute(
            "DELETE FROM escape.uws_jobs WHERE job_id IN (SELECT job_id FROM escape.uws_jobs "
            "WHERE destruction < now() ORDER BY destruction LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING job_id, phase",
            (batch,),
        )
        rows = await cur.fetchall()
        for job_id, phase in rows:
            if phase in ACTIVE:
                await _notify(conn, CHANNEL_ABORT, job_id)
            await _notify(conn, CHANNEL_PHASE, job_id)
        return [r[0] for r in rows]


async def existing_jobs(conn: Conn, job_ids: Sequence[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT job_id FROM escape.uws_jobs WHERE job_id = ANY(%s)", (list(job_ids),)
    )
    return {r[0] for r in await cur.fetchall()}


async def job_phase(conn: Conn, job_id: str) -> str | None:
    cur = await conn.execute("SELECT phase FROM escape.uws_jobs WHERE job_id = %s", (job_id,))
    row = await cur.fetchone()
    return row[0] if row else None
