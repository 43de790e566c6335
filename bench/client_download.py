"""Bulk download of 2,000 spectra with the client (parallel) vs a sequential pyvo loop.

A real `escape-vo serve` process (2 uvicorn workers) serves an archive of 2,000 demo spectra
ingested into a scratch database. In the same run, on the same files:
(1) `Archive.download(table, dest, parallel=8)`: DataLink resolved in batches, files fetched in
parallel, each verified (size, Digest/ETag checksum, FITS headers);
(2) the loop a pyvo user writes: for each ObsCore row, DataLink document -> #this -> GET -> file;
(3) the floor: the same files copied from the file store to a fresh directory on this disk.
Target: (1) at least 5x faster than (2). (1) and (2) run three times each, alternating; the
medians are compared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
import pyvo
import requests

from bench.common import CACHE, scratch_database
from bench.tapserver import _free_port, _wait
from escape_vo.ingest.pipeline import ingest

N_SPECTRA = int(os.environ.get("BENCH_DOWNLOAD_SPECTRA", "2000"))
PARALLEL = 8
ROUNDS = 3


def _runs(seconds: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in seconds) + " s"


def _files() -> Path:
    from escape_vo.demo.generate import generate_demo

    dest = CACHE / f"download-{N_SPECTRA}"
    if not (dest / "truth.json").exists():
        shutil.rmtree(dest, ignore_errors=True)
        generate_demo(dest, n_spectra=N_SPECTRA, seed=3)
    return dest


def _pyvo_loop(rows, dest: Path) -> int:
    """What a pyvo user writes: one DataLink request and one file request per spectrum."""
    session = requests.Session()
    total = 0
    for row in rows:
        links = pyvo.dal.adhoc.DatalinkResults.from_result_url(
            str(row["access_url"]), session=session
        )
        this = next(r for r in links if r.semantics == "#this")
        response = session.get(this.access_url, timeout=60)
        response.raise_for_status()
        name = str(row["obs_publisher_did"]).rsplit("?", 1)[-1] + ".fits"
        (dest / name).write_bytes(response.content)
        total += len(response.content)
    return total


def run() -> dict:
    from escape_vo_client import Archive

    warnings.simplefilter("ignore")
    src = _files()
    with scratch_database() as (url, work):
        store = work / "files"
        report = ingest([src], db_url=url, store_url=str(store), authority="bench.example")
        assert report.ok, report.summary()
        port = _free_port()
        env = dict(
            os.environ,
            DATABASE_URL=url,
            PORT=str(port),
            DATA_DIR=str(work / "data"),
            FILE_STORE_URL=str(store),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "escape_vo.cli", "serve", "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        scratch = Path(tempfile.mkdtemp(prefix="escape-vo-bench-dl-"))
        try:
            _wait(base, proc)
            archive = Archive(base)
            table = archive.query(
                "SELECT obs_publisher_did, access_url, access_format, access_estsize "
                "FROM ivoa.obscore",
                maxrec=N_SPECTRA + 10,
            )
            assert len(table) == N_SPECTRA, len(table)
            with psycopg.connect(url) as conn:
                stored = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT file_path FROM archive.spectra"
                    ).fetchall()
                ]
                n_bytes = int(
                    conn.execute("SELECT sum(file_size) FROM archive.spectra").fetchone()[0]
                )

            # Each side ROUNDS times, alternating, the median kept: on this VM one run of
            # either varies by +-30 % with the file system's state (creating files costs
            # 0.1-1 ms each, depending on how many were deleted just before).
            client_times, pyvo_times = [], []
            for k in range(ROUNDS):
                t = time.perf_counter()
                got = archive.download(
                    table, scratch / f"client{k}", parallel=PARALLEL, progress=False
                )
                client_times.append(time.perf_counter() - t)
                assert got.ok and len(got.succeeded) == N_SPECTRA, got.summary()

                (scratch / f"pyvo{k}").mkdir()
                t = time.perf_counter()
                pyvo_bytes = _pyvo_loop(table, scratch / f"pyvo{k}")
                pyvo_times.append(time.perf_counter() - t)
                assert pyvo_bytes == n_bytes

            t = time.perf_counter()
            again = archive.download(table, scratch / "client0", parallel=PARALLEL, progress=False)
            t_skip = time.perf_counter() - t
            assert len(again.skipped) == N_SPECTRA

            (scratch / "copy").mkdir()
            t = time.perf_counter()
            for i, key in enumerate(stored):
                shutil.copyfile(store / key, scratch / "copy" / f"{i}.fits")
            t_copy = time.perf_counter() - t
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            shutil.rmtree(scratch, ignore_errors=True)

    mb = n_bytes / 1e6
    t_client, t_pyvo = statistics.median(client_times), statistics.median(pyvo_times)
    speedup = t_pyvo / t_client
    return {
        "spectra": N_SPECTRA,
        "distinct_files": len(stored),
        "megabytes": mb,
        "parallel": PARALLEL,
        "seconds": {
            "client": t_client,
            "client_runs": client_times,
            "client_skip_all": t_skip,
            "pyvo_sequential": t_pyvo,
            "pyvo_sequential_runs": pyvo_times,
            "floor_copy_distinct_files": t_copy,
        },
        "speedup_vs_pyvo": speedup,
        "report": [
            f"{N_SPECTRA} spectra, {mb:.0f} MB ({len(stored)} distinct files), server with 2 "
            "uvicorn workers, client parallel=8",
            f"client download: {t_client:.2f} s = {N_SPECTRA / t_client:.0f} spectra/s, "
            f"{mb / t_client:.0f} MB/s (median of {_runs(client_times)})",
            f"sequential pyvo loop: {t_pyvo:.2f} s = {N_SPECTRA / t_pyvo:.0f} spectra/s "
            f"(median of {_runs(pyvo_times)}); "
            f"client is {speedup:.1f}x faster (target >= 5x)",
            f"floor, copy of the distinct files on this disk: {t_copy:.2f} s "
            f"({len(stored) / t_copy:.0f} files/s); client/floor = {t_client / t_copy:.1f}x",
            f"second download, all complete (skipped without requests): {t_skip:.2f} s",
        ],
    }
