"""SSA cone query latency (p50, p95) over HTTP on a large synthetic table of spectra.

`/ssa?REQUEST=queryData&POS=ra,dec&SIZE=0.2&BAND=...` at random centres against a real
`escape-vo serve` on BENCH_SSA_ROWS rows (default 1,000,000, uniform over the sky, made inside
PostgreSQL by bench.tapserver). The floor printed next to it is the translated SQL of the same
request run directly in PostgreSQL on one reused connection.
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
import numpy as np
import psycopg

from bench.tapserver import served_archive
from escape_vo.adql import Catalog, translate
from escape_vo.schema.model import published_tables
from escape_vo.ssa.query import build_query
from escape_vo.ssa.response import view_columns

N = int(os.environ.get("BENCH_SSA_ROWS", "1000000"))
N_QUERIES = 200


def _params(ra: float, dec: float) -> dict[str, str]:
    return {"REQUEST": "queryData", "POS": f"{ra:.5f},{dec:.5f}", "SIZE": "0.2",
            "BAND": "4e-7/7e-7"}  # fmt: skip


def _spread(url: str) -> None:
    """One random position per row (the fill's LATERAL random() is evaluated once per chunk)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE archive.spectra SET ra = degrees(2 * pi() * random()), "
            "dec = degrees(asin(2 * random() - 1))"
        )
        conn.execute("UPDATE archive.spectra SET healpix = escape.healpix_nest(29, ra, dec)")
        conn.execute("VACUUM ANALYZE archive.spectra")


def run() -> dict:
    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, N_QUERIES)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, N_QUERIES)))
    catalog = Catalog.from_tables(published_tables())
    columns = [c.adql_name for c in view_columns()]
    with served_archive(N, workers=2) as (base, url, _):
        _spread(url)
        with httpx.Client(timeout=60) as http:
            for i in range(20):  # warm-up
                http.get(f"{base}/ssa", params=_params(ra[i], dec[i]))
            latencies, rows = [], 0
            for r, d in zip(ra, dec, strict=True):
                t = time.perf_counter()
                resp = http.get(f"{base}/ssa", params=_params(r, d))
                latencies.append(time.perf_counter() - t)
                assert b'value="ERROR"' not in resp.content, resp.text[:500]
                rows += resp.content.count(b"<TR>")
        floor = []
        with psycopg.connect(url) as conn:
            for r, d in zip(ra, dec, strict=True):
                query = build_query({k.lower(): [v] for k, v in _params(r, d).items()}, columns)
                sql = translate(query.adql, catalog).sql
                t = time.perf_counter()
                conn.execute(sql).fetchall()
                floor.append(time.perf_counter() - t)
    p50 = statistics.median(latencies) * 1000
    p95 = float(np.percentile(latencies, 95)) * 1000
    f50 = statistics.median(floor) * 1000
    return {
        "rows": N,
        "queries": N_QUERIES,
        "mean_rows_returned": rows / N_QUERIES,
        "p50_ms": p50,
        "p95_ms": p95,
        "floor_sql_p50_ms": f50,
        "report": [
            f"table of {N:,} spectra; {N_QUERIES} cones of 0.2 deg diameter with a BAND, "
            f"{rows / N_QUERIES:.1f} rows each on average",
            f"SSA over HTTP: p50 {p50:.1f} ms, p95 {p95:.1f} ms",
            f"floor (the same SQL in PostgreSQL): p50 {f50:.2f} ms",
        ],
    }
