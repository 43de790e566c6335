"""Remote DIDs of the spectra in multi-spectrum files.

Files are the unit of transfer and ingest, but a remote publisher DID names one spectrum. When a
harvested file holds several spectra (a multi-fibre exposure), the ingest stamps all of them with
the DID of the item that brought the file; here each spectrum gets the DID of the remote item
at its position instead (nearest first), and spectra no remote item named lose the borrowed DID.
Only rows this service contributed (origin_archive = its URL) are touched.
"""

from __future__ import annotations

import math
from collections import defaultdict

import psycopg

Position = tuple[float | None, float | None]


def _separation(a: Position, b: Position) -> float:
    if None in a or None in b:
        return math.inf
    ra1, dec1, ra2, dec2 = map(math.radians, (*a, *b))  # type: ignore[arg-type]
    s = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return 2 * math.asin(min(1.0, math.sqrt(s)))


async def assign_multi_spectrum_origins(
    conn: psycopg.AsyncConnection, harvest_id: int, service_url: str, shas: set[str]
) -> int:
    """Re-stamp origin_id of the spectra of multi-spectrum files among `shas`; rows updated."""
    if not shas:
        return 0
    cur = await conn.execute(
        "SELECT file_sha256, spectrum_id, file_index, ra, dec FROM archive.spectra "
        "WHERE file_sha256 = ANY(%s) AND origin_archive = %s ORDER BY file_sha256, file_index",
        (list(shas), service_url),
    )
    rows: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
    for sha, sid, _, ra, dec in await cur.fetchall():
        rows[sha].append((sid, (ra, dec)))
    multi = [sha for sha, r in rows.items() if len(r) > 1]
    if not multi:
        return 0
    cur = await conn.execute(
        "SELECT file_sha256, remote_id, ra, dec FROM escape.harvest_items WHERE harvest_id = %s "
        "AND file_sha256 = ANY(%s) AND state IN ('downloaded', 'ingested') ORDER BY item_id",
        (harvest_id, multi),
    )
    items: dict[str, list[tuple[str, tuple]]] = defaultdict(list)
    for sha, rid, ra, dec in await cur.fetchall():
        items[sha].append((rid, (ra, dec)))
    updates: list[tuple[str | None, int]] = []
    for sha in multi:
        free = dict(rows[sha])
        pairs = sorted(
            (
                (_separation(pos, rpos), n, rid, sid)
                for n, (rid, pos) in enumerate(items[sha])
                for sid, rpos in free.items()
            ),
            key=lambda p: (p[0], p[1], p[3]),
        )
        taken_items: set[str] = set()
        for _, _, rid, sid in pairs:
            if rid in taken_items or sid not in free:
                continue
            updates.append((rid, sid))
            taken_items.add(rid)
            del free[sid]
        updates.extend((None, sid) for sid in free)
    async with conn.cursor() as c:
        await c.executemany(
            "UPDATE archive.spectra SET origin_id = %s WHERE spectrum_id = %s", updates
        )
    return len(updates)
