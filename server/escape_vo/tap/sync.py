"""/tap/sync: run an ADQL query and stream the result in the requested format."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from escape_vo.adql import AdqlError, translate
from escape_vo.tap.executor import QueryError, ResultStream
from escape_vo.tap.params import ParameterError, collect, query_parameters
from escape_vo.votable import error_votable, resolve_format, write_result

log = logging.getLogger(__name__)
router = APIRouter(prefix="/tap")

VOTABLE_ERROR_TYPE = "application/x-votable+xml"


def dali_error(message: str, status: int = 400) -> Response:
    """A DALI error document: VOTable with QUERY_STATUS=ERROR and the message."""
    return Response(error_votable(message), status_code=status, media_type=VOTABLE_ERROR_TYPE)


async def run_sync_query(request: Request, params: dict[str, list[str]]) -> Response:
    try:
        qp = query_parameters(params)
        fmt = resolve_format(qp.response_format)
    except (ParameterError, ValueError) as exc:
        return dali_error(str(exc))
    try:
        translation = translate(qp.query, request.app.state.catalog, max_rows=qp.maxrec + 1)
    except AdqlError as exc:
        return dali_error(f"ADQL error: {exc}")
    try:
        stream = await run_in_threadpool(
            ResultStream,
            request.app.state.query_pool,
            translation.sql,
            translation.columns,
            tuple(translation.setup),
        )
    except QueryError as exc:
        return dali_error(f"query failed: {exc}")
    infos = [("QUERY", qp.query), ("REQUEST", "doQuery"), ("LANG", qp.lang)]
    if qp.runid:
        infos.append(("RUNID", qp.runid))
    body = write_result(fmt, translation.columns, iter(stream), max_rows=qp.maxrec, infos=infos)
    headers = {"Content-Disposition": f'inline; filename="result.{fmt.extension}"'}
    return StreamingResponse(body, media_type=fmt.mime_type, headers=headers)


@router.get("/sync", summary="TAP synchronous query (ADQL 2.1): GET or POST LANG, QUERY, ...")
@router.post("/sync", include_in_schema=False)
async def sync_query(request: Request) -> Response:
    try:
        params = await collect(request)
    except Exception as exc:  # a malformed body (bad multipart) is the client's error
        return dali_error(f"cannot read the request parameters: {exc}")
    return await run_sync_query(request, params)
