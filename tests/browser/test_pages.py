"""A newcomer in a browser: landing page, schema browser, query page (type, run, page,
download, an error marked in place, completion, async, preview), the documentation."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from astropy.io.votable import parse_single_table

from tests.browser.conftest import ARTIFACTS


def test_landing_to_the_wavelength_columns(page, site) -> None:
    page.goto(site + "/")
    page.click("#site-nav >> text=Browse the tables")
    page.click("a[href='/browse/archive.spectra']")
    assert page.url.endswith("/browse/archive.spectra")
    row = page.locator("tr#wave_min")
    assert row.locator("td.unit").inner_text().strip() == "m"
    assert "em.wl;stat.min" in row.inner_text()
    page.fill("header input[type=search]", "wavelength")
    page.press("header input[type=search]", "Enter")
    page.click("a[href='/browse/archive.spectra/wave_max']")
    assert "Longest wavelength" in page.inner_text("main")
    page.click("text=Query this column")
    page.wait_for_selector("#editor .cm-content")
    assert "wave_max" in page.evaluate("window.adqlEditor.state.doc.toString()")


def _set_query(page, text: str) -> None:
    page.click("#editor .cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def test_query_type_run_page_and_download(page, site) -> None:
    page.goto(site + "/query")
    page.wait_for_selector("#editor .cm-content")
    _set_query(
        page, "SELECT TOP 120 publisher_did, target_name, wave_min, wave_max FROM archive.spectra"
    )
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#result tbody tr")
    assert page.locator("#result tbody tr").count() == 50
    headers = page.locator("#result thead th").all_inner_texts()
    assert any(h.startswith("wave_min") and h.rstrip().endswith("m") for h in headers), headers
    assert "rows 1–50 of 120" in page.inner_text("#page-info")
    page.click("#next")
    assert "rows 51–100 of 120" in page.inner_text("#page-info")
    page.click("#prev")
    assert "rows 1–50" in page.inner_text("#page-info")

    with page.expect_download() as dl:
        page.click("#downloads a[data-format='votable']")
    table = parse_single_table(io.BytesIO(dl.value.path().read_bytes()))
    assert len(table.array) == 120
    assert str(table.get_field_by_id_or_name("wave_min").unit) == "m"
    with page.expect_download() as dl:
        page.click("#downloads a[data-format='csv']")
    rows = list(csv.reader(io.StringIO(dl.value.path().read_text())))
    assert rows[0] == ["publisher_did", "target_name", "wave_min", "wave_max"]
    assert len(rows) == 121
    dl.value.save_as(ARTIFACTS / "result.csv")


def test_an_error_is_marked_where_the_parser_found_it(page, site) -> None:
    page.console.allowed.append("status of 400")  # the browser logs the refused request
    page.goto(site + "/query")
    page.wait_for_selector("#editor .cm-content")
    _set_query(page, "SELECT TOP 5 target_name, wave_mn\nFROM archive.spectra")
    page.click("#run")
    page.wait_for_selector("#error-box.shown")
    message = page.inner_text("#error-text")
    assert "wave_mn" in message and "line 1, column 27" in message
    marked = page.locator(".cm-lintRange-error")
    assert marked.count() == 1 and marked.inner_text() == "wave_mn"
    # the example list puts a working query back
    page.click("#examples button.example >> nth=0")
    assert not page.is_visible("#error-box")


def test_completion_offers_columns_with_units(page, site) -> None:
    page.goto(site + "/query")
    page.wait_for_selector("#editor .cm-content")
    page.wait_for_selector("#editor[data-schema=loaded]")  # names read from /tap/tables
    page.evaluate(
        """() => { const v = window.adqlEditor; v.dispatch({changes: {from: 0,
        to: v.state.doc.length, insert: "SELECT wave_m FROM archive.spectra"},
        selection: {anchor: 13}}); v.focus(); }"""
    )
    page.keyboard.press("Control+Space")
    page.wait_for_selector(".cm-tooltip-autocomplete li")
    options = page.locator(".cm-tooltip-autocomplete li").all_inner_texts()
    assert any(o.startswith("wave_min") and "[m]" in o for o in options), options


def _answers(site: str, path: str) -> bool:
    return httpx.get(site + path, timeout=10).status_code != 404


def test_async_mode_runs_a_uws_job(page, site) -> None:
    if not _answers(site, "/tap/async"):
        pytest.skip("/tap/async answers 404: asynchronous TAP is not in this build yet")
    page.goto(site + "/query")
    page.wait_for_selector("#editor .cm-content")
    _set_query(page, "SELECT TOP 7 publisher_did, snr FROM archive.spectra ORDER BY snr DESC")
    page.select_option("#mode", "async")
    page.click("#run")
    page.wait_for_selector("#result tbody tr", timeout=60_000)
    assert page.locator("#result tbody tr").count() == 7
    assert "job /tap/async/" in page.inner_text("#status")


def test_preview_through_datalink_or_a_clear_message(page, site) -> None:
    page.goto(site + "/query")
    page.wait_for_selector("#editor .cm-content")
    _set_query(page, "SELECT TOP 3 obs_publisher_did, em_min, em_max FROM ivoa.obscore")
    page.click("#run")
    page.click("#result button.preview-button >> nth=0")
    if _answers(site, "/datalink/links"):
        page.wait_for_selector("#preview-body img")
        page.wait_for_function("document.querySelector('#preview-body img').naturalWidth > 0")
    else:
        page.wait_for_selector("#preview-body >> text=no DataLink endpoint")


def test_docs_pages_load(page, site) -> None:
    page.goto(site + "/")
    page.click("#site-nav >> text=Documentation")
    assert "escape-vo" in page.title()
    page.click(".sidebar-tree a.reference.internal >> text=The ADQL dialect")
    assert page.locator("h1").first.inner_text().startswith("The ADQL dialect")
    assert page.locator("table").count() > 5  # the generated function and gap tables
    page.goto(site + "/docs/user/web.html")
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
