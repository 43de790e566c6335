"""The landing page, through the ASGI app on a real database."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from escape_vo.demo.generate import generate_demo
from escape_vo.ingest.pipeline import ingest
from escape_vo.settings import Settings
from escape_vo.web.app import create_app


@pytest.fixture
def loaded(settings: Settings, tmp_path: Path) -> Settings:
    generate_demo(tmp_path / "demo", n_spectra=30, seed=3, workers=1)
    report = ingest(
        [tmp_path / "demo"],
        db_url=settings.database_url,
        store_url=settings.files_url,
        authority=settings.ivo_authority,
        collection="demo",
        workers=1,
    )
    assert report.ok, report.summary()
    return settings


def test_landing_page_shows_counts(loaded: Settings) -> None:
    with TestClient(create_app(loaded)) as client:
        stats = client.get("/stats").json()
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert stats["spectra"] >= 30
    assert stats["collections"] == [{"collection": "demo", "spectra": stats["spectra"]}]
    assert sum(i["spectra"] for i in stats["instruments"]) == stats["spectra"]
    html = page.text
    assert f'id="total-spectra">{stats["spectra"]}<' in html
    for inst in stats["instruments"]:
        assert escape(inst["instrument"]) in html
    assert "/stats" in html  # endpoints are listed from the routes
    # an endpoint answering POST only is named, not linked (a browser would GET it)
    assert "POST " in html and "/embeddings/embed</code>" in html
    assert 'href="/embeddings/embed"' not in html


def test_empty_archive_says_how_to_load(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "escape-vo ingest" in page.text
