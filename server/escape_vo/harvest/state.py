"""The state of harvests in PostgreSQL (escape.harvests, harvest_runs, harvest_items).

Every transition of an item is committed as it happens, so a crash loses at most the work in
flight: an item is pending (found), resolved (its file URL known), downloaded (its verified file
in the spool), ingested, or failed with a reason (permanent, or retried by the next run).
One process at a time runs a harvest: it holds a session advisory lock on the harvest's id, which
PostgreSQL releases by itself when the process dies, however it dies.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from escape_vo.harvest.discovery import RemoteItem
from escape_vo.harvest.spec import HarvestSpec

LOCK_CLASS = 7_412_006  # first key of pg_advisory_lock(int, int); the second is the harvest id
STATES = ("pending", "resolved", "downloaded", "ingested", "failed")


@dataclass
class ItemRow:
    item_id: int
    remote_id: str
    state: str
    access_url: str
    access_format: str | None
    file_url: str | None
    expected_size: int | None
    expected_checksum: str | None
    file_sha256: str | None
    ra: float | None
    dec: float | None


_ITEM_COLUMNS = ", ".join(ItemRow.__dataclass_fields__)


async def ensure_harvest(conn: psycopg.AsyncConnection, spec: HarvestSpec) -> int:
    cur = await conn.execute(
        "INSERT INTO escape.harvests (harvest_key, protocol, service_url, query, collection, "
        "created) VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (harvest_key) "
        "DO UPDATE SET harvest_key = EXCLUDED.harvest_key RETURNING harvest_id",
        (spec.key, spec.protocol, spec.service_url, spec.query, spec.collection),
    )
    return (await cur.fetchone())[0]


async def try_lock(conn: psycopg.AsyncConnection, harvest_id: int) -> bool:
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, harvest_id))
    return bool((await cur.fetchone())[0])


async def unlock(conn: psycopg.AsyncConnection, harvest_id: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, harvest_id))


async def close_dead_runs(conn: psycopg.AsyncConnection, harvest_id: int) -> int:
    """Runs left 'running' by a process that died (we hold the lock, so none is alive)."""
    cur = await conn.execute(
        "UPDATE escape.harvest_runs SET status = 'crashed', message = 'the process ended "
        "without closing the run (killed, or the machine stopped); the next run resumed it' "
        "WHERE harvest_id = %s AND status = 'running'",
        (harvest_id,),
    )
    return cur.rowcount


async def start_run(conn: psycopg.AsyncConnection, harvest_id: int) -> int:
    cur = await conn.execute(
        "INSERT INTO escape.harvest_runs (harvest_id, status, started, host, pid, discovered, "
        "new_items, ingested, failed, bytes) VALUES (%s, 'running', now(), %s, %s, 0, 0, 0, "
        "0, 0) RETURNING run_id",
        (harvest_id, socket.gethostname(), os.getpid()),
    )
    return (await cur.fetchone())[0]


async def finish_run(
    conn: psycopg.AsyncConnection,
    run_id: int,
    status: str,
    *,
    discovered: int,
    new_items: int,
    ingested: int,
    failed: int,
    nbytes: int,
    message: str | None,
) -> None:
    await conn.execute(
        "UPDATE escape.harvest_runs SET status = %s, finished = now(), discovered = %s, "
        "new_items = %s, ingested = %s, failed = %s, bytes = %s, message = %s WHERE run_id = %s",
        (status, discovered, new_items, ingested, failed, nbytes, message, run_id),
    )


async def add_items(
    conn: psycopg.AsyncConnection, harvest_id: int, run_id: int, items: Sequence[RemoteItem]
) -> int:
    """Record discovered items; those already known keep their state. Returns how many are new."""
    if not items:
        return 0
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS harvest_found (remote_id text, access_url text, "
            "access_format text, obs_id text, release_date text, ra float8, dec float8) "
            "ON COMMIT DELETE ROWS"
        )
        async with conn.cursor().copy(
            "COPY harvest_found (remote_id, access_url, access_format, obs_id, release_date, "
            "ra, dec) FROM STDIN"
        ) as copy:
            for i in items:
                await copy.write_row(
                    (
                        i.remote_id,
                        i.access_url,
                        i.access_format,
                        i.obs_id,
                        i.release_date,
                        i.ra,
                        i.dec,
                    )
                )
        cur = await conn.execute(
            "INSERT INTO escape.harvest_items (harvest_id, remote_id, state, access_url, "
            "access_format, obs_id, release_date, ra, dec, attempts, permanent, first_run_id, "
            "updated) SELECT DISTINCT ON (remote_id) %s, remote_id, 'pending', access_url, "
            "access_format, obs_id, release_date, ra, dec, 0, false, %s, now() "
            "FROM harvest_found ORDER BY remote_id ON CONFLICT (harvest_id, remote_id) DO NOTHING",
            (harvest_id, run_id),
        )
        return cur.rowcount


async def requeue_failed(
    conn: psycopg.AsyncConnection, harvest_id: int, include_permanent: bool
) -> int:
    """Give failed items another chance: transient failures always, permanent ones on request."""
    cur = await conn.execute(
        "UPDATE escape.harvest_items SET state = CASE WHEN file_url IS NULL THEN 'pending' "
        "ELSE 'resolved' END, permanent = false, updated = now() "
        "WHERE harvest_id = %s AND state = 'failed' AND (NOT permanent OR %s)",
        (harvest_id, include_permanent),
    )
    return cur.rowcount


async def unfinished(
    conn: psycopg.AsyncConnection, harvest_id: int, limit: int | None
) -> list[ItemRow]:
    """Items still to do, downloaded ones first (they only need ingesting), then oldest."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_ITEM_COLUMNS} FROM escape.harvest_items WHERE harvest_id = %s AND state IN "
        "('pending', 'resolved', 'downloaded') ORDER BY state = 'downloaded' DESC, item_id "
        "LIMIT %s",
        (harvest_id, limit),
    )
    return [ItemRow(**row) for row in await cur.fetchall()]


