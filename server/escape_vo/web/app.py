"""The FastAPI application: one router per standard or concern, a shared connection pool."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from escape_vo import __version__
from escape_vo.adql import Catalog
from escape_vo.coverage import router as coverage_router
from escape_vo.datalink import router as datalink_router
from escape_vo.embeddings import map_web as embeddings_map
from escape_vo.embeddings import web as embeddings_web
from escape_vo.registry import router as registry_router
from escape_vo.schema.model import published_tables
from escape_vo.settings import Settings, get_settings
from escape_vo.soda import async_ as soda_async
from escape_vo.soda import router as soda_router
from escape_vo.spectra import router as spectra_router
from escape_vo.ssa import router as ssa_router
from escape_vo.tap import async_ as tap_async
from escape_vo.tap import examples as tap_examples
from escape_vo.tap import sync as tap_sync
from escape_vo.tap.executor import QueryPool
from escape_vo.tap.limits import LIMITS
from escape_vo.uws.service import uws_service
from escape_vo.vosi import router as vosi_router
from escape_vo.web import landing, pages
from escape_vo.web.errors import install_error_handlers


def create_app(settings: Settings | None = None, db_url: str | None = None) -> FastAPI:
    """Build the app for a database that is already running and migrated."""
    settings = settings or get_settings()
    url = db_url or settings.database_url or os.environ.get("ESCAPE_VO_DB_URL")
    if not url:
        raise RuntimeError("no database: start the app through `escape-vo serve`")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        query_pool = QueryPool(url, size=16, statement_timeout_s=LIMITS.sync_timeout)
        app.state.query_pool = query_pool
        try:
            async with AsyncConnectionPool(url, min_size=1, max_size=10, open=False) as pool:
                await pool.open(wait=True, timeout=30)
                app.state.pool = pool
                async with uws_service(app, url):
                    yield
        finally:
            query_pool.close()

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
    app.state.catalog = Catalog.from_tables(published_tables())
    app.include_router(landing.router)
    app.include_router(tap_sync.router)
    app.include_router(tap_async.router)
    app.include_router(vosi_router.router)
    app.include_router(tap_examples.router)
    app.include_router(spectra_router.router)
    app.include_router(datalink_router.router)
    app.include_router(soda_router.router)
    app.include_router(soda_async.router)
    app.include_router(ssa_router.router)
    app.include_router(pages.router)
    app.include_router(embeddings_web.router)
    app.include_router(embeddings_map.router)
    app.include_router(registry_router.router)
    app.include_router(coverage_router.router)
    install_error_handlers(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (several worker processes)."""
    return create_app()
