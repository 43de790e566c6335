"""Result writers: rows/s of every output format for 1,000,000 rows x 12 columns.

The rows are built in memory as Arrow batches of 65,536 rows (what adbc-driver-postgresql hands
over): 2 int64, 1 int32, 5 float64 (one with 1% NULLs), 1 float32, 2 strings of 10-20
characters (one with 1% NULLs) and 1 timestamp. Each format is written to /dev/null through
escape_vo.votable.write_result; the figure to compare with is the DESIGN floor, a binary COPY of
the same shape out of PostgreSQL in 0.4-0.6 s (target: the whole TAP answer <= 1.5x that).
Peak RSS growth while writing shows whether memory stays flat.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import psutil
import pyarrow as pa

from escape_vo.schema.model import Column
from escape_vo.votable import resolve_format, write_result

N_ROWS = int(os.environ.get("BENCH_WRITERS_ROWS", "1000000"))
BATCH = 65_536
FORMATS = ["votable", "votable/b", "votable/td", "csv", "tsv", "json", "parquet", "fits"]
COPY_FLOOR_S = (0.4, 0.6)

COLUMNS = [
    Column("obs_id", "long", ucd="meta.id"),
    Column("healpix", "long", ucd="pos.healpix"),
    Column("n_pix", "int", ucd="meta.number"),
    Column("ra", "double", unit="deg", ucd="pos.eq.ra"),
    Column("dec", "double", unit="deg", ucd="pos.eq.dec"),
    Column("em_min", "double", unit="m", ucd="em.wl;stat.min"),
    Column("em_max", "double", unit="m", ucd="em.wl;stat.max"),
    Column("snr", "double", ucd="stat.snr"),
    Column("redshift", "float", ucd="src.redshift"),
    Column("target", "char", arraysize="*", ucd="meta.id;src"),
    Column("instrument", "char", arraysize="*", ucd="meta.id;instr"),
    Column("obs_date", "char", arraysize="*", xtype="timestamp", ucd="time.start"),
]


def make_batches(n_rows: int = N_ROWS, seed: int = 1) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    names = [c.name for c in COLUMNS]
    batches = []
    for start in range(0, n_rows, BATCH):
        n = min(BATCH, n_rows - start)
        null = rng.random(n) < 0.01
        targets = np.char.add("NGC_", rng.integers(0, 10**12, n).astype(str))
        instruments = rng.choice(
            np.array(["UVES", "XSHOOTER", "FORS2", "SDSS-BOSS", "HARPS", "ESPRESSO-4UT"]), n
        )
        arrays = [
            pa.array(np.arange(start, start + n, dtype=np.int64)),
            pa.array(rng.integers(0, 12 * 4**29, n, dtype=np.int64)),
            pa.array(rng.integers(1000, 40000, n, dtype=np.int32)),
            pa.array(rng.uniform(0, 360, n)),
            pa.array(rng.uniform(-90, 90, n)),
            pa.array(rng.uniform(3e-7, 5e-7, n)),
            pa.array(rng.uniform(7e-7, 2.5e-6, n)),
            pa.array(rng.gamma(2.0, 10.0, n), mask=null),
            pa.array(rng.uniform(0, 3, n).astype(np.float32)),
            pa.array(targets.tolist(), pa.string(), mask=null),
            pa.array(instruments.tolist(), pa.string()),
            pa.array(
                rng.integers(946_684_800_000_000, 1_767_225_600_000_000, n), pa.timestamp("us")
            ),
        ]
        batches.append(pa.record_batch(arrays, names=names))
    return batches


def _write(fmt_name: str, batches: list[pa.RecordBatch]) -> tuple[float, int, int]:
    """Seconds, bytes written and peak RSS growth for one run."""
    process = psutil.Process()
    base = peak = process.memory_info().rss
    size = 0
    fmt = resolve_format(fmt_name)
    t = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        for chunk in write_result(fmt, COLUMNS, iter(batches), max_rows=None):
            sink.write(chunk)
            size += len(chunk)
            peak = max(peak, process.memory_info().rss)
    return time.perf_counter() - t, size, peak - base


def run() -> dict:
    batches = make_batches()
    n_rows = sum(b.num_rows for b in batches)
    results: dict[str, dict] = {}
    report = [
        f"{n_rows:,} rows x {len(COLUMNS)} columns in batches of {BATCH:,}; output to /dev/null",
        f"floor (DESIGN.md): binary COPY of 1M x 12 in {COPY_FLOOR_S[0]}-{COPY_FLOOR_S[1]} s",
    ]
    for name in FORMATS:
        _write(name, batches[:2])  # warm up imports and caches
        runs = [_write(name, batches) for _ in range(3)]
        seconds = statistics.median(r[0] for r in runs)
        size = runs[0][1]
        peak = max(r[2] for r in runs)
        rate = n_rows / seconds
        results[name] = {
            "seconds": seconds,
            "runs": [r[0] for r in runs],
            "rows_per_second": rate,
            "bytes": size,
            "peak_rss_growth_bytes": peak,
        }
        report.append(
            f"{name:<11} {seconds:6.2f} s  {rate / 1e6:5.2f} M rows/s  {size / 1e6:7.1f} MB"
            f"  {seconds / COPY_FLOOR_S[1]:4.1f}-{seconds / COPY_FLOOR_S[0]:4.1f}x floor"
            f"  peak RSS +{peak / 1e6:.0f} MB"
        )
    return {"rows": n_rows, "columns": len(COLUMNS), "formats": results, "report": report}


if __name__ == "__main__":
    for line in run()["report"]:
        print(line)
