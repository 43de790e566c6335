"""Cone search latency on a 10,000,000-row table, and throughput of 16 concurrent clients.

Each query is `CONTAINS(POINT(s_ra, s_dec), CIRCLE(ra, dec, 0.1)) = 1` on ivoa.obscore at a
random centre, end to end over HTTP (VOTable BINARY2). Targets: p50 < 10 ms; 16 clients for
30 s >= 150 queries/s with zero errors. The floor printed next to it is the same SQL run
directly in PostgreSQL (psycopg, same connection reused).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import httpx
import numpy as np
import psycopg

from bench.tapserver import served_archive
from escape_vo.adql import Catalog, translate
from escape_vo.schema.model import published_tables

N = int(os.environ.get("BENCH_CONE_ROWS", "10000000"))
N_QUERIES = 300
CLIENTS = 16
SECONDS = 30
QUERY = (
    "SELECT obs_publisher_did, s_ra, s_dec, em_min, em_max, instrument_name FROM ivoa.obscore "
    "WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra:.5f}, {dec:.5f}, 0.1))"
)


def _centres(n: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return list(zip(ra.tolist(), dec.tolist(), strict=True))


def _params(ra: float, dec: float) -> dict[str, str]:
    return {"LANG": "ADQL", "QUERY": QUERY.format(ra=ra, dec=dec)}


async def _load(base: str, clients: int, seconds: float) -> tuple[int, int, list[float]]:
    done = errors = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    centres = _centres(100_000, 7)

    async def client(i: int) -> None:
        nonlocal done, errors
        async with httpx.AsyncClient(timeout=30) as http:
            k = i
            while time.monotonic() < deadline:
                ra, dec = centres[k % len(centres)]
                k += clients
                t = time.perf_counter()
                try:
                    r = await http.get(f"{base}/tap/sync", params=_params(ra, dec))
                    if r.status_code == 200 and b'value="ERROR"' not in r.content:
                        done += 1
                        latencies.append(time.perf_counter() - t)
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    return done, errors, latencies


def run() -> dict:
    catalog = Catalog.from_tables(published_tables())
    with served_archive(N, workers=2) as (base, url, _):
        centres = _centres(N_QUERIES, 1)
        with httpx.Client(timeout=30) as http:
            for ra, dec in centres[:20]:  # warm-up
                http.get(f"{base}/tap/sync", params=_params(ra, dec))
            latencies = []
            for ra, dec in centres:
                t = time.perf_counter()
                r = http.get(f"{base}/tap/sync", params=_params(ra, dec))
                latencies.append(time.perf_counter() - t)
                r.raise_for_status()
        sql_lat = []
        with psycopg.connect(url) as conn:
            for ra, dec in centres:
                sql = translate(QUERY.format(ra=ra, dec=dec), catalog).sql
                t = time.perf_counter()
                conn.execute(sql).fetchall()
                sql_lat.append(time.perf_counter() - t)
            n_hits = [
                len(conn.execute(translate(QUERY.format(ra=ra, dec=dec), catalog).sql).fetchall())
                for ra, dec in centres[:50]
            ]
        done, errors, load_lat = asyncio.run(_load(base, CLIENTS, SECONDS))
    p50, p95 = np.percentile(np.array(latencies) * 1000, [50, 95])
    s50 = statistics.median(sql_lat) * 1000
    qps = done / SECONDS
    report = [
        f"{N} rows; cone r=0.1 deg, mean {statistics.mean(n_hits):.1f} rows per cone",
        f"HTTP p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p50 < 10 ms); "
        f"same SQL in PostgreSQL p50 {s50:.2f} ms",
        f"{CLIENTS} clients x {SECONDS} s: {qps:.0f} queries/s, {errors} errors "
        f"(target >= 150 q/s, 0 errors); p50 under load "
        f"{statistics.median(load_lat) * 1000 if load_lat else float('nan'):.1f} ms",
    ]
    return {
        "rows": N,
        "p50_ms": p50,
        "p95_ms": p95,
        "sql_p50_ms": s50,
        "concurrency": {"clients": CLIENTS, "seconds": SECONDS, "qps": qps, "errors": errors},
        "report": report,
    }
