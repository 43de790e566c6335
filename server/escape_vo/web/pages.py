"""The pages for people: schema browser, query page, documentation and their static files.

One router so the app wires them with a single include_router line.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from escape_vo.web import browse, docs_site, query_page

STATIC_DIR = Path(__file__).parent / "static"
_static = StaticFiles(directory=STATIC_DIR)

router = APIRouter()
router.include_router(browse.router)
router.include_router(query_page.router)
router.include_router(docs_site.router)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """Browsers ask every site for one; an SVG serves them all."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


@router.get("/static/{path:path}", include_in_schema=False)
async def static(request: Request, path: str) -> Response:
    """CSS, the page scripts and the vendored CodeMirror bundle (with ETag/304 from Starlette)."""
    response = await _static.get_response(path, request.scope)
    response.headers.setdefault("Cache-Control", "public, max-age=3600")
    return response