async def mark_resolved(
    conn: psycopg.AsyncConnection, rows: Iterable[tuple[int, str, int | None, str | None]]
) -> None:
    """(item_id, file_url, expected_size, expected_checksum) for each resolved item."""
    async with conn.cursor() as cur:
        await cur.executemany(
            "UPDATE escape.harvest_items SET state = 'resolved', file_url = %s, "
            "expected_size = %s, expected_checksum = %s, updated = now() WHERE item_id = %s",
            [(url, size, checksum, item_id) for item_id, url, size, checksum in rows],
        )


async def mark_failed(
    conn: psycopg.AsyncConnection,
    item_id: int,
    run_id: int,
    reason: str,
    permanent: bool,
    attempts: int = 0,
) -> None:
    await conn.execute(
        "UPDATE escape.harvest_items SET state = 'failed', reason = %s, permanent = %s, "
        "attempts = attempts + %s, done_run_id = %s, updated = now() WHERE item_id = %s",
        (reason, permanent, attempts, run_id, item_id),
    )


async def mark_downloaded(
    conn: psycopg.AsyncConnection, item_id: int, sha256: str, size: int, attempts: int
) -> None:
    await conn.execute(
        "UPDATE escape.harvest_items SET state = 'downloaded', file_sha256 = %s, file_size = %s, "
        "attempts = attempts + %s, reason = NULL, updated = now() WHERE item_id = %s",
        (sha256, size, attempts, item_id),
    )


async def mark_ingested(conn: psycopg.AsyncConnection, item_ids: list[int], run_id: int) -> None:
    await conn.execute(
        "UPDATE escape.harvest_items SET state = 'ingested', done_run_id = %s, reason = NULL, "
        "updated = now() WHERE item_id = ANY(%s)",
        (run_id, item_ids),
    )


async def reset_to_resolved(conn: psycopg.AsyncConnection, item_id: int) -> None:
    await conn.execute(
        "UPDATE escape.harvest_items SET state = 'resolved', file_sha256 = NULL, "
        "updated = now() WHERE item_id = %s",
        (item_id,),
    )


async def in_archive(conn: psycopg.AsyncConnection, sha256: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM archive.spectra WHERE file_sha256 = %s LIMIT 1", (sha256,)
    )
    return await cur.fetchone() is not None


async def failed_items(
    conn: psycopg.AsyncConnection, harvest_id: int, limit: int = 50
) -> list[tuple[str, str, bool]]:
    cur = await conn.execute(
        "SELECT remote_id, reason, permanent FROM escape.harvest_items WHERE harvest_id = %s "
        "AND state = 'failed' ORDER BY item_id LIMIT %s",
        (harvest_id, limit),
    )
    return [tuple(r) for r in await cur.fetchall()]  # type: ignore[misc]


# -- reports -----------------------------------------------------------------------------------


def harvests_status(conn: psycopg.Connection, harvest_id: int | None, failures: int) -> list[dict]:
    """Every harvest (or one) with counts per state, its recent runs and its failures."""
    out = []
    cur = conn.cursor(row_factory=dict_row)
    harvests = cur.execute(
        "SELECT * FROM escape.harvests WHERE %(id)s::bigint IS NULL OR harvest_id = %(id)s "
        "ORDER BY harvest_id",
        {"id": harvest_id},
    ).fetchall()
    for h in harvests:
        hid = h["harvest_id"]
        counts = dict(
            conn.execute(
                "SELECT state, count(*) FROM escape.harvest_items WHERE harvest_id = %s "
                "GROUP BY state",
                (hid,),
            ).fetchall()
        )
        runs = cur.execute(
            "SELECT * FROM escape.harvest_runs WHERE harvest_id = %s ORDER BY run_id DESC LIMIT 5",
            (hid,),
        ).fetchall()
        failed = cur.execute(
            "SELECT remote_id, reason, permanent, attempts FROM escape.harvest_items "
            "WHERE harvest_id = %s AND state = 'failed' ORDER BY item_id LIMIT %s",
            (hid, failures),
        ).fetchall()
        out.append(
            {**h, "counts": {s: counts.get(s, 0) for s in STATES}, "runs": runs, "failures": failed}
        )
    return out
