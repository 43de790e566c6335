"""/ssa: SSA 1.1 queryData (GET or POST), FORMAT=METADATA, VOSI capabilities and availability.

Errors are VOTable documents with QUERY_STATUS=ERROR (SSA 1.1 section 8.5), returned with
HTTP 200 as SSA 1.1 clients (SPLAT, pyvo) expect, so they show the message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from escape_vo.adql import AdqlError, translate
from escape_vo.spectra.vodoc import VOTABLE_MIME
from escape_vo.spectra.vosi import add_vosi_routes, base_url, vosi_capabilities
from escape_vo.ssa.capabilities import SsaCapabilities, ssa_capability
from escape_vo.ssa.query import SsaError, build_query
from escape_vo.ssa.response import metadata_document, results_document, view_columns
from escape_vo.tap.executor import QueryError, ResultStream
from escape_vo.tap.params import collect
from escape_vo.vosi.router import availability
from escape_vo.votable import error_votable

router = APIRouter(prefix="/ssa")


def ssa_error(message: str) -> Response:
    return Response(
        error_votable(message, infos=[("SERVICE_PROTOCOL", "1.1")]), media_type=VOTABLE_MIME
    )


def _publisher(request: Request) -> str:
    return f"ivo://{request.app.state.settings.ivo_authority}"


def _capabilities(prefix_url: str) -> bytes:
    return vosi_capabilities(prefix_url, ssa_capability(prefix_url), document=SsaCapabilities)


@router.get("", summary="SSA 1.1 queryData: POS, SIZE, BAND, TIME, FORMAT, TARGETNAME, ...")
@router.post("", include_in_schema=False)
async def ssa_query(request: Request) -> Response:
    try:
        params = await collect(request)
    except Exception as exc:  # a malformed body is the client's error
        return ssa_error(f"cannot read the request parameters: {exc}")
    operation = (params.get("request") or ["queryData"])[0].strip().lower()
    if operation == "getcapabilities":
        return Response(_capabilities(base_url(request) + router.prefix), media_type="text/xml")
    if operation == "getavailability":
        return await availability(request)
    if operation != "querydata":
        return ssa_error(
            f"REQUEST={operation} is not supported; use REQUEST=queryData "
            "(or getCapabilities, getAvailability)"
        )
    names = [c.adql_name for c in view_columns()]
    try:
        query = build_query(params, names)
    except SsaError as exc:
        return ssa_error(str(exc))
    base = base_url(request)
    if query.metadata:
        return StreamingResponse(
            metadata_document(base, _publisher(request)), media_type=VOTABLE_MIME
        )
    try:
        translation = translate(query.adql, request.app.state.catalog)
    except AdqlError as exc:  # would be our bug: the message still helps the operator
        return ssa_error(f"internal query error: {exc}")
    try:
        stream = await run_in_threadpool(
            ResultStream, request.app.state.query_pool, translation.sql, translation.columns
        )
    except QueryError as exc:
        return ssa_error(f"query failed: {exc}")
    infos = [("SERVICE_PROTOCOL", "1.1"), ("REQUEST", "queryData")]
    content = {"SERVICE_PROTOCOL": "SSAP"}
    if query.runid:
        infos.append(("RUNID", query.runid))
    if query.ignored:
        infos.append(("WARNING", "parameters not applied: " + ", ".join(query.ignored)))
    body = results_document(
        iter(stream),
        formats=query.formats,
        maxrec=query.maxrec,
        infos=infos,
        info_content=content,
        base_url=base,
        publisher=_publisher(request),
    )
    return StreamingResponse(body, media_type=VOTABLE_MIME)


add_vosi_routes(router, "SSA service", _capabilities)
