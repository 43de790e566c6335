"""Ingest rate (spectra/s) of typical 20,000-pixel files on this machine, against its floors.

Floors measured in the same run on the same files: (1) reading and hashing every file, (2) reading
and copying every file into a fresh directory on the same disk followed by one sync (the I/O a
store of originals cannot avoid), (3) the same files parsed by the readers in the same number of
processes without any database or store work, (4) COPY of the same metadata rows into an
unindexed table. The ingest itself runs into an empty, migrated database with all indexes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg

from bench.common import CACHE, scratch_database
from escape_vo.ingest.pipeline import discover, ingest
from escape_vo.ingest.readers import read_spectra

N_FILES = int(os.environ.get("BENCH_INGEST_FILES", "2000"))
N_PIX = 20_000


def _files() -> list[str]:
    from escape_vo.demo.generate import generate_demo

    dest = CACHE / f"ingest-{N_FILES}-{N_PIX}"
    if not (dest / "truth.json").exists():
        shutil.rmtree(dest, ignore_errors=True)
        generate_demo(dest, n_spectra=N_FILES, seed=1, n_pix=N_PIX)
    files, _ = discover([dest])
    return files


def _hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _copy(args: tuple[str, str]) -> None:
    src, dst = args
    Path(dst).write_bytes(Path(src).read_bytes())


def _parse(path: str) -> int:
    return len(read_spectra(Path(path).read_bytes(), Path(path).name))


def run() -> dict:
    files = _files()
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:  # warm the page cache and the pool once
        list(pool.map(_hash, files, chunksize=16))
        t = time.perf_counter()
        list(pool.map(_hash, files, chunksize=16))
        t_hash = time.perf_counter() - t
        t = time.perf_counter()
        n_spectra = sum(pool.map(_parse, files, chunksize=16))
        t_parse = time.perf_counter() - t
        copy_dir = Path(tempfile.mkdtemp(prefix="escape-vo-bench-copy-"))
        try:
            t = time.perf_counter()
            jobs = [(f, str(copy_dir / f"{i}.fits")) for i, f in enumerate(files)]
            list(pool.map(_copy, jobs, chunksize=16))
            os.sync()
            t_copy_files = time.perf_counter() - t
        finally:
            shutil.rmtree(copy_dir, ignore_errors=True)

    with scratch_database() as (url, work):
        t = time.perf_counter()
        report = ingest(
            files,
            db_url=url,
            store_url=str(work / "files"),
            authority="bench.example",
            workers=workers,
        )
        t_ingest = time.perf_counter() - t
        assert report.ok and report.spectra_ingested == n_spectra, report.summary()
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT * FROM archive.spectra").fetchall()
            conn.execute("CREATE TABLE copy_floor (LIKE archive.spectra)")
            t = time.perf_counter()
            with conn.cursor().copy("COPY copy_floor FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            t_copy = time.perf_counter() - t
        t = time.perf_counter()
        again = ingest(files, db_url=url, store_url=str(work / "files"), authority="bench.example")
        t_again = time.perf_counter() - t
        assert again.spectra_ingested == 0

    rate = n_spectra / t_ingest
    return {
        "files": len(files),
        "spectra": n_spectra,
        "pixels_per_spectrum": N_PIX,
        "workers": workers,
        "seconds": {
            "ingest": t_ingest,
            "reingest_noop": t_again,
            "floor_read_hash": t_hash,
            "floor_copy_files": t_copy_files,
            "floor_parse": t_parse,
            "floor_copy_rows": t_copy,
        },
        "spectra_per_second": rate,
        "report": [
            f"{n_spectra} spectra of {N_PIX} pixels in {len(files)} files, {workers} workers",
            f"ingest: {t_ingest:.2f} s = {rate:.0f} spectra/s (target >= 500)",
            f"floor read+sha256: {t_hash:.2f} s; ingest/floor = {t_ingest / t_hash:.1f}x",
            f"floor copy files+sync: {t_copy_files:.2f} s; "
            f"ingest/(copy+parse) = {t_ingest / (t_copy_files + t_parse):.2f}x",
            f"floor parse only:  {t_parse:.2f} s; ingest/parse = {t_ingest / t_parse:.2f}x",
            f"floor COPY of the rows: {t_copy:.3f} s",
            f"second ingest (all known, no-op): {t_again:.2f} s",
        ],
    }
