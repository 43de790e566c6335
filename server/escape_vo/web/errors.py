"""Errors as documents people can act on: never a traceback, never a bare 500 page.

Under /tap the error is a DALI error VOTable; elsewhere a short text/plain message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


def _error(request: Request, message: str, status: int) -> Response:
    if request.url.path.startswith("/tap"):
        from escape_vo.votable import error_votable

        return Response(
            error_votable(message), status_code=status, media_type="application/x-votable+xml"
        )
    return PlainTextResponse(message + "\n", status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such resource: {request.url.path} (the landing page / lists them)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return _error(request, message, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return _error(request, f"invalid request: {problems}", 400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return _error(
            request,
            f"internal error ({type(exc).__name__}); the operators have the details in the log",
            500,
        )
