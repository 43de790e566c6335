"""Lifecycle of the embedded PostgreSQL: start, stop, restart, kill -9, stale pid files, leases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from escape_vo.db.embedded import EmbeddedPostgres


@pytest.fixture
def server(run_dir: Path, request: pytest.FixtureRequest):
    srv = EmbeddedPostgres(run_dir / f"lifecycle-{request.node.name}"[:80], start_timeout=60)
    yield srv
    srv.stop(mode="immediate")


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM keep").fetchone()[0]


def test_start_stop_restart_keeps_data(server: EmbeddedPostgres) -> None:
    assert server.ensure_running() is True
    assert server.ensure_running() is False  # already running: reused, not restarted
    with psycopg.connect(server.url()) as conn:
        conn.execute("CREATE TABLE keep (x int)")
        conn.execute("INSERT INTO keep SELECT generate_series(1, 100)")
        version = conn.execute("SHOW server_version").fetchone()[0]
        ext = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    assert version.startswith("18")
    assert ext is not None, "pgvector must be available"
    server.stop()
    assert not server.is_running()
    assert server.ensure_running() is True
    assert _count(server.url()) == 100


def test_restart_after_kill_9_of_the_server(server: EmbeddedPostgres) -> None:
    server.ensure_running()
    with psycopg.connect(server.url()) as conn:
        conn.execute("CREATE TABLE keep (x int)")
        conn.execute("INSERT INTO keep SELECT generate_series(1, 10)")
    pid = server._postmaster_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert not server.is_running()
    assert (server.pgdata / "postmaster.pid").exists()  # the stale file a crash leaves behind
    assert server.ensure_running() is True
    assert _count(server.url()) == 10  # committed data survived the crash (WAL replay)


def test_stale_pid_file_with_a_reused_pid(server: EmbeddedPostgres) -> None:
    server.ensure_running()
    server.stop()
    # A pid file naming a live process that is not our postmaster (here: this test process).
    stale = f"{os.getpid()}\n{server.pgdata}\n0\n5432\n\n\n\nready\n"
    (server.pgdata / "postmaster.pid").write_text(stale)
    assert server.ensure_running() is True
    assert server.is_running()


def test_leases_stop_the_server_with_the_last_holder(server: EmbeddedPostgres) -> None:
    # Another process holds a lease (like `make demo` serving) ...
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from escape_vo.db.embedded import EmbeddedPostgres as E;"
            f"s = E(Path({str(server.data_dir)!r}));"
            "cm = s.lease(); cm.__enter__(); print('ready', flush=True);"
            "sys.stdin.readline(); cm.__exit__(None, None, None)",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        # ... while this process (like `escape-vo ingest`) uses the same data directory.
        with server.lease() as url, psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.is_running(), "the other holder still uses the server"
        holder.communicate("\n", timeout=60)
        assert holder.returncode == 0
        assert not server.is_running(), "the last holder stops the server"
    finally:
        holder.kill()


def test_dead_holder_does_not_keep_the_server_alive(server: EmbeddedPostgres) -> None:
    server.ensure_running()
    server.leases.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (server.leases / str(dead.pid)).write_text(str(dead.pid))  # a holder killed with SIGKILL
    with server.lease():
        pass
    assert not server.is_running()
    assert not (server.leases / str(dead.pid)).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="root handling only applies when run as root")
def test_as_root_the_server_runs_as_the_unprivileged_user(server: EmbeddedPostgres) -> None:
    import psutil

    server.ensure_running()
    proc = psutil.Process(server._postmaster_pid())
    assert proc.username() == "embedded_postgres"
