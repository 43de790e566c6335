"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against the live demo
service with its documentation built. Never downloads a browser: without /usr/bin/chromium or
the playwright package the browser tests skip, saying which is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from escape_vo.web.chromium import ARGS as BROWSER_ARGS
from escape_vo.web.chromium import CHROMIUM, OFFLINE
from escape_vo.web.docs_site import build_docs, docs_output

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ARGS = BROWSER_ARGS + OFFLINE


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """Package-scoped: Playwright's sync API keeps an asyncio loop running in the main thread
    while it is open, which would break later tests that call asyncio.run()."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def site(live_server, demo_archive) -> str:
    """The live server's URL, with the documentation built where it serves it from."""
    settings, _ = demo_archive
    result = build_docs(docs_output(settings))
    assert result.ok, result.log[-3000:]
    return live_server.url


class Console:
    """Console errors and uncaught exceptions of a page; `expect` lets a test allow some."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def page(browser, site, request):
    """A fresh page (own context, downloads allowed); a screenshot is saved after the test."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.console = Console(pg)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=ARTIFACTS / f"{request.node.name}.png")
    errors = pg.console.unexpected()
    context.close()
    assert not errors, f"console errors: {errors}"
