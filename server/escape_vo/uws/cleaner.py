"""Housekeeping shared by every worker and server process; idempotent and safe to run at once.

* jobs whose worker died are re-queued (or failed after too many interruptions): at once when
  the worker ran on this machine and its process is gone, otherwise when its lease expires;
* jobs past their destruction time are deleted with their result files;
* directories of the results area that belong to no job (a crash between writing files and
  committing the job) are removed after an hour;
* each kind sweeps what it leaves behind (TAP: upload tables of interrupted requests).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import psycopg

from escape_vo.uws import store
from escape_vo.uws.files import remove_job_dir, results_root
from escape_vo.uws.model import JobKind

log = logging.getLogger(__name__)

ORPHAN_AGE = 3600.0  # seconds before a directory without a job is removed
HOST = socket.gethostname()


def worker_id_for(pid: int, token: str) -> str:
    return f"{HOST}:{pid}:{token}"


def _dead_local(worker_ids: Iterable[str]) -> list[str]:
    """Workers of this machine whose process no longer exists (ids are host:pid:token)."""
    dead = []
    for wid in worker_ids:
        rest, sep, _token = wid.rpartition(":")
        host, sep2, pid = rest.rpartition(":")
        if not (sep and sep2) or host != HOST or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(wid)
        except PermissionError:  # alive, owned by another user
            continue
    return dead


async def reap(conn: psycopg.AsyncConnection) -> list[tuple[str, str]]:
    dead = _dead_local(await store.executing_workers(conn))
    reaped = await store.reap_jobs(conn, dead_workers=dead)
    for job_id, phase in reaped:
        log.warning("job %s lost its worker; now %s", job_id, phase)
    return reaped


async def maintain(
    conn: psycopg.AsyncConnection, data_dir: Path, kinds: Iterable[JobKind] = ()
) -> dict[str, int]:
    """One round of housekeeping; returns what it did (for logs and tests)."""
    reaped = await reap(conn)
    destroyed: list[str] = []
    while batch := await store.destroy_expired(conn):
        destroyed += batch
        for job_id in batch:
            remove_job_dir(data_dir, job_id)
    if destroyed:
        log.info("destroyed %d jobs past their destruction time", len(destroyed))
    orphans = await _sweep_orphans(conn, data_dir)
    for kind in kinds:
        if kind.sweep is not None:
            try:
                await kind.sweep(conn)
            except Exception:
                log.exception("housekeeping of %s jobs failed", kind.name)
    return {"reaped": len(reaped), "destroyed": len(destroyed), "orphans": orphans}


async def _sweep_orphans(conn: psycopg.AsyncConnection, data_dir: Path) -> int:
    root = results_root(data_dir)
    if not root.is_dir():
        return 0
    now = time.time()
    old = []
    for entry in root.iterdir():
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > ORPHAN_AGE:
                old.append(entry.name)
        except OSError:
            continue
    if not old:
        return 0
    known = await store.existing_jobs(conn, old)
    removed = 0
    for name in old:
        if name not in known:
            try:
                remove_job_dir(data_dir, name)
                removed += 1
            except ValueError:  # not a job directory: leave it alone
                continue
    return removed
