"""The latent map in a browser: the points of an embedded archive, a click on one, and a
spectrum file of one's own dropped in, which lands on the map with its neighbours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.browser.conftest import ARTIFACTS, Console
from tests.conftest import LiveServer
from tests.fixtures.embedded import (
    SECOND_OF_SEVERAL,
    SINGLE,
    embedded_archive,
    image_spectrum,
    oddest_ids,
    stored_file,
)


@pytest.fixture(scope="module")
def map_site(pg, tmp_path_factory):
    """(url, settings) of a live server over 80 demo spectra embedded by a small PCA."""
    from escape_vo.web.app import create_app

    work = tmp_path_factory.mktemp("map")
    with embedded_archive(pg, work, 80, ("pca",)) as (settings, _):
        live = LiveServer(create_app(settings), settings.port)
        with live:
            yield live.url, settings


@contextmanager
def _map_page(browser, url: str, shot: str) -> Iterator[tuple]:
    """(page, console) on the latent map; a screenshot at the end; no unexpected console
    error allowed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    console = Console(page)
    try:
        page.goto(url + "/embeddings/map")
        yield page, console
    finally:
        page.screenshot(path=ARTIFACTS / shot)
        context.close()
    assert not console.unexpected(), console.unexpected()


def test_a_spectrum_of_ones_own_lands_on_the_map(browser, map_site, tmp_path) -> None:
    url, settings = map_site
    did, name, _, data = stored_file(settings, SINGLE)
    (tmp_path / name).write_bytes(data)

    with _map_page(browser, url, "latent_map_upload_error.png") as (page, console):
        page.wait_for_function(
            "document.getElementById('status').textContent.includes('80 spectra')"
        )
        page.set_input_files("#upload", str(tmp_path / name))
        page.wait_for_selector("#nbs tr.nb")
        mine = page.inner_text("#mine")
        assert "latent sky" in mine and "anomaly" in mine and "model pca" in mine, mine
        assert "note:" not in mine, mine
        rows = page.locator("#nbs tr.nb")
        assert rows.count() == 10
        assert rows.first.locator("td").first.inner_text() == "0.0000"  # its archived copy
        assert page.evaluate("state.mine !== null && state.nbs.length === 10")
        page.screenshot(path=ARTIFACTS / "latent_map_upload.png")
        # the archived copy's own neighbours come up with a click on it
        rows.first.click()
        page.wait_for_function(f"document.getElementById('side').textContent.includes('{did}')")
        # a file that is no spectrum gets the service's message (and the browser logs the 400)
        console.allowed.append("status of 400")
        (tmp_path / "notes.txt").write_text("not a spectrum")
        page.set_input_files("#upload", str(tmp_path / "notes.txt"))
        page.wait_for_function(
            "document.getElementById('mine')?.textContent.includes('not a spectrum this service')"
        )
        assert page.evaluate("state.mine === null") and not page.locator("#nbs").count()
        # what the reader had to guess is said under the spectrum's line
        (tmp_path / "furlongs.fits").write_bytes(image_spectrum(2000, "furlong"))
        page.set_input_files("#upload", str(tmp_path / "furlongs.fits"))
        page.wait_for_selector("#nbs tr.nb")
        note = page.inner_text("#mine .warn")
        assert "note: wavelength unit 'furlong' not understood" in note, note


def test_the_oddest_spectra_are_listed_and_shown_against_the_rebuild(browser, map_site) -> None:
    url, settings = map_site
    top = oddest_ids(settings, "pca", 15)
    with _map_page(browser, url, "latent_map_oddest.png") as (page, _):
        page.wait_for_selector("#odd tr.nb")
        ids = [int(x) for x in page.locator("#odd tr.nb td:last-child").all_inner_texts()]
        assert ids == top
        with page.expect_response(lambda r: "/embeddings/spectra/" in r.url) as answer:
            page.locator("#odd tr.nb").first.click()
        spectrum = answer.value.json()  # what the plot draws: the spectrum and the rebuild
        assert spectrum["spectrum_id"] == top[0] and spectrum["model"] == "pca"
        assert len(spectrum["model_flux"]) == len(spectrum["flux"])
        page.wait_for_selector("#nbs tr.nb")
        assert page.evaluate("state.data.id[state.sel]") == top[0]
        page.click("#odd-button")
        page.wait_for_selector("#odd tr.nb")
        assert page.evaluate("state.sel") == -1


def test_a_file_of_several_spectra_asks_which_one(browser, map_site, tmp_path) -> None:
    url, settings = map_site
    did, name, index, data = stored_file(settings, SECOND_OF_SEVERAL)
    (tmp_path / name).write_bytes(data)
    with _map_page(browser, url, "latent_map_upload_index.png") as (page, console):
        console.allowed.append("status of 400")
        page.wait_for_selector("#odd tr.nb")
        page.set_input_files("#upload", str(tmp_path / name))
        page.wait_for_selector("#up-index")
        assert "say which with INDEX" in page.inner_text("#mine")
        page.fill("#up-index", str(index))
        page.click("#up-go")
        page.wait_for_selector("#nbs tr.nb")
        first = page.locator("#nbs tr.nb").first
        assert first.locator("td").first.inner_text() == "0.0000"  # its archived copy
        assert page.evaluate("state.mine !== null")
        first.click()
        page.wait_for_function(f"document.getElementById('side').textContent.includes('{did}')")


def test_neighbours_outside_the_maps_sample_are_ringed_and_open(
    browser, map_site, monkeypatch
) -> None:
    """Past MAX_MAP_POINTS the map draws a sample; a neighbour it leaves out is still ringed
    where the model puts it, and its row opens it."""
    from escape_vo.embeddings import map_web

    url, _ = map_site
    monkeypatch.setattr(map_web, "MAX_MAP_POINTS", 30)
    monkeypatch.setattr(map_web, "ODDEST_KEPT", 5)
    with _map_page(browser, url, "latent_map_sample.png") as (page, _):
        page.wait_for_function(  # about 30: the oddest 5 and a third of the rest by hash
            "/\\d+ of 80 spectra/.test(document.getElementById('status').textContent)"
        )
        drawn = set(page.evaluate("state.data.id"))
        assert 10 < len(drawn) < 50
        with page.expect_response(lambda r: "/embeddings/similar" in r.url) as similar:
            page.locator("#odd tr.nb").first.click()
        table = similar.value.json()
        column = [m["name"] for m in table["metadata"]].index("spectrum_id")
        ids = [row[column] for row in table["data"]]
        page.wait_for_selector("#nbs tr.nb")
        assert page.evaluate("state.nbs.length") == len(ids) == 10  # drawn or not, all ringed
        outside = [k for k, sid in enumerate(ids) if sid not in drawn]
        assert outside, "the sample drew every neighbour: nothing to check"
        with page.expect_response(lambda r: "/embeddings/spectra/" in r.url) as answer:
            page.locator("#nbs tr.nb").nth(outside[0]).click()
        assert answer.value.json()["spectrum_id"] == ids[outside[0]]
        page.wait_for_function("document.getElementById('side').textContent.includes('not drawn')")
        assert page.evaluate("state.sel === -1 && state.at !== null")
