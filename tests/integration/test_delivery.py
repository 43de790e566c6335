"""Delivery of spectra over HTTP: original bytes with checksums, ranges, and conversions."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import astropy.units as u
import httpx
import psycopg
import pytest
from astropy.io import fits, votable
from astropy.table import Table


@pytest.fixture(scope="module")
def rows(demo_archive) -> list[tuple]:
    settings, _ = demo_archive
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(
            "SELECT spectrum_id, file_sha256, file_size, n_pix, flux_unit, original_name, "
            "file_index FROM archive.spectra ORDER BY spectrum_id"
        ).fetchall()


def test_original_file_with_length_etag_and_digest(live_server, rows) -> None:
    for sid, sha, size, *_ in rows[:5]:
        resp = httpx.get(f"{live_server.url}/spectra/{sid}/file", timeout=30)
        assert resp.status_code == 200
        assert hashlib.sha256(resp.content).hexdigest() == sha
        assert int(resp.headers["content-length"]) == size
        assert resp.headers["etag"] == f'"{sha}"'
        digest = base64.b64encode(bytes.fromhex(sha)).decode()
        assert resp.headers["digest"] == f"sha-256={digest}"


def test_range_and_conditional_requests(live_server, rows) -> None:
    sid, sha, size, *_ = rows[0]
    url = f"{live_server.url}/spectra/{sid}/file"
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert httpx.get(url, headers={"If-None-Match": f'"{sha}"'}).status_code == 304
    assert httpx.head(url).headers["content-length"] == str(size)
    assert httpx.get(url).headers["accept-ranges"] == "bytes"  # so clients know they may resume


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_stored_file_that_no_longer_matches_its_record_is_not_served(
    live_server, demo_archive, rows, size
) -> None:
    """Read whole (up to 1 MiB) or streamed, a file whose size changed since ingest would not
    match the checksum its headers announce: 503, not the bytes."""
    from escape_vo.filestore import FileStore

    settings, _ = demo_archive
    sizes = sorted(rows, key=lambda r: r[2])
    sid = (sizes[0] if size == "small" else sizes[-1])[0]
    with psycopg.connect(settings.database_url) as conn:
        key = conn.execute(
            "SELECT file_path FROM archive.spectra WHERE spectrum_id = %s", (sid,)
        ).fetchone()[0]
    path = Path(FileStore(settings.files_url).path(key))
    original = path.read_bytes()
    url = f"{live_server.url}/spectra/{sid}/file"
    try:
        path.write_bytes(original[:-100])
        for headers in ({}, {"Range": "bytes=0-99"}):
            resp = httpx.get(url, headers=headers, timeout=30)
            assert resp.status_code == 503, (size, headers)
            assert "its record" in resp.text and "not served" in resp.text
    finally:
        path.write_bytes(original)
    assert httpx.get(url, timeout=30).content == original


@pytest.mark.parametrize("fmt", ["votable", "fits", "csv", "application/x-votable+xml"])
def test_conversions_keep_every_pixel_and_the_units(live_server, rows, fmt) -> None:
    multi = next(r for r in rows if r[6] > 0)  # a spectrum inside a multi-spectrum file
    for sid, _sha, _size, n_pix, *_ in (rows[0], multi):
        resp = httpx.get(f"{live_server.url}/spectra/{sid}", params={"FORMAT": fmt}, timeout=60)
        assert resp.status_code == 200, resp.text[:300]
        if "votable" in fmt:
            vot = votable.parse(io.BytesIO(resp.content))
            table = vot.get_first_table().to_table()
            utypes = {f.utype for f in vot.get_first_table().fields}
            assert "spec:Data.SpectralAxis.Value" in utypes
            assert table["WAVE"].unit == u.m
        elif fmt == "fits":
            with fits.open(io.BytesIO(resp.content)) as hdul:
                table = Table(hdul["SPECTRUM"].data)
                assert hdul["SPECTRUM"].header["TUNIT1"] == "m"
                assert any("sha256" in h for h in hdul["SPECTRUM"].header["HISTORY"])
        else:
            table = Table.read(io.BytesIO(resp.content), format="ascii.csv")
        assert len(table) == n_pix
        assert len(table.colnames) == 4  # wavelength, flux, error, quality


def test_header_text_and_unknown_ids(live_server, rows) -> None:
    sid = rows[0][0]
    text = httpx.get(f"{live_server.url}/spectra/{sid}/header").text
    assert text.startswith("# HDU 0") and "SIMPLE  =" in text
    missing = httpx.get(f"{live_server.url}/spectra/99999999/file")
    assert missing.status_code == 404 and "no spectrum" in missing.text
    bad = httpx.get(f"{live_server.url}/spectra/{sid}", params={"FORMAT": "jpeg"})
    assert bad.status_code == 400 and "votable" in bad.text
