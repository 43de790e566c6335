"""A synthetic archive of N spectra rows and a real `escape-vo serve` process on it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg

from bench.common import scratch_database

# Rows spread uniformly over the sky; the other columns plausible, all in SQL so that 10 million
# rows are made inside PostgreSQL in seconds rather than shipped from Python. (The `0 * g` makes
# the LATERAL subquery correlated, so random() runs per row, not once per statement.)
FILL_SQL = """
INSERT INTO archive.spectra (
  publisher_did, obs_id, target_name, ra, dec, healpix, aperture, wave_min, wave_max,
  resolving_power, snr, exptime, t_min, t_max, instrument, facility, collection, calib_level,
  flux_unit, n_pix, file_format, file_index, file_sha256, file_size, file_path, ingest_time)
SELECT 'ivo://bench.example/spectra?' || g, 'OBS-' || g, 'TARGET ' || (g %% 100000),
  p.ra, p.dec, escape.healpix_nest(29, p.ra, p.dec), 0.0003,
  3.5e-7 + (g %% 100) * 1e-9, 7.5e-7 + (g %% 77) * 1e-9, 2000 + (g %% 50) * 1000,
  5 + (g %% 200), 600, 55000 + (g %% 5000), 55000.01 + (g %% 5000), 'INST' || (g %% 12),
  'TEL' || (g %% 5), 'bench', 2, 'erg / (Angstrom s cm2)', 4000 + g %% 20000, 'bintable', 0,
  md5(g::text) || md5((g + 1)::text), 100000, 'x', now()
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
LATERAL (SELECT degrees(2 * pi() * random()) + 0 * g AS ra,
                degrees(asin(2 * random() - 1)) + 0 * g AS dec) AS p
"""


def fill(url: str, n: int, chunk: int = 1_000_000) -> float:
    """Insert n synthetic rows (indexes dropped during the load, rebuilt after); seconds."""
    t = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'archive' "
            "AND tablename = 'spectra' AND indexname NOT LIKE '%%pkey' "
            "AND indexname NOT LIKE '%%_key'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX archive."{name}"')
        for lo in range(1, n + 1, chunk):
            conn.execute(FILL_SQL, {"lo": lo, "hi": min(lo + chunk - 1, n)})
        for _, ddl in indexes:
            conn.execute(ddl)
        conn.execute("VACUUM ANALYZE archive.spectra")
        conn.execute(
            "UPDATE tap_schema.tables SET nrows = %s WHERE table_name = 'archive.spectra'", (n,)
        )
    return time.perf_counter() - t


@contextlib.contextmanager
def served_archive(n_rows: int, workers: int = 1) -> Iterator[tuple[str, str, psutil.Process]]:
    """(base URL, database URL, server process) for an archive of n_rows synthetic spectra."""
    with scratch_database() as (url, work):
        fill(url, n_rows)
        port = _free_port()
        env = dict(os.environ, DATABASE_URL=url, PORT=str(port), DATA_DIR=str(work / "data"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "escape_vo.cli", "serve", "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base, proc)
            yield base, url, psutil.Process(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of the server and its worker processes, bytes."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/tap/availability", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("server did not start")


__all__ = ["Path", "fill", "served_archive", "tree_rss"]
