"""The schema browser (/browse) on the demo archive, over real HTTP: everything it says comes
from escape_vo.schema.model, counts from the database, and every table and column has a
permanent URL."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from escape_vo.schema.model import published_tables
from escape_vo.tap.examples import all_examples
from escape_vo.web.schema_info import table_info, unit_words
from tests.browser.html_links import parse


@pytest.fixture(scope="module")
def http(live_server) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_index_lists_every_published_table_with_its_row_count(http, demo_archive) -> None:
    _, truth = demo_archive
    page = http.get("/browse")
    assert page.status_code == 200
    _, ids = parse(page.text)
    for table in published_tables():
        assert table.qualified_name in ids
        assert f'href="/browse/{table.qualified_name}"' in page.text
    row = re.search(r'id="archive.spectra">(.*?)</tr>', page.text, re.S).group(1)
    counts = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert counts[0].replace(",", "") == str(len(truth))
    assert "escape.settings" not in page.text  # unpublished tables stay out


@pytest.mark.parametrize("table", published_tables(), ids=lambda t: t.qualified_name)
def test_table_page_shows_every_column_as_declared(http, table) -> None:
    page = http.get(f"/browse/{table.qualified_name}")
    assert page.status_code == 200
    html = page.text
    for col in table.columns:
        row = re.search(rf'<tr id="{re.escape(col.name)}"[^>]*>(.*?)</tr>', html, re.S)
        assert row, f"no row for {col.name}"
        cells = row.group(1)
        assert f'href="/browse/{table.qualified_name}/{col.name}"' in cells
        text = _text(cells)
        for value in (col.unit, col.ucd, col.utype, col.datatype):
            if value:
                assert value in text, (col.name, value)
        assert " ".join(col.description.split()) in " ".join(text.split())
        indexed = 'class="tag idx"' in cells
        assert indexed == table_info(table.qualified_name).indexed(col), col.name
    assert 'id="query-this-table"' in html


def test_spectra_wavelengths_have_units_and_obscore_twins(http) -> None:
    page = http.get("/browse/archive.spectra/wave_min")
    assert page.status_code == 200
    text = _text(page.text)
    assert "em.wl;stat.min" in text
    assert f"m ({unit_words('m')})" in " ".join(text.split())
    assert 'href="/browse/ivoa.obscore/em_min"' in page.text
    assert 'href="/browse/archive.spectra#wave_min"' in page.text
    back = http.get("/browse/ivoa.obscore/em_min")
    assert 'href="/browse/archive.spectra/wave_min"' in back.text  # "computed from"


def test_foreign_keys_are_shown_both_ways(http) -> None:
    html = http.get("/browse/tap_schema.columns").text
    assert 'refers to <a href="/browse/tap_schema.tables">' in html
    html = http.get("/browse/tap_schema.tables").text
    assert '<a href="/browse/tap_schema.columns">tap_schema.columns</a>' in html


def test_permanent_urls_are_case_insensitive_and_unknown_names_suggest(http) -> None:
    r = http.get("/browse/ARCHIVE.Spectra/WAVE_MIN", follow_redirects=False)
    assert r.status_code == 301
    assert r.headers["location"] == "/browse/archive.spectra/wave_min"
    assert http.get("/browse/archive").status_code == 200
    missing = http.get("/browse/archive.spectrum")
    assert missing.status_code == 404
    assert 'href="/browse/archive.spectra"' in missing.text
    assert http.get("/browse/archive.spectra/wave_middle").status_code == 404
    assert http.get("/browse/escape.settings").status_code == 404  # not published


def test_search_finds_names_descriptions_and_ucds(http) -> None:
    html = http.get("/browse/search", params={"q": "wavelength"}).text
    for target in ("archive.spectra/wave_min", "archive.spectra/wave_max", "ivoa.obscore/em_min"):
        assert f'href="/browse/{target}"' in html
    assert "<mark>wavelength</mark>" in html.lower()
    html = http.get("/browse/search", params={"q": "em.wl stat.min"}).text
    hits = re.findall(r'<li><span class="what">(\w+)</span><a href="([^"]+)"', html)
    found = {h[1] for h in hits}
    assert {"/browse/archive.spectra/wave_min", "/browse/ivoa.obscore/em_min"} <= found
    assert "/browse/archive.spectra/wave_max" not in found  # every word must match
    html = http.get("/browse/search", params={"q": "wave_min"}).text
    first = re.search(r'<li><span class="what">\w+</span><a href="([^"]+)"', html).group(1)
    assert first == "/browse/archive.spectra/wave_min"  # exact name first
    assert "0 matches" in http.get("/browse/search", params={"q": "zzqqxx"}).text


def test_query_links_prefill_the_query_page(http) -> None:
    html = http.get("/browse/archive.spectra").text
    link = unescape(re.search(r'id="query-this-table" href="([^"]+)"', html).group(1))
    query = parse_qs(urlparse(link).query)["query"][0]
    assert "FROM archive.spectra" in query
    page = http.get(link)
    assert page.status_code == 200
    assert '"initial": ' + __import__("json").dumps(query).replace("</", "<\\/") in page.text
    examples = [ex for t, ex in all_examples() if t == "archive.spectra"]
    assert examples
    assert html.count('class="run-example"') == len(examples)  # (test_tap_sync runs them)
