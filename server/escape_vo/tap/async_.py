"""/tap/async: TAP queries as UWS jobs, run by `escape-vo worker` processes.

The job kind 'tap' is registered here: at creation the inline uploads (UPLOAD=name,param:part)
are saved in the job's directory, since the worker that runs the job may be another process on
another machine; URL uploads are fetched when the job runs. The runner shares every step with
/tap/sync (tap/sync.py: parameters, uploads, translation, writers, MAXREC and overflow), and
writes the result to DATA_DIR/results/<job>/result.<ext>. EXECUTIONDURATION is enforced by
PostgreSQL (statement_timeout set to the time left) and by the worker (which cancels the job
when the time is up).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from escape_vo.adql import Catalog
from escape_vo.schema.model import published_tables
from escape_vo.tap.executor import QueryPool
from escape_vo.tap.limits import LIMITS
from escape_vo.tap.sync import (
    MAX_REQUEST_BYTES,
    QueryProblem,
    open_stream,
    prepare_query,
    result_body,
)
from escape_vo.tap.uploads import SCHEMA_PREFIX, UploadError, UploadSession, parse_upload
from escape_vo.uws import JobContext, JobFailure, JobKind, ParameterProblem, ResultFile, register
from escape_vo.uws import store as uws_store
from escape_vo.uws.files import INPUTS, AtomicFile
from escape_vo.uws.router import uws_router
from escape_vo.votable import error_votable

log = logging.getLogger(__name__)

KIND = "tap"
RESULT_ID = "result"


def _part_file(folder: Path, part: str) -> Path:
    return folder / INPUTS / hashlib.sha256(part.encode()).hexdigest()[:32]


async def prepare(params: list[tuple[str, str]], files: Mapping, folder: Path):
    """At creation (or POST /parameters): check UPLOAD and keep the inline tables it names."""
    values = [v for k, v in params if k.upper() == "UPLOAD"]
    try:
        specs = parse_upload(values)
    except UploadError as exc:
        raise ParameterProblem(str(exc)) from None
    for spec in specs:
        if spec.part is None:
            continue  # fetched from its URL when the job runs
        upload = files.get(spec.part)
        if upload is None:
            known = ", ".join(sorted(files)) or "none"
            raise ParameterProblem(
                f"UPLOAD names the part {spec.part!r} but the request has no such file part "
                f"(parts sent: {known})"
            )
        target = _part_file(folder, spec.part)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
    return params


@lru_cache
def _catalog() -> Catalog:
    return Catalog.from_tables(published_tables())


_pools: dict[str, QueryPool] = {}
_pools_lock = threading.Lock()


def _pool(url: str) -> QueryPool:
    """One pool of query connections per worker process and database."""
    with _pools_lock:
        if url not in _pools:
            _pools[url] = QueryPool(url, size=16, statement_timeout_s=LIMITS.async_execution_hard)
        return _pools[url]


def close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


class _Watched:
    """Pass batches on, counting rows and keeping the error that ended the stream, if any.

    The VOTable writer turns a failure in the middle of a result into a trailing error INFO,
    which is right for a synchronous response already under way; a job must end in ERROR.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch], cancelled: threading.Event) -> None:
        self._batches = batches
        self._cancelled = cancelled
        self.rows = 0
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
                if self._cancelled.is_set():
                    raise JobFailure("the job was cancelled")
                self.rows += batch.num_rows
                yield batch
        except Exception as exc:
            self.error = exc
            raise


def _timeout_message(seconds: int) -> str:
    return (
        f"the query ran longer than the job's execution duration ({seconds} s) and was "
        f"cancelled by the database; ask for a longer EXECUTIONDURATION (at most "
        f"{LIMITS.async_execution_hard} s) or make the query cheaper (fewer rows, a narrower "
        "region, conditions on indexed columns)"
    )


