"""SSA 1.1 over real HTTP: pyvo searches checked against the demo truth, parameters, errors."""

from __future__ import annotations

import hashlib
import io
import math
import shutil
import subprocess
from pathlib import Path

import astropy.units as u
import httpx
import psycopg
import pytest
import pyvo
from astropy.io import votable
from lxml import etree

from tests.data.xsd.validate import assert_valid


@pytest.fixture(scope="module")
def spectra(demo_archive) -> list[dict]:
    """Every ingested spectrum with its truth entry (matched on file name and index)."""
    settings, truth = demo_archive
    by_key = {(Path(t.path).name, t.file_index): t for t in truth}
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT publisher_did, original_name, file_index, ra, dec, wave_min, wave_max, "
            "file_sha256, spectrum_id, file_format FROM archive.spectra"
        ).fetchall()
    out = []
    for did, name, index, ra, dec, wmin, wmax, sha, sid, fmt in rows:
        out.append(
            {
                "did": did, "truth": by_key[(name, index)], "ra": ra, "dec": dec,
                "wave_min": wmin, "wave_max": wmax, "sha256": sha, "id": sid, "format": fmt,
            }
        )  # fmt: skip
    assert len(out) == len(truth)
    return out


@pytest.fixture(scope="module")
def ssa(live_server) -> pyvo.dal.SSAService:
    return pyvo.dal.SSAService(f"{live_server.url}/ssa")


def _sep(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _dids(result) -> set[str]:
    return {str(r["publisher_did"]) for r in result}


def test_cone_band_time_search_matches_the_truth(ssa, spectra) -> None:
    centre = next(s for s in spectra if s["truth"].ra is not None and s["format"] == "sdss")
    t = centre["truth"]
    diameter = 3.0
    band = (
        t.wave_min + 0.3 * (t.wave_max - t.wave_min),
        t.wave_min + 0.4 * (t.wave_max - t.wave_min),
    )
    result = ssa.search(
        pos=(t.ra, t.dec), diameter=diameter, band=band,
        time=("1980-01-01T00:00:00", "2040-01-01T00:00:00"),
    )  # fmt: skip
    expected = {
        s["did"]
        for s in spectra
        if s["truth"].ra is not None
        and _sep(s["truth"].ra, s["truth"].dec, t.ra, t.dec) <= diameter / 2 - 1e-6
        and s["truth"].wave_max >= band[0]
        and s["truth"].wave_min <= band[1]
    }
    assert centre["did"] in expected
    assert _dids(result) >= expected
    # nothing far outside the cone or the band (tolerance: positions/wavelengths as stored)
    for row in result:
        s = next(x for x in spectra if x["did"] == str(row["publisher_did"]))
        assert _sep(s["ra"], s["dec"], t.ra, t.dec) <= diameter / 2 + 1e-9
        assert s["wave_max"] >= band[0] and s["wave_min"] <= band[1]
    scores = [float(r["score"]) for r in result]
    assert scores == sorted(scores, reverse=True)
    assert str(result[0]["publisher_did"]) == centre["did"]


def test_every_format_is_found_at_its_true_position_and_coverage(ssa, spectra) -> None:
    picked = {}
    for s in spectra:
        key = (s["format"], s["truth"].file_index > 0)
        if s["truth"].ra is not None and key not in picked:
            picked[key] = s
    assert {k[0] for k in picked} == {"eso-phase3", "sdss", "image1d", "bintable"}
    assert ("image1d", True) in picked  # a fibre of a 2dF frame, file_index > 0
    for s in picked.values():
        t = s["truth"]
        mid = (t.wave_min + t.wave_max) / 2
        result = ssa.search(pos=(t.ra, t.dec), diameter=2 / 3600, band=(mid, mid))
        assert s["did"] in _dids(result), (t.path, t.file_index)
        outside = t.wave_max * 1.05
        assert s["did"] not in _dids(ssa.search(pos=(t.ra, t.dec), diameter=2 / 3600,
                                                 band=(outside, outside * 1.1)))  # fmt: skip


def test_getdataurl_downloads_the_original_bytes(ssa, spectra, demo_archive) -> None:
    s = next(x for x in spectra if x["truth"].ra is not None)
    result = ssa.search(pos=(s["ra"], s["dec"]), diameter=1 / 3600)
    row = next(r for r in result if str(r["publisher_did"]) == s["did"])
    data = httpx.get(row.getdataurl(), timeout=30).content
    assert hashlib.sha256(data).hexdigest() == s["sha256"]
    assert row.format == "application/fits"


def _get(live_server, **params) -> httpx.Response:
    return httpx.get(f"{live_server.url}/ssa", params=params, timeout=60)


def _status(resp: httpx.Response) -> tuple[str, str]:
    vot = votable.parse(io.BytesIO(resp.content))
    info = next(i for i in vot.resources[0].infos if i.name == "QUERY_STATUS")
    return info.value, info.content or ""


def test_range_lists_open_ranges_and_lowercase_names(live_server, spectra) -> None:
    resp = _get(live_server, request="queryData", band="/3.5e-7", maxrec=500)
    table = votable.parse_single_table(io.BytesIO(resp.content)).to_table()
    assert len(table) == sum(1 for s in spectra if s["wave_min"] <= 3.5e-7)
    resp = _get(live_server, REQUEST="queryData", BAND="4e-7/4.1e-7;9e-7", MAXREC=500)
    table = votable.parse_single_table(io.BytesIO(resp.content)).to_table()
    expected = sum(
        1 for s in spectra
        if (s["wave_max"] >= 4e-7 and s["wave_min"] <= 4.1e-7)
        or s["wave_min"] <= 9e-7 <= s["wave_max"]
    )  # fmt: skip
    assert len(table) == expected


def test_formats_give_one_row_per_spectrum_and_format(live_server, spectra) -> None:
    s = next(x for x in spectra if x["truth"].ra is not None)
    resp = _get(live_server, REQUEST="queryData", PUBDID=s["did"], FORMAT="votable,graphic,native")
    table = votable.parse_single_table(io.BytesIO(resp.content)).to_table()
    assert list(table["access_format"]) == [
        "application/x-votable+xml",
        "image/png",
        "application/fits",
    ]
    png = httpx.get(str(table["access_reference"][1]), timeout=60)
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    vot = httpx.get(str(table["access_reference"][0]), timeout=60)
    spectrum = votable.parse_single_table(io.BytesIO(vot.content)).to_table()
    assert spectrum["WAVE"].unit == u.m and len(spectrum) > 10


def test_metadata_describes_parameters_and_fields(live_server) -> None:
    resp = _get(live_server, REQUEST="queryData", FORMAT="METADATA")
    vot = votable.parse(io.BytesIO(resp.content))
    names = {p.name for p in vot.resources[0].params}
    assert {"INPUT:POS", "INPUT:SIZE", "INPUT:BAND", "INPUT:TIME", "INPUT:FORMAT"} <= names
    utypes = {f.utype for f in vot.get_first_table().fields}
    assert {"ssa:Query.Score", "ssa:Access.Reference", "ssa:Access.Format", "ssa:DataID.Title",
            "ssa:Char.SpatialAxis.Coverage.Location.Value"} <= utypes  # fmt: skip


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"POS": "10,100"}, "outside"),
        ({"POS": "abc"}, "ra,dec"),
        ({"POS": "10,20;GALACTIC"}, "ICRS"),
        ({"BAND": "5e-7/4e-7"}, "lower limit"),
        ({"TIME": "yesterday"}, "ISO 8601"),
        ({"FORMAT": "jpeg"}, "not offered"),
        ({"SIZE": "0.1"}, "without POS"),
        ({"REQUEST": "getData"}, "queryData"),
    ],
)
def test_errors_are_votables_that_say_what_is_valid(live_server, params, fragment) -> None:
    resp = _get(live_server, **{"REQUEST": "queryData", **params})
    status, message = _status(resp)
    assert status == "ERROR"
    assert fragment in message


