"""Shared fixtures: one real embedded PostgreSQL per test session, fresh databases per test.

The server lives in /tmp/escape-vo-tests/<run>; a run killed with SIGKILL cannot stop its server,
so every session first stops and removes the servers of runs whose pytest process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from escape_vo.db.embedded import EmbeddedPostgres
from escape_vo.db.migrate import migrate
from escape_vo.settings import Settings

TEST_ROOT = Path("/tmp/escape-vo-tests")
REPO = Path(__file__).resolve().parents[1]


def _reap_leftovers() -> None:
    if not TEST_ROOT.exists():
        return
    for run in TEST_ROOT.iterdir():
        owner = run / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            pid = -1
        if pid > 0 and _alive(pid):
            continue
        for pgdata in run.rglob("pgdata"):
            with contextlib.suppress(Exception):
                EmbeddedPostgres(pgdata.parent).stop(mode="immediate")
        shutil.rmtree(run, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def run_dir() -> Iterator[Path]:
    _reap_leftovers()
    path = TEST_ROOT / uuid.uuid4().hex[:10]
    path.mkdir(parents=True)
    (path / "owner.pid").write_text(str(os.getpid()))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(run_dir: Path) -> Iterator[EmbeddedPostgres]:
    """The session's PostgreSQL server, stopped for sure at the end."""
    server = EmbeddedPostgres(run_dir / "session", start_timeout=60)
    server.ensure_running()
    try:
        yield server
    finally:
        server.stop(mode="fast")


@pytest.fixture
def fresh_db(pg: EmbeddedPostgres) -> Callable[[], str]:
    """Factory of empty databases on the session server; dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return pg.url(name)

    yield make
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(fresh_db: Callable[[], str]) -> str:
    """A migrated, empty database."""
    url = fresh_db()
    migrate(url, base_url="http://127.0.0.1:8000")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, ivo_authority="test.example")


def default_sigint() -> None:
    """preexec_fn of a child a test will Ctrl-C: SIGINT back to its default, for a shell without
    job control starts background commands (`make test &` in a CI script) with SIGINT ignored,
    and a child would inherit that and never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app, port: int) -> None:
        import threading

        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def demo_archive(pg: EmbeddedPostgres, run_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A database with 200 demo spectra, shared by the read-only tests of a session."""
    from escape_vo.demo.generate import generate_demo
    from escape_vo.ingest.pipeline import ingest

    name = "demo_archive"
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg.url(name)
    port = free_port()
    migrate(url, base_url=f"http://127.0.0.1:{port}")
    files = tmp_path_factory.mktemp("demo-archive")
    truth = generate_demo(files, n_spectra=200, seed=11)
    data_dir = run_dir / "demo-archive-data"
    settings = Settings(
        data_dir=data_dir, database_url=url, ivo_authority="test.example", port=port
    )
    report = ingest(
        [files],
        db_url=url,
        store_url=settings.files_url,
        authority=settings.ivo_authority,
        collection="demo",
    )
    assert report.ok, report.summary()
    return settings, truth


@pytest.fixture(scope="session")
def live_server(demo_archive) -> Iterator[LiveServer]:
    """The service over HTTP on the demo archive."""
    from escape_vo.web.app import create_app

    settings, _ = demo_archive
    with LiveServer(create_app(settings), settings.port) as server:
        yield server