def _failure(message: str, ctx: JobContext) -> JobFailure:
    if "took longer than the time limit" in message:
        return JobFailure(_timeout_message(ctx.job.execution_duration), fatal=False)
    return JobFailure(message)


def run(ctx: JobContext) -> list[ResultFile]:
    """Run one TAP job: the same steps as /tap/sync, into a file of the results area."""
    job = ctx.job

    def part(name: str) -> bytes:
        path = _part_file(ctx.work_dir, name)
        if not path.is_file():
            raise UploadError(f"the uploaded part {name!r} of this job is missing")
        return path.read_bytes()

    try:
        prepared = prepare_query(
            job.params(),
            _catalog(),
            lambda: UploadSession(ctx.db_url, f"j{job.job_id}", tag=ctx.tag),
            part,
            ctx.cancelled.is_set,
        )
    except QueryProblem as exc:
        raise JobFailure(exc.message) from None
    try:
        left_ms = int(ctx.remaining() * 1000)
        if left_ms <= 0:
            raise JobFailure(_timeout_message(job.execution_duration), fatal=False)
        setup = (f"SET application_name = '{ctx.tag}'", f"SET statement_timeout = {left_ms}")
        try:
            stream = open_stream(_pool(ctx.db_url), prepared, setup)
        except QueryProblem as exc:
            raise _failure(exc.message, ctx) from None
        watched = _Watched(stream, ctx.cancelled)
        fmt = prepared.fmt
        name = f"{RESULT_ID}.{fmt.extension}"
        out = AtomicFile(ctx.work_dir / name)
        try:
            for chunk in result_body(prepared, watched):
                out.write(chunk)
            if watched.error is not None:
                raise watched.error
            size = out.commit()
        except JobFailure:
            out.abort()
            raise
        except Exception as exc:
            out.abort()
            text = getattr(exc, "args", [""])[0] if exc.args else type(exc).__name__
            raise _failure(f"query failed: {text}", ctx) from None
        finally:
            stream.close()
    finally:
        if prepared.uploads is not None:
            prepared.uploads.close()
    rows = min(watched.rows, prepared.params.maxrec)
    return [ResultFile(RESULT_ID, name, fmt.mime_type, size, rows)]


def warm_up() -> None:
    """Load the catalog and build the ADQL parser once, not during the first job."""
    from escape_vo.adql import translate

    translate("SELECT TOP 1 table_name FROM TAP_SCHEMA.tables", _catalog())


def error_document(message: str) -> tuple[bytes, str]:
    return error_votable(message), "application/x-votable+xml"


async def sweep_uploads(conn) -> None:
    """Drop upload schemas left by a crash: sync ones after the sync time limit, job ones
    whose job is no longer executing."""
    cur = await conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (SCHEMA_PREFIX + "%",)
    )
    now = time.time()
    for (schema,) in await cur.fetchall():
        label = schema[len(SCHEMA_PREFIX) :]
        stale = False
        if label.startswith("s"):
            epoch = label[1:].split("_", 1)[0]
            stale = epoch.isdigit() and now - int(epoch) > LIMITS.sync_timeout + 600
        elif label.startswith("j"):
            stale = await uws_store.job_phase(conn, label[1:]) != "EXECUTING"
        if stale:
            quoted = '"' + schema.replace('"', '""') + '"'
            await conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
            log.info("dropped stale upload schema %s", schema)


TAP_JOBS = register(
    JobKind(
        name=KIND,
        run=run,
        error_document=error_document,
        prepare=prepare,
        execution_default=LIMITS.async_execution_default,
        execution_hard=LIMITS.async_execution_hard,
        retention_default=LIMITS.retention_default,
        retention_hard=LIMITS.retention_hard,
        max_request_bytes=MAX_REQUEST_BYTES,
        close=close_pools,
        sweep=sweep_uploads,
        warm_up=warm_up,
    )
)

router = uws_router(TAP_JOBS, "/tap/async")
