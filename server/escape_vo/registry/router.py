"""/oai: the OAI-PMH 2.0 endpoint of this publishing registry (IVOA Registry Interfaces 1.1).

Records are built from the settings, the VOSI capability functions, the table declarations and
the cached coverage (about 0.1 s, then kept until the coverage, the row counts or the base URL
change); every request lets escape_vo.registry.store turn content changes into datestamps and
answers with escape_vo.registry.oai (20-70 ms a request on the demo archive).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from lxml import etree

from escape_vo.coverage.router import coverage_store
from escape_vo.registry.dublincore import dublin_core
from escape_vo.registry.oai import (
    Item,
    OaiFailure,
    Repository,
    error_document,
    parse_arguments,
    respond,
)
from escape_vo.registry.records import Built, RecordBuilder
from escape_vo.registry.store import StoredRecord, publish
from escape_vo.spectra.vosi import base_url

router = APIRouter()
XML = "text/xml; charset=utf-8"


async def _pairs(request: Request) -> list[tuple[str, str]]:
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        return parse_qsl(body, keep_blank_values=True)
    return list(request.query_params.multi_items())


async def current_records(
    request: Request, base: str
) -> tuple[list[Built], dict[str, StoredRecord]]:
    """The records built now (cached while nothing they depend on changes) and every header."""
    app = request.app
    settings = app.state.settings
    coverage = await run_in_threadpool(coverage_store(request).archive)
    async with app.state.pool.connection() as conn:
        cur = await conn.execute("SELECT table_name, nrows FROM tap_schema.tables")
        nrows = {name: n for name, n in await cur.fetchall() if n is not None}
    key = (base, coverage.summary, tuple(sorted(nrows.items())))
    cached = getattr(app.state, "registry_records", None)
    if cached is None or cached[0] != key:
        builder = RecordBuilder(settings, base, coverage, nrows, settings.registry_page_size)
        cached = (key, await run_in_threadpool(builder.all))
        app.state.registry_records = cached
    built = cached[1]
    async with app.state.pool.connection() as conn:
        stored = await publish(conn, [(b.identifier, b.fingerprint) for b in built])
    return built, stored


@router.get("/oai", summary="OAI-PMH 2.0 publishing registry: the VOResource records (verb=...)")
@router.post("/oai", include_in_schema=False)
async def oai_pmh(request: Request) -> Response:
    base = base_url(request)
    endpoint = f"{base}/oai"
    try:
        verb, args = parse_arguments(await _pairs(request))
    except OaiFailure as failure:
        return Response(error_document(endpoint, failure.errors), media_type=XML)
    built, stored = await current_records(request, base)
    by_id = {b.identifier: b for b in built}
    registry = next(b for b in built if b.record.type == "vg:Registry")

    def metadata(identifier: str, prefix: str) -> etree._Element:
        record, dates = by_id[identifier], stored[identifier]
        if prefix == "oai_dc":
            return dublin_core(record.record, dates.datestamp)
        return record.tree(dates.created, dates.datestamp)

    settings = request.app.state.settings
    dates = stored[registry.identifier]
    repo = Repository(
        base_url=endpoint,
        name=str(registry.record.title),
        admin_emails=[settings.registry_contact_email],
        items=[Item(s.identifier, s.datestamp, s.deleted) for s in stored.values()],
        metadata=metadata,
        identify_description=registry.tree(dates.created, dates.datestamp),
        page_size=max(1, settings.registry_page_size),
        sets={"ivo_managed": f"Resources of the authority {settings.ivo_authority}"},
    )
    body = await run_in_threadpool(respond, verb, args, repo)
    return Response(body, media_type=XML)
