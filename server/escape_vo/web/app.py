"""The FastAPI application: one router per standard or concern, a shared connection pool."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from escape_vo import __version__
from escape_vo.settings import Settings, get_settings
from escape_vo.web import landing


def create_app(settings: Settings | None = None, db_url: str | None = None) -> FastAPI:
    """Build the app for a database that is already running and migrated."""
    settings = settings or get_settings()
    url = db_url or settings.database_url or os.environ.get("ESCAPE_VO_DB_URL")
    if not url:
        raise RuntimeError("no database: start the app through `escape-vo serve`")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncConnectionPool(url, min_size=1, max_size=10, open=False) as pool:
            await pool.open(wait=True, timeout=30)
            app.state.pool = pool
            yield

    app = FastAPI(
        title="escape-vo",
        version=__version__,
        description="A Virtual Observatory archive of spectra and their embeddings.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.include_router(landing.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (several worker processes)."""
    return create_app()
