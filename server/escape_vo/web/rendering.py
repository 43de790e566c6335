"""Jinja2 rendering shared by the service's HTML pages (browser, query page, docs notice)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from escape_vo import __version__

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    """The template with what every page shows (version, public base URL) added."""
    settings = request.app.state.settings
    base = {"version": __version__, "base_url": settings.public_url or str(request.base_url)}
    base["base_url"] = base["base_url"].rstrip("/")
    return TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
