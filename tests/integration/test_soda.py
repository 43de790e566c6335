"""SODA 1.0 sync cutouts over real HTTP, checked pixel by pixel against the full spectrum."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import astropy.units as u
import httpx
import numpy as np
import psycopg
import pytest
import pyvo
from astropy.io import fits, votable
from astropy.table import Table
from pyvo.dal.adhoc import DatalinkResults, SodaQuery


@pytest.fixture(scope="module")
def samples(demo_archive) -> list[tuple[str, int, str]]:
    """One spectrum per file format, and one from inside a multi-spectrum file."""
    settings, _ = demo_archive
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT publisher_did, spectrum_id, file_format, file_index, calib_level "
            "FROM archive.spectra ORDER BY spectrum_id"
        ).fetchall()
    picked: dict[tuple[str, bool], tuple] = {}
    for did, sid, fmt, index, calib in rows:
        picked.setdefault((fmt, index > 0), (did, sid, fmt, calib))
    return list(picked.values())


def _full(live_server, sid: int) -> Table:
    resp = httpx.get(f"{live_server.url}/spectra/{sid}", params={"FORMAT": "votable"}, timeout=60)
    return votable.parse_single_table(io.BytesIO(resp.content)).to_table()


def _sync(live_server, **params) -> httpx.Response:
    return httpx.get(f"{live_server.url}/soda/sync", params=params, timeout=60)


def test_cutout_keeps_exactly_the_pixels_inside_the_band(live_server, samples) -> None:
    for did, sid, _fmt, _ in samples:
        wave = np.asarray(_full(live_server, sid)["WAVE"], dtype=float).tolist()
        lo, hi = sorted(wave)[len(wave) // 4], sorted(wave)[3 * len(wave) // 4]  # pixel centres
        resp = _sync(live_server, ID=did, BAND=f"{lo!r} {hi!r}")
        assert resp.status_code == 200, resp.text
        cut = votable.parse_single_table(io.BytesIO(resp.content)).to_table()
        assert lo <= cut["WAVE"].min() and cut["WAVE"].max() <= hi
        inside = sum(1 for w in wave if lo <= w <= hi)
        assert len(cut) == inside  # no pixel lost, the edge pixels included
        assert cut["WAVE"].min() == lo and cut["WAVE"].max() == hi
        assert {"WAVE", "FLUX", "ERR", "QUAL"} <= set(cut.colnames)


def test_pyvo_soda_query_from_the_datalink_descriptor(live_server, samples) -> None:
    did = samples[0][0]
    resp = httpx.get(f"{live_server.url}/datalink/links", params={"ID": did})
    links = DatalinkResults(votable.parse(io.BytesIO(resp.content)))
    proc = links.get_first_proc()
    band = (5.0e-7, 5.5e-7) * u.m
    query = SodaQuery.from_resource(proc, links.get_adhocservice_by_id(proc.service_def), band=band)
    cut = votable.parse_single_table(io.BytesIO(query.execute_stream().read())).to_table()
    assert cut["WAVE"].min() >= 5.0e-7 and cut["WAVE"].max() <= 5.5e-7


def test_ssa_records_process_through_the_soda_descriptor(live_server, samples) -> None:
    result = pyvo.dal.SSAService(f"{live_server.url}/ssa").search(band=(5.2e-7, 5.2e-7), maxrec=2)
    out = result[0].processed(band=(5.1e-7, 5.3e-7) * u.m).read()
    cut = votable.parse_single_table(io.BytesIO(out)).to_table()
    assert cut["WAVE"].min() >= 5.1e-7 and cut["WAVE"].max() <= 5.3e-7


def test_formats_relative_flux_and_provenance(live_server, samples) -> None:
    did, sid, _fmt, _calib = next(s for s in samples if s[3] >= 2)
    wave = np.asarray(_full(live_server, sid)["WAVE"], dtype=float).tolist()
    band = f"{wave[10]!r} {wave[200]!r}"
    fits_resp = _sync(live_server, ID=did, BAND=band, RESPONSEFORMAT="application/fits")
    assert fits_resp.headers["content-type"] == "application/fits"
    with fits.open(io.BytesIO(fits_resp.content)) as hdul:
        history = " ".join(hdul["SPECTRUM"].header["HISTORY"])
        assert "SODA cutout" in history and did[:30] in history
        assert len(hdul["SPECTRUM"].data) == 191
    csv = _sync(live_server, ID=did, BAND=band, RESPONSEFORMAT="csv", FLUXCALIB="relative")
    table = Table.read(io.BytesIO(csv.content), format="ascii.csv")
    good = table[table["quality"] == 0]
    assert abs(np.median(good[table.colnames[1]]) - 1) < 1e-9
    absolute = _sync(live_server, ID=did, BAND=band, FLUXCALIB="ABSOLUTE")
    assert absolute.status_code == 200


def test_band_without_pixels_is_204_without_body(live_server, samples) -> None:
    resp = _sync(live_server, ID=samples[0][0], BAND="1e-3 2e-3")
    assert resp.status_code == 204 and resp.content == b""


@pytest.mark.parametrize(
    ("params", "label", "fragment"),
    [
        ({}, "UsageError", "missing parameter ID"),
        ({"BAND": "5e-7 4e-7"}, "UsageError", "lower limit"),
        ({"BAND": "red"}, "UsageError", "not a number"),
        ({"BAND": ["4e-7 5e-7", "6e-7 7e-7"]}, "MultiValuedParamNotSupported", "one request"),
        ({"FLUXCALIB": "magic"}, "UsageError", "RELATIVE"),
        ({"RESPONSEFORMAT": "image/png"}, "UsageError", "votable"),
        ({"POS": "CIRCLE 1 2 3"}, "UsageError", "spatial axis"),
    ],
)
def test_errors_start_with_the_soda_label(live_server, samples, params, label, fragment) -> None:
    query = {"ID": samples[0][0], **params} if params else {}
    resp = httpx.get(f"{live_server.url}/soda/sync", params=query)
    assert resp.status_code >= 400
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text.startswith(f"{label}: ") and fragment in resp.text


def test_unknown_id_and_capabilities(live_server) -> None:
    resp = _sync(live_server, ID="ivo://nowhere/x", BAND="4e-7 5e-7")
    assert resp.status_code == 404 and resp.text.startswith("UsageError: ")
    caps = httpx.get(f"{live_server.url}/soda/capabilities").text
    assert "ivo://ivoa.net/std/SODA#sync-1.0" in caps


def _async_job(live_server, params: list[tuple[str, str]]) -> ET.Element:
    """Create a SODA job with PHASE=RUN, wait for it, return its UWS job document."""
    resp = httpx.post(
        f"{live_server.url}/soda/async",
        content=urlencode([*params, ("PHASE", "RUN")]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
        timeout=60,
    )
    assert resp.status_code == 303, resp.text
    job_url = resp.headers["location"]
    if job_url.startswith("/"):
        job_url = live_server.url + job_url
    for _ in range(60):
        doc = ET.fromstring(httpx.get(job_url, params={"WAIT": "10"}, timeout=60).content)
        phase = doc.find(f"{UWS}phase").text
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return doc
    raise AssertionError(f"job {job_url} did not finish")


UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def test_async_cuts_every_id_in_every_band(live_server, samples) -> None:
    (did_a, sid_a, _, _), (did_b, _, _, _) = samples[0], samples[1]
    wave = sorted(np.asarray(_full(live_server, sid_a)["WAVE"], dtype=float).tolist())
    lo, hi = wave[len(wave) // 4], wave[len(wave) // 2]
    doc = _async_job(
        live_server,
        [("ID", did_a), ("ID", did_b), ("BAND", f"{lo!r} {hi!r}"), ("BAND", "1e-9 2e-9"),
         ("RESPONSEFORMAT", "application/x-votable+xml")],
    )  # fmt: skip
    assert doc.find(f"{UWS}phase").text == "COMPLETED"
    results = doc.find(f"{UWS}results").findall(f"{UWS}result")
    assert len(results) == 4  # every (ID, BAND) pair is one result
    hrefs = [r.get("{http://www.w3.org/1999/xlink}href") for r in results]
    first = httpx.get(hrefs[0], timeout=60)
    cut = votable.parse_single_table(io.BytesIO(first.content)).to_table()
    assert lo <= cut["WAVE"].min() and cut["WAVE"].max() <= hi
    assert len(cut) == sum(1 for w in wave if lo <= w <= hi)
    empty = httpx.get(hrefs[1], timeout=60)  # the band in the far UV holds no pixel
    assert empty.headers["content-type"].startswith("text/plain")
    assert empty.text.startswith("UsageError") and "covers" in empty.text


def test_async_errors_are_soda_documents(live_server) -> None:
    doc = _async_job(live_server, [("ID", "ivo://nowhere/x"), ("BAND", "4e-7 5e-7")])
    assert doc.find(f"{UWS}phase").text == "ERROR"
    err_url = doc.find(f"{UWS}errorSummary")
    assert err_url is not None
