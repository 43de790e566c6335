"""/coverage: MOCs of the archive and of each collection (MOC 2.0: FITS, JSON or ASCII).

  /coverage                 the whole archive
  /coverage/{collection}    one collection (archive.spectra.collection)
Parameters (case-insensitive names): KIND=space (default; aperture-aware sky coverage),
time (T-MOC of the exposures) or space-time (ST-MOC); FORMAT=fits (default, what Aladin and
TOPCAT load), json or ascii; ORDER=n serves a space or time MOC degraded to order n.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from escape_vo.coverage.store import KINDS, Coverage, CoverageStore

router = APIRouter(prefix="/coverage")
_FORMATS = {
    "fits": ("fits", "application/fits"),
    "application/fits": ("fits", "application/fits"),
    "json": ("json", "application/json"),
    "application/json": ("json", "application/json"),
    "ascii": ("ascii", "text/plain; charset=utf-8"),
    "text/plain": ("ascii", "text/plain; charset=utf-8"),
}
_PARAMS = ("kind", "format", "order")


def coverage_store(request: Request) -> CoverageStore:
    """The app's store (one per process), on DATA_DIR/coverage at COVERAGE_ORDER."""
    app = request.app
    store = getattr(app.state, "coverage", None)
    if store is None:
        settings = app.state.settings
        store = CoverageStore(
            app.state.query_pool.url, settings.data_dir / "coverage", settings.coverage_order
        )
        app.state.coverage = store
    return store


class _BadRequest(ValueError):
    pass


def _params(request: Request) -> tuple[str, tuple[str, str], int | None]:
    values: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        values.setdefault(key.lower(), []).append(value.strip())
    unknown = sorted(set(values) - set(_PARAMS))
    if unknown:
        raise _BadRequest(
            f"unknown parameter {', '.join(unknown)}; /coverage takes KIND, FORMAT and ORDER"
        )
    for key, vals in values.items():
        if len(vals) > 1:
            raise _BadRequest(f"{key.upper()} is given {len(vals)} times; give it once")
    kind = values.get("kind", ["space"])[0].lower()
    if kind not in KINDS:
        raise _BadRequest(f"KIND={kind} is not known; use one of {', '.join(KINDS)}")
    fmt = values.get("format", ["fits"])[0].lower()
    if fmt not in _FORMATS:
        raise _BadRequest(f"FORMAT={fmt} is not supported; use fits, json or ascii")
    order = None
    if "order" in values:
        raw = values["order"][0]
        if not raw.isdigit() or not 0 <= int(raw) <= 29:
            raise _BadRequest(f"ORDER={raw} is not an order; give an integer from 0 to 29")
        if kind == "space-time":
            raise _BadRequest("ORDER applies to KIND=space or KIND=time, not to space-time")
        order = int(raw)
    return kind, _FORMATS[fmt], order


def _respond(request: Request, coverage: Coverage, name: str) -> Response:
    try:
        kind, (fmt, media), order = _params(request)
    except _BadRequest as exc:
        return PlainTextResponse(f"{exc}\n", status_code=400)
    s = coverage.summary
    tag = f"{s.spectra}|{s.ingest_time}|{s.space_order}|{kind}|{fmt}|{order}|{name}"
    etag = '"' + hashlib.sha256(tag.encode()).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "Content-Disposition": f'inline; filename="{name}-{kind}.{fmt}"',
        "X-Spectra": str(s.spectra),
    }
    if request.headers.get("if-none-match", "").strip() == etag:
        return Response(status_code=304, headers=headers)
    return Response(coverage.serialize(kind, fmt, order), media_type=media, headers=headers)


@router.get("", summary="MOC of the archive's sky coverage (KIND=space|time|space-time, FORMAT)")
async def archive_coverage(request: Request) -> Response:
    coverage = await run_in_threadpool(coverage_store(request).archive)
    return await run_in_threadpool(_respond, request, coverage, "escape-vo")


@router.get("/{collection}", summary="MOC of one collection (KIND=space|time|space-time, FORMAT)")
async def collection_coverage(request: Request, collection: str) -> Response:
    store = coverage_store(request)
    try:
        coverage = await run_in_threadpool(store.collection, collection)
    except KeyError:
        known = await run_in_threadpool(store.collections)
        return PlainTextResponse(
            f"no collection {collection!r}; collections: {', '.join(known) or '(none yet)'}\n",
            status_code=404,
        )
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in collection)
    return await run_in_threadpool(_respond, request, coverage, safe)
