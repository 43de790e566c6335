"""Jobs survive kill -9: a server and a worker killed in the middle of a queue of jobs, then
started again, leave every job COMPLETED (with an intact result) or in ERROR with a reason."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from astropy.io import votable

from escape_vo.uws import store
from escape_vo.uws.cleaner import maintain
from tests.conftest import free_port

ESCAPE_VO = [sys.executable, "-m", "escape_vo.cli"]
# About a second of work each: four subqueries of 45 rows joined (4 million rows counted).
SIDE = "(SELECT TOP 45 column_index AS i FROM TAP_SCHEMA.columns ORDER BY table_name, column_name)"
QUERY = (
    f"SELECT COUNT(*) AS n FROM {SIDE} AS a, {SIDE} AS b, {SIDE} AS c, {SIDE} AS d "
    "WHERE a.i + b.i >= c.i + d.i + {k}"
)
SQL = (
    "WITH s AS (SELECT column_index AS i FROM tap_schema.columns "
    "ORDER BY table_name, column_name LIMIT 45) "
    "SELECT count(*) FROM s AS a, s AS b, s AS c, s AS d WHERE a.i + b.i >= c.i + d.i + %s"
)
FINAL = ("COMPLETED", "ERROR", "ABORTED")


def _run(coroutine):
    """asyncio.run in a thread of its own: other tests may leave a loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*ESCAPE_VO, *args], env=env, stdout=subprocess.DEVNULL, stderr=open(log, "ab")
    )


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/tap/availability", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not start")


def _phases(client: httpx.Client, jobs: list[str]) -> dict[str, str]:
    return {job: client.get(f"/tap/async/{job}/phase").text for job in jobs}


def _kill(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_kill_9_server_and_worker_mid_queue_then_restart(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "LC_ALL": "C.UTF-8",
    }
    log = tmp_path / "processes.log"
    server_args = ["serve", "--job-workers", "0"]
    worker_args = ["worker", "--concurrency", "2", "--lease", "3"]
    procs = [_start(server_args, env, log), _start(worker_args, env, log)]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, procs[0])
        client = httpx.Client(base_url=base, timeout=60)
        jobs: dict[str, int] = {}
        for k in range(8):
            fmt = "csv" if k % 3 == 2 else "votable"
            resp = client.post(
                "/tap/async",
                data={"LANG": "ADQL", "QUERY": QUERY.format(k=k), "PHASE": "RUN",
                      "RESPONSEFORMAT": fmt},
            )  # fmt: skip
            assert resp.status_code == 303, resp.text[:500]
            jobs[resp.headers["location"].rsplit("/", 1)[1]] = k
        # Kill both in the middle: one job done, others running or waiting.
        deadline = time.monotonic() + 120
        while True:
            phases = _phases(client, list(jobs))
            done = [j for j, p in phases.items() if p == "COMPLETED"]
            if done and "EXECUTING" in phases.values() and "QUEUED" in phases.values():
                break
            assert time.monotonic() < deadline, phases
            time.sleep(0.05)
        before = {j: client.get(f"/tap/async/{j}/results/result").content for j in done}
        _kill(*procs)
        with psycopg.connect(db_url) as conn:  # the state they left behind
            left = dict(conn.execute("SELECT job_id, phase FROM escape.uws_jobs").fetchall())
        assert "EXECUTING" in left.values()

        procs = [_start(server_args, env, log), _start(worker_args, env, log)]
        _wait_up(base, procs[0])
        deadline = time.monotonic() + 180
        while (phases := _phases(client, list(jobs))) and not all(
            p in FINAL for p in phases.values()
        ):
            assert time.monotonic() < deadline, phases
            time.sleep(0.2)
        with psycopg.connect(db_url) as conn:
            truth = {k: conn.execute(SQL, (k,)).fetchone()[0] for k in set(jobs.values())}
        for job, k in jobs.items():
            doc = client.get(f"/tap/async/{job}").text
            if phases[job] == "ERROR":
                reason = client.get(f"/tap/async/{job}/error")
                assert reason.status_code == 200 and b"QUERY_STATUS" in reason.content, doc
                continue
            assert phases[job] == "COMPLETED", doc
            body = client.get(f"/tap/async/{job}/results/result").content
            if job in before:
                assert body == before[job]  # kept intact across the restart
            if body.startswith(b"n"):  # CSV
                assert int(body.decode().split()[1]) == truth[k]
            else:
                table = votable.parse_single_table(io.BytesIO(body)).to_table()
                assert int(table["n"][0]) == truth[k]
        assert sum(p == "COMPLETED" for p in phases.values()) >= len(jobs) - 1
        leftovers = list((tmp_path / "data" / "results").rglob("*.part"))
        assert leftovers == [] or all(p.parent.name in jobs for p in leftovers)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_housekeeping_drops_upload_tables_left_by_a_crash(db_url: str, tmp_path: Path) -> None:
    from escape_vo.tap.async_ import TAP_JOBS

    stale_sync = f"tap_upload_s{int(time.time()) - 7200}_dead"
    fresh_sync = f"tap_upload_s{int(time.time())}_live"
    orphan_job = f"tap_upload_j{store.new_job_id()}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        for schema in (stale_sync, fresh_sync, orphan_job):
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".t (x int)')
    folder = tmp_path / "results" / store.new_job_id()
    folder.mkdir(parents=True)
    os.utime(folder, (time.time() - 7200, time.time() - 7200))  # a job that never committed

    async def clean() -> dict:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            return await maintain(conn, tmp_path, [TAP_JOBS])

    done = _run(clean())
    with psycopg.connect(db_url) as conn:
        left = {
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tap\\_upload\\_%'"
            )
        }
    assert left == {fresh_sync}  # a request may still be using it
    assert done["orphans"] == 1 and not folder.exists()


def test_a_job_that_keeps_killing_its_worker_ends_in_error(db_url: str, tmp_path: Path) -> None:
    """After MAX_ATTEMPTS interrupted runs the job is not retried: ERROR, with the reason."""

    async def scenario() -> tuple[str, str | None, list[str]]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            ids = []
            for attempts in (1, store.MAX_ATTEMPTS):
                job_id = store.new_job_id()
                await store.create_job(
                    conn, job_id=job_id, kind="tap", parameters=[("QUERY", "SELECT 1")],
                    run_id=None, owner_id=None, execution_duration=60, destruction=None,
                    retention_default=3600, retention_hard=7200, run=True,
                )  # fmt: skip
                await conn.execute(
                    "UPDATE escape.uws_jobs SET phase = 'EXECUTING', worker_id = 'gone:1:x', "
                    "attempts = %s, lease_until = now() - interval '1 second' "
                    "WHERE job_id = %s",
                    (attempts, job_id),
                )
                ids.append(job_id)
            await maintain(conn, tmp_path)
            retried = await store.get_job(conn, ids[0], "tap")
            failed = await store.get_job(conn, ids[1], "tap")
            return retried.phase, failed.error_message, [failed.phase]

    retried, message, (failed_phase,) = _run(scenario())
    assert retried == "QUEUED"
    assert failed_phase == "ERROR"
    assert f"interrupted {store.MAX_ATTEMPTS} times" in message