def test_maxrec_overflow_and_post(live_server) -> None:
    resp = httpx.post(f"{live_server.url}/ssa", data={"REQUEST": "queryData", "MAXREC": "3"})
    vot = votable.parse(io.BytesIO(resp.content))
    assert len(vot.get_first_table().array) == 3
    assert [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"][-1] == "OVERFLOW"


def test_capabilities_and_availability(live_server) -> None:
    caps = httpx.get(f"{live_server.url}/ssa/capabilities").text
    assert 'standardID="ivo://ivoa.net/std/SSA"' in caps
    for element in ("maxSearchRadius", "maxRecords", "defaultMaxRecords", "dataSource",
                    "creationType", "supportedFrame"):  # fmt: skip
        assert f"<{element}>" in caps
    root = etree.fromstring(caps.encode())
    assert_valid(root)  # VOSICapabilities with the SSA and VODataService schemas
    (interface,) = root.xpath("capability[@standardID='ivo://ivoa.net/std/SSA']/interface")
    assert [q.text for q in interface.findall("queryType")] == ["GET", "POST"]
    assert interface.findtext("resultType") == "application/x-votable+xml"
    avail = httpx.get(f"{live_server.url}/ssa/availability").text
    assert "<available>true</available>" in avail


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS is not installed")
def test_votlint_is_clean_on_ssa_responses(live_server, tmp_path) -> None:
    for i, params in enumerate(
        [{"POS": "10,-30", "SIZE": "180", "MAXREC": "20"}, {"FORMAT": "METADATA"}]
    ):
        path = tmp_path / f"ssa{i}.xml"
        path.write_bytes(_get(live_server, REQUEST="queryData", **params).content)
        run = subprocess.run(
            ["stilts", "votlint", f"votable={path}"], capture_output=True, text=True, timeout=120
        )
        assert run.stdout.strip() == "" and run.returncode == 0, run.stdout + run.stderr
