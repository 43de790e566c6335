"""Async TAP (UWS) overheads: submit-to-result latency, 200 concurrent jobs, a 100,000-job list.

(b) A trivial query submitted with PHASE=RUN, followed with WAIT, its result fetched: the time
from the POST to the last byte of the result (target < 100 ms), next to the same query on
/tap/sync (the floor). The server runs its default in-process worker.
(c) 200 jobs submitted at once to a server without worker and two `escape-vo worker` processes
(one job at a time each): every job must complete with its own correct answer, none lost.
(d) The job list with 100,000 jobs in the table: LAST, PHASE and AFTER filters and the full list.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psycopg
from astropy.io import votable

from bench.common import scratch_database

N_LATENCY = 50
N_JOBS = int(os.environ.get("BENCH_ASYNC_JOBS", "200"))
N_LISTED = 100_000
TRIVIAL = "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables"
COUNTED = "SELECT COUNT(*) + {k} AS n FROM TAP_SCHEMA.columns"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _processes(url: str, data_dir: str, job_workers: int, workers: int) -> Iterator[str]:
    """`escape-vo serve` (JOB_WORKERS=job_workers) plus `workers` worker processes."""
    port = _port()
    env = dict(
        os.environ, DATABASE_URL=url, PORT=str(port), DATA_DIR=data_dir,
        JOB_WORKERS=str(job_workers),
    )  # fmt: skip
    cli = [sys.executable, "-m", "escape_vo.cli"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([*cli, "serve"], env=env, **quiet)]
    for _ in range(workers):
        procs.append(subprocess.Popen([*cli, "worker", "--concurrency", "1"], env=env, **quiet))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/tap/availability", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        time.sleep(3 if workers else 1)  # let the workers connect and warm up
        yield base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def _submit_and_fetch(http: httpx.Client, base: str) -> float:
    t = time.perf_counter()
    resp = http.post(f"{base}/tap/async", data={"LANG": "ADQL", "QUERY": TRIVIAL, "PHASE": "RUN"})
    job = resp.headers["location"]
    while True:
        doc = http.get(job, params={"WAIT": 30}).text
        if "<uws:phase>COMPLETED</uws:phase>" in doc:
            break
        if "<uws:phase>ERROR</uws:phase>" in doc:
            raise RuntimeError(doc)
    http.get(f"{job}/results/result").raise_for_status()
    elapsed = time.perf_counter() - t
    http.delete(job)
    return elapsed


def latency(base: str) -> dict:
    with httpx.Client(timeout=60) as http:
        for _ in range(5):  # warm up connections, caches and the worker
            _submit_and_fetch(http, base)
        runs = sorted(_submit_and_fetch(http, base) for _ in range(N_LATENCY))
        sync = []
        for _ in range(N_LATENCY):
            t = time.perf_counter()
            http.get(f"{base}/tap/sync", params={"LANG": "ADQL", "QUERY": TRIVIAL})
            sync.append(time.perf_counter() - t)
    return {
        "async_median_ms": statistics.median(runs) * 1000,
        "async_p95_ms": runs[int(0.95 * len(runs)) - 1] * 1000,
        "sync_median_ms": statistics.median(sync) * 1000,
    }


async def _many(base: str, n: int) -> dict:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=50)) as http:
        base_count = int(
            votable.parse_single_table(
                io.BytesIO(
                    (
                        await http.get(
                            f"{base}/tap/sync",
                            params={"LANG": "ADQL", "QUERY": COUNTED.format(k=0)},
                        )
                    ).content
                )
            ).to_table()["n"][0]
        )
        t0 = time.perf_counter()

        async def submit(k: int) -> str:
            resp = await http.post(
                f"{base}/tap/async",
                data={"LANG": "ADQL", "QUERY": COUNTED.format(k=k), "PHASE": "RUN"},
            )
            return resp.headers["location"]

        jobs = await asyncio.gather(*(submit(k) for k in range(n)))
        t_submitted = time.perf_counter() - t0

        async def follow(k: int, job: str) -> tuple[str, bool]:
            while True:
                doc = (await http.get(job, params={"WAIT": 60})).text
                for phase in ("COMPLETED", "ERROR", "ABORTED"):
                    if f"<uws:phase>{phase}</uws:phase>" in doc:
                        if phase != "COMPLETED":
                            return phase, False
                        body = (await http.get(f"{job}/results/result")).content
                        n_value = votable.parse_single_table(io.BytesIO(body)).to_table()["n"][0]
                        return phase, int(n_value) == base_count + k

        outcomes = await asyncio.gather(*(follow(k, job) for k, job in enumerate(jobs)))
        t_all = time.perf_counter() - t0
    completed = sum(phase == "COMPLETED" for phase, _ in outcomes)
    correct = sum(ok for _, ok in outcomes)
    return {
        "jobs": n,
        "completed": completed,
        "correct": correct,
        "lost": n - len(outcomes) + sum(p not in ("COMPLETED", "ERROR") for p, _ in outcomes),
        "submit_seconds": t_submitted,
        "total_seconds": t_all,
        "jobs_per_second": n / t_all,
    }


def job_list(url: str, base: str) -> dict:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO escape.uws_jobs (job_id, kind, phase, creation_time, queued_at, "
            "execution_duration, destruction, attempts) "
            "SELECT md5(g::text), 'tap', (ARRAY['COMPLETED','COMPLETED','ERROR','ABORTED',"
            "'PENDING'])[1 + g %% 5], now() - make_interval(secs => g), NULL, 3600, "
            "now() + interval '7 days', 1 FROM generate_series(1, %s) AS g",
            (N_LISTED,),
        )
        conn.execute("ANALYZE escape.uws_jobs")
    after_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    cases = {
        "LAST=10": {"LAST": 10},
        "PHASE=EXECUTING": {"PHASE": "EXECUTING"},
        "AFTER=10 min ago": {"AFTER": after_text},
        "PHASE=PENDING&LAST=20": {"PHASE": "PENDING", "LAST": 20},
        "all 100,000": {},
    }
    out = {}
    with httpx.Client(timeout=120) as http:
        for name, params in cases.items():
            http.get(f"{base}/tap/async", params=params)  # warm
            t = time.perf_counter()
            resp = http.get(f"{base}/tap/async", params=params)
            out[name] = {
                "ms": (time.perf_counter() - t) * 1000,
                "jobs": resp.text.count("<uws:jobref"),
                "bytes": len(resp.content),
            }
    return out


def run() -> dict:
    with scratch_database() as (url, work):
        with _processes(url, str(work / "data"), job_workers=2, workers=0) as base:
            lat = latency(base)
        with _processes(url, str(work / "data2"), job_workers=0, workers=2) as base:
            many = asyncio.run(_many(base, N_JOBS))
            listing = job_list(url, base)
    report = [
        f"submit -> WAIT -> result of a trivial query: median {lat['async_median_ms']:.0f} ms, "
        f"p95 {lat['async_p95_ms']:.0f} ms (target < 100 ms); the same on /tap/sync "
        f"{lat['sync_median_ms']:.0f} ms",
        f"{many['jobs']} jobs at once, 2 worker processes: {many['completed']} completed, "
        f"{many['correct']} with the right answer, {many['lost']} lost; submitted in "
        f"{many['submit_seconds']:.1f} s, all done in {many['total_seconds']:.1f} s "
        f"({many['jobs_per_second']:.0f} jobs/s)",
    ]
    for name, r in listing.items():
        report.append(
            f"job list with {N_LISTED:,} jobs, {name}: {r['ms']:.0f} ms, {r['jobs']} jobs, "
            f"{r['bytes'] / 1e6:.2f} MB"
        )
    return {"latency": lat, "concurrent": many, "job_list": listing, "report": report}
