"""Datestamps and deleted flags of the published records (escape.registry_records).

`publish` is called with the records as they are built now: a new identifier is inserted, a
changed fingerprint moves the datestamp to now, an identifier no longer built is marked deleted
(and revived if it comes back). Every statement is idempotent, so concurrent requests in
several server processes agree on the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

_UPSERT = """
INSERT INTO escape.registry_records AS r (identifier, created, datestamp, deleted, fingerprint)
VALUES (%s, date_trunc('second', now()), date_trunc('second', now()), false, %s)
ON CONFLICT (identifier) DO UPDATE
   SET datestamp = excluded.datestamp, deleted = false, fingerprint = excluded.fingerprint
 WHERE r.fingerprint <> excluded.fingerprint OR r.deleted
"""
_WITHDRAW = """
UPDATE escape.registry_records SET deleted = true, datestamp = date_trunc('second', now())
 WHERE NOT deleted AND identifier <> ALL(%s)
"""
_ALL = "SELECT identifier, created, datestamp, deleted FROM escape.registry_records"


@dataclass(frozen=True)
class StoredRecord:
    identifier: str
    created: datetime
    datestamp: datetime
    deleted: bool


async def publish(
    conn: AsyncConnection, fingerprints: Sequence[tuple[str, str]]
) -> dict[str, StoredRecord]:
    """Record the current (identifier, fingerprint) pairs; return every record ever published."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(_UPSERT, sorted(fingerprints))
        await cur.execute(_WITHDRAW, ([i for i, _ in fingerprints],))
        await cur.execute(_ALL)
        rows = await cur.fetchall()
    return {r[0]: StoredRecord(*r) for r in rows}
