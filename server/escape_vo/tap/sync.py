"""/tap/sync: run an ADQL query and stream the result in the requested format.

The steps shared with async jobs (tap/async_.py) are here too: `prepare_query` (parameters,
uploads, translation), `open_stream` (run it) and `result_body` (the writers, with MAXREC and
overflow), so a query gives the same answer whichever way it is submitted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from escape_vo.adql import AdqlError, Catalog, Translation, translate
from escape_vo.tap.executor import QueryError, QueryPool, ResultStream
from escape_vo.tap.limits import LIMITS
from escape_vo.tap.params import ParameterError, QueryParameters, query_parameters
from escape_vo.tap.uploads import (
    UploadError,
    UploadSession,
    load_uploads,
    parse_upload,
    part_reader,
)
from escape_vo.uws.forms import RequestTooLarge, read_form
from escape_vo.votable import OutputFormat, error_votable, resolve_format, write_result

log = logging.getLogger(__name__)
router = APIRouter(prefix="/tap")

VOTABLE_ERROR_TYPE = "application/x-votable+xml"
# Uploads plus room for the other parameters (a long QUERY).
MAX_REQUEST_BYTES = LIMITS.upload_max_bytes + 10_000_000


def dali_error(message: str, status: int = 400) -> Response:
    """A DALI error document: VOTable with QUERY_STATUS=ERROR and the message."""
    return Response(error_votable(message), status_code=status, media_type=VOTABLE_ERROR_TYPE)


class QueryProblem(Exception):
    """The request cannot run; the message is the DALI error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class PreparedQuery:
    params: QueryParameters
    fmt: OutputFormat
    translation: Translation
    infos: list[tuple[str, str]]
    uploads: UploadSession | None = None  # the caller closes it once the result is written


def prepare_query(
    params: dict[str, list[str]],
    catalog: Catalog,
    new_session: Callable[[], UploadSession] | None = None,
    part: Callable[[str], bytes] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> PreparedQuery:
    """Check the parameters, load the uploads, translate the ADQL (blocking: run in a thread)."""
    try:
        qp = query_parameters(params)
        fmt = resolve_format(qp.response_format)
        specs = parse_upload(params.get("upload", []))
    except (ParameterError, UploadError, ValueError) as exc:
        raise QueryProblem(str(exc)) from None
    session = None
    try:
        if specs:
            if new_session is None or part is None:
                raise QueryProblem("this endpoint does not accept table uploads")
            session = new_session()
            load_uploads(session, specs, part, cancelled)
            catalog = session.catalog(catalog)
        try:
            translation = translate(qp.query, catalog, max_rows=qp.maxrec + 1)
        except AdqlError as exc:
            raise QueryProblem(f"ADQL error: {exc}") from None
        if session is not None:
            session.load(translation.sql)
    except UploadError as exc:
        if session is not None:
            session.close()
        raise QueryProblem(str(exc)) from None
    except BaseException:
        if session is not None:
            session.close()
        raise
    infos = [("QUERY", qp.query), ("REQUEST", "doQuery"), ("LANG", qp.lang)]
    if qp.runid:
        infos.append(("RUNID", qp.runid))
    return PreparedQuery(qp, fmt, translation, infos, session)


def open_stream(pool: QueryPool, prepared: PreparedQuery, setup: tuple[str, ...] = ()):
    """Start the query (blocking); QueryProblem if PostgreSQL refuses it at once."""
    t = prepared.translation
    try:
        return ResultStream(pool, t.sql, t.columns, (*setup, *t.setup))
    except QueryError as exc:
        raise QueryProblem(f"query failed: {exc}") from None


def result_body(prepared: PreparedQuery, stream: ResultStream) -> Iterator[bytes]:
    """The response body in the requested format: at most MAXREC rows, overflow marked."""
    t = prepared.translation
    return write_result(
        prepared.fmt, t.columns, iter(stream), max_rows=prepared.params.maxrec, infos=prepared.infos
    )


def _closing(body: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from body
    finally:
        close()


async def run_sync_query(
    request: Request, params: dict[str, list[str]], files: dict | None = None
) -> Response:
    state = request.app.state

    def start() -> tuple[PreparedQuery, ResultStream]:
        prepared = prepare_query(
            params,
            state.catalog,
            lambda: UploadSession.for_request(state.query_pool.url),
            part_reader(files or {}),
        )
        try:
            return prepared, open_stream(state.query_pool, prepared)
        except BaseException:
            if prepared.uploads is not None:
                prepared.uploads.close()
            raise

    try:
        prepared, stream = await run_in_threadpool(start)
    except QueryProblem as exc:
        return dali_error(exc.message)
    body = result_body(prepared, stream)
    if prepared.uploads is not None:
        body = _closing(body, prepared.uploads.close)
    headers = {"Content-Disposition": f'inline; filename="result.{prepared.fmt.extension}"'}
    return StreamingResponse(body, media_type=prepared.fmt.mime_type, headers=headers)


@router.get("/sync", summary="TAP synchronous query (ADQL 2.1): GET or POST LANG, QUERY, ...")
@router.post("/sync", include_in_schema=False)
async def sync_query(request: Request) -> Response:
    try:
        form = await read_form(request, MAX_REQUEST_BYTES)
    except RequestTooLarge as exc:
        return dali_error(str(exc), 413)
    except Exception as exc:  # a malformed body (bad multipart) is the client's error
        return dali_error(f"cannot read the request parameters: {exc}")
    try:
        return await run_sync_query(request, form.params, form.files)
    finally:
        await form.close()
