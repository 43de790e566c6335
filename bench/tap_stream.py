"""Streaming 1,000,000 rows x 12 columns through /tap/sync against the COPY floor.

The floor is `COPY (same query) TO STDOUT` through psycopg into /dev/null, measured in the same
run on the same database; the service must stream BINARY2 and CSV within 1.5x of it with flat
server memory (peak RSS growth of the server process tree sampled every 50 ms).
"""

from __future__ import annotations

import statistics
import threading
import time

import httpx
import psycopg

from bench.tapserver import served_archive, tree_rss

N = 1_000_000
COLUMNS = (
    "spectrum_id, publisher_did, ra, dec, wave_min, wave_max, snr, resolving_power, t_min, "
    "instrument, n_pix, healpix"
)
ADQL = f"SELECT TOP {N} {COLUMNS} FROM archive.spectra"
SQL = f"SELECT {COLUMNS} FROM archive.spectra LIMIT {N}"
FORMATS = ("votable", "csv", "votable/td")
REPEAT = 3


def _copy_floor(url: str, binary: bool) -> float:
    with psycopg.connect(url) as conn:
        t = time.perf_counter()
        fmt = " (FORMAT binary)" if binary else ""
        with conn.cursor().copy(f"COPY ({SQL}) TO STDOUT{fmt}") as copy:
            for _ in copy:
                pass
        return time.perf_counter() - t


def _fetch(base: str, fmt: str) -> tuple[float, int]:
    params = {"LANG": "ADQL", "QUERY": ADQL, "MAXREC": str(N), "RESPONSEFORMAT": fmt}
    t = time.perf_counter()
    size = 0
    with httpx.stream("GET", f"{base}/tap/sync", params=params, timeout=600) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_raw(1 << 20):
            size += len(chunk)
    return time.perf_counter() - t, size


def run() -> dict:
    with served_archive(N) as (base, url, proc):
        _fetch(base, "votable")  # warm caches, pool and code paths
        floor_bin = statistics.median(_copy_floor(url, True) for _ in range(REPEAT))
        floor_txt = statistics.median(_copy_floor(url, False) for _ in range(REPEAT))
        results = {}
        for fmt in FORMATS:
            baseline = tree_rss(proc)
            peak = [baseline]
            stop = threading.Event()

            def sample(peak: list[int] = peak, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], tree_rss(proc))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            times, size = [], 0
            for _ in range(REPEAT):
                seconds, size = _fetch(base, fmt)
                times.append(seconds)
            stop.set()
            sampler.join()
            results[fmt] = {
                "seconds": statistics.median(times),
                "bytes": size,
                "rss_growth_mb": (peak[0] - baseline) / 2**20,
            }
    report = [
        f"{N} rows x 12 columns; COPY floor binary {floor_bin:.2f} s, text {floor_txt:.2f} s",
    ]
    for fmt, r in results.items():
        report.append(
            f"{fmt:11s} {r['seconds']:.2f} s = {N / r['seconds'] / 1e6:.2f} M rows/s, "
            f"{r['seconds'] / floor_bin:.2f}x binary floor ({r['seconds'] / floor_txt:.2f}x "
            f"text), {r['bytes'] / 2**20:.0f} MB, server RSS growth {r['rss_growth_mb']:.0f} MB"
        )
    report.append("targets: BINARY2 and CSV <= 1.5x floor, RSS growth < 200 MB")
    return {"rows": N, "floor_binary_s": floor_bin, "floor_text_s": floor_txt,
            "formats": results, "report": report}  # fmt: skip
