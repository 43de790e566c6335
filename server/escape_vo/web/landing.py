"""The landing page: what this service is, its endpoints, and what data it holds."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from escape_vo import __version__

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

_STATS_SQL = {
    "total": "SELECT count(*), count(ra), min(wave_min), max(wave_max) FROM archive.spectra",
    "by_collection": (
        "SELECT collection, count(*) FROM archive.spectra GROUP BY 1 ORDER BY 2 DESC, 1"
    ),
    "by_instrument": (
        "SELECT coalesce(instrument, '(unknown)'), coalesce(facility, ''), count(*) "
        "FROM archive.spectra GROUP BY 1, 2 ORDER BY 3 DESC, 1"
    ),
    "by_class": (
        "SELECT coalesce(target_class, '(unclassified)'), count(*) FROM archive.spectra "
        "GROUP BY 1 ORDER BY 2 DESC"
    ),
}


async def archive_stats(request: Request) -> dict:
    async with request.app.state.pool.connection() as conn:
        total = await (await conn.execute(_STATS_SQL["total"])).fetchone()
        by_collection = await (await conn.execute(_STATS_SQL["by_collection"])).fetchall()
        by_instrument = await (await conn.execute(_STATS_SQL["by_instrument"])).fetchall()
        by_class = await (await conn.execute(_STATS_SQL["by_class"])).fetchall()
    return {
        "spectra": total[0],
        "with_position": total[1],
        "wave_min_m": total[2],
        "wave_max_m": total[3],
        "collections": [{"collection": c, "spectra": n} for c, n in by_collection],
        "instruments": [
            {"instrument": i, "facility": f, "spectra": n} for i, f, n in by_instrument
        ],
        "classes": [{"class": c, "spectra": n} for c, n in by_class],
    }


def _endpoints(request: Request) -> list[dict[str, str]]:
    """The public endpoints, read from the OpenAPI document so the page lists only what exists;
    those answering POST only (a file to upload) are listed without a link a browser would GET."""
    paths = request.app.openapi().get("paths", {})
    return [
        {
            "path": path,
            "summary": next(iter(ops.values())).get("summary", ""),
            "post_only": "get" not in ops,
        }
        for path, ops in paths.items()
        if "{" not in path
    ]


@router.get("/", response_class=HTMLResponse, summary="This page: what the archive holds")
async def landing_page(request: Request) -> HTMLResponse:
    stats = await archive_stats(request)
    return templates.TemplateResponse(
        request,
        "landing.html",
        {
            "stats": stats,
            "endpoints": _endpoints(request),
            "version": __version__,
            "base_url": str(request.base_url).rstrip("/"),
        },
    )


@router.get("/stats", summary="Counts of spectra by collection, instrument and class (JSON)")
async def stats_json(request: Request) -> JSONResponse:
    return JSONResponse(await archive_stats(request))
