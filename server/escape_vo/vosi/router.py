"""HTTP endpoints of VOSI for the TAP service: capabilities, availability, tables."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic_xml import BaseXmlModel
from vo_models.tapregext.models import OutputFormat as TrOutputFormat
from vo_models.vosi.availability.models import Availability

from escape_vo.schema.model import find_table, load_schemas
from escape_vo.vosi.capabilities import tap_capabilities
from escape_vo.vosi.tables import tableset, vosi_table
from escape_vo.votable import SUPPORTED

router = APIRouter(prefix="/tap")
XML = "text/xml"
STARTED = datetime.now(UTC)
# TAPRegExt identifiers of the standard VOTable serialisations.
_FORMAT_IVOIDS = {
    "BINARY2": "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
    "TABLEDATA": "ivo://ivoa.net/std/TAPRegExt#output-votable-td",
    "BINARY": "ivo://ivoa.net/std/TAPRegExt#output-votable-binary",
}


def _xml(model: BaseXmlModel) -> Response:
    body = model.to_xml(encoding="UTF-8", xml_declaration=True, skip_empty=True)
    return Response(body, media_type=XML)


def _base_url(request: Request) -> str:
    settings = request.app.state.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def output_formats() -> list[TrOutputFormat]:
    """The TAPRegExt outputFormats; also used by the registry record of the TAP service."""
    return [
        TrOutputFormat(
            mime=f.mime_type,
            alias=list(f.aliases),
            ivo_id=_FORMAT_IVOIDS.get(f.format.serialization or ""),
        )
        for f in SUPPORTED
    ]


@router.get("/capabilities", summary="VOSI capabilities of the TAP service (TAPRegExt)")
async def capabilities(request: Request) -> Response:
    return _xml(tap_capabilities(_base_url(request), output_formats()))


@router.get("/availability", summary="VOSI availability: whether the database answers")
async def availability(request: Request) -> Response:
    notes = []
    try:
        async with request.app.state.pool.connection(timeout=5) as conn:
            await conn.execute("SELECT 1")
        available = True
        notes.append("accepting queries")
    except Exception as exc:  # any failure to reach the database means "not available"
        available = False
        notes.append(f"database unreachable: {type(exc).__name__}")
    doc = Availability(available=available, up_since=STARTED if available else None, note=notes)
    return _xml(doc)


async def _row_counts(request: Request) -> dict[str, int]:
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute("SELECT table_name, nrows FROM tap_schema.tables")
        return {name: n for name, n in await cur.fetchall() if n is not None}


@router.get("/tables", summary="VOSI tables: every published schema, table and column")
async def tables(request: Request, detail: str | None = None) -> Response:
    if detail not in (None, "min", "max"):
        return Response(
            f"detail={detail} is not valid; use detail=min or detail=max",
            status_code=400,
            media_type="text/plain",
        )
    counts = await _row_counts(request)
    return _xml(tableset(load_schemas(), counts, detail=detail != "min"))


@router.get("/tables/{name}", summary="VOSI table: one table with its columns")
async def one_table(request: Request, name: str) -> Response:
    try:
        table = find_table(name)
    except KeyError:
        known = ", ".join(t.qualified_name for s in load_schemas() for t in s.tables if t.published)
        message = f"no table {name!r}; published tables: {known}"
        return Response(message, status_code=404, media_type="text/plain")
    if not table.published:
        return Response(f"no table {name!r}", status_code=404, media_type="text/plain")
    counts = await _row_counts(request)
    return _xml(vosi_table(table, counts.get(table.qualified_name)))
