"""DataLink 1.1 over real HTTP: links per ID, errors, previews, pyvo, the provider registry."""

from __future__ import annotations

import hashlib
import io

import httpx
import psycopg
import pytest
from astropy.io import votable
from pyvo.dal.adhoc import DatalinkResults

from escape_vo.datalink import Link, register, registered_providers


@pytest.fixture(scope="module")
def dids(demo_archive) -> list[tuple[str, str, int]]:
    settings, _ = demo_archive
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(
            "SELECT publisher_did, file_sha256, spectrum_id FROM archive.spectra "
            "ORDER BY spectrum_id LIMIT 3"
        ).fetchall()


def _links(live_server, ids: list[str], method: str = "GET"):
    url = f"{live_server.url}/datalink/links"
    if method == "GET":
        resp = httpx.get(url, params=[("ID", i) for i in ids], timeout=60)
    else:
        resp = httpx.post(url, data={"ID": ids}, timeout=60)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-votable+xml;content=datalink"
    return DatalinkResults(votable.parse(io.BytesIO(resp.content)))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_links_of_several_ids_in_order(live_server, dids, method) -> None:
    ids = [d for d, _, _ in dids] + ["ivo://elsewhere/unknown"]
    links = _links(live_server, ids, method)
    table = links.to_table()
    seen = list(dict.fromkeys(str(i) for i in table["ID"]))
    assert seen == ids
    for did, _, _ in dids:
        semantics = {str(r["semantics"]) for r in table if str(r["ID"]) == did}
        assert {"#this", "#preview", "#cutout", "#auxiliary"} <= semantics
    error = [r for r in table if str(r["ID"]) == ids[-1]]
    assert len(error) == 1 and str(error[0]["error_message"]).startswith("NotFoundFault: ")


def test_this_and_preview_through_pyvo(live_server, dids, tmp_path) -> None:
    did, sha, _ = dids[0]
    links = _links(live_server, [did])
    this = next(links.bysemantics("#this", include_narrower=False))
    assert hashlib.sha256(httpx.get(this.access_url).content).hexdigest() == sha
    preview = next(links.bysemantics("#preview", include_narrower=False))
    first = httpx.get(preview.access_url, timeout=60)
    assert first.headers["content-type"] == "image/png"
    assert first.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert httpx.get(preview.access_url).content == first.content  # served from the cache
    again = next(_links(live_server, [did]).bysemantics("#preview", include_narrower=False))
    assert again.content_length == len(first.content)
    header = next(links.bysemantics("#auxiliary", include_narrower=False))
    assert "SIMPLE  =" in httpx.get(header.access_url).text


def test_cutout_descriptor_declares_the_band_of_the_spectrum(live_server, dids, demo_archive):
    did, _, _ = dids[0]
    links = _links(live_server, [did])
    proc = links.get_first_proc()
    service = links.get_adhocservice_by_id(proc.service_def)
    band = next(p for p in service.groups[0].entries if p.name == "BAND")
    settings, _ = demo_archive
    with psycopg.connect(settings.database_url) as conn:
        lo, hi = conn.execute(
            "SELECT wave_min, wave_max FROM archive.spectra WHERE publisher_did = %s", (did,)
        ).fetchone()
    assert float(band.values.min) == lo and float(band.values.max) == hi


def test_bad_responseformat_is_a_usage_fault(live_server, dids) -> None:
    resp = httpx.get(
        f"{live_server.url}/datalink/links", params={"ID": dids[0][0], "RESPONSEFORMAT": "csv"}
    )
    vot = votable.parse(io.BytesIO(resp.content))
    status = next(i for i in vot.resources[0].infos if i.name == "QUERY_STATUS")
    assert status.value == "ERROR" and status.content.startswith("UsageFault")


def test_no_id_gives_an_empty_table_and_vosi(live_server) -> None:
    vot = votable.parse(io.BytesIO(httpx.get(f"{live_server.url}/datalink/links").content))
    assert len(vot.get_first_table().array) == 0
    caps = httpx.get(f"{live_server.url}/datalink/capabilities").text
    assert "ivo://ivoa.net/std/DataLink#links-1.1" in caps
    assert httpx.get(f"{live_server.url}/datalink/availability").status_code == 200


def test_a_registered_provider_adds_its_links(live_server, dids) -> None:
    def similar(ctx, spectrum):
        yield Link("#counterpart", access_url=f"{ctx.base_url}/x/{spectrum.spectrum_id}",
                   description="test provider")  # fmt: skip

    def broken(ctx, spectrum):
        raise RuntimeError("boom")

    before = registered_providers()
    register(similar)
    register(broken)
    try:
        table = _links(live_server, [dids[0][0]]).to_table()
    finally:
        import escape_vo.datalink.registry as registry

        registry._PROVIDERS[:] = list(before)
    assert "#counterpart" in {str(s) for s in table["semantics"]}
    errors = [str(e) for e in table["error_message"] if str(e)]
    assert any(e.startswith("TransientFault: broken failed") for e in errors)
