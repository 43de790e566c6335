"""The thin client (escape_vo_client) against the live service: search, schema, spectra, cutouts,
bulk download with resume and failure reports."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import psycopg
import pytest

from escape_vo_client import Archive

warnings.filterwarnings("ignore", module="astropy")


@pytest.fixture(scope="module")
def archive(live_server) -> Archive:
    return Archive(live_server.url)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_search_spectra_by_instrument_and_position(archive: Archive, demo_archive) -> None:
    _, truth = demo_archive
    harps = [t for t in truth if t.instrument == "HARPS"]
    found = archive.search_spectra(instrument="HARPS")
    assert len(found) == len(harps)
    assert set(found["instrument_name"]) == {"HARPS"}
    t = harps[0]
    near = archive.search_spectra(pos=(t.ra, t.dec), radius=0.001 * u.deg)
    assert t.target_name in {str(x) for x in near["target_name"]}
    in_band = archive.search_spectra(band=(t.wave_min, t.wave_max) * u.m, instrument="HARPS")
    assert len(in_band) == len(harps)
    assert len(archive.search_spectra(band=(1, 2) * u.mm)) == 0


def test_query_and_schema_browsing(archive: Archive) -> None:
    rows = archive.query("SELECT TOP 5 obs_publisher_did FROM ivoa.obscore")
    assert len(rows) == 5
    names = set(archive.tables()["name"])
    assert {"ivoa.obscore", "archive.spectra"} <= names
    cols = archive.describe("ivoa.obscore")
    em_min = cols[list(cols["name"]).index("em_min")]
    assert em_min["unit"] == "m" and em_min["ucd"].startswith("em.wl")
    with pytest.raises(KeyError, match="no table"):
        archive.describe("nope.nothing")


def test_spectrum_and_cutout(archive: Archive) -> None:
    row = archive.search_spectra(instrument="UVES", maxrec=1)[0]
    did = str(row["obs_publisher_did"])
    spec = archive.spectrum(did)
    assert spec.wavelength.unit.is_equivalent(u.m) and len(spec) > 100
    assert np.isclose(spec.wavelength.min().to_value(u.m), row["em_min"], rtol=1e-6)
    # the Spectrum DM document's PARAMs, wherever they sit (resource, table or group)
    assert spec.meta["PublisherDID"] == did and spec.meta["Instrument"] == "UVES"
    assert spec.meta["TargetName"] == str(row["target_name"])
    lo, hi = row["em_min"], row["em_max"]
    mid = (lo + hi) / 2
    cut = archive.cutout(did, (lo, mid))
    assert 0 < len(cut) < len(spec)
    assert cut.wavelength.max().to_value(u.m) <= mid
    with pytest.raises(ValueError, match="empty"):
        archive.cutout(did, (hi * 2, hi * 3))


def test_bulk_download_resumes_and_reports_failures(
    archive: Archive, demo_archive, tmp_path: Path
) -> None:
    settings, truth = demo_archive
    found = archive.search_spectra()
    assert len(found) == len(truth)
    dest = tmp_path / "spectra"
    first = archive.download(found[:40], dest, parallel=8, progress=False)
    assert first.ok, first.summary()
    assert len(first.succeeded) == 40
    # a partial file left by an interrupted download, and one complete file removed
    victim = first.succeeded[0][1]
    data = victim.read_bytes()
    victim.unlink()
    part = victim.with_name(victim.name + ".part")
    part.write_bytes(data[:1000])
    ids = [str(x) for x in found["obs_publisher_did"]]
    bogus = ["ivo://nowhere.example/spectra?none-0"]
    report = archive.download(ids + bogus, dest, parallel=8, progress=False)
    assert len(report.skipped) == 39
    assert len(report.succeeded) == len(truth) - 39
    assert report.failed == [(bogus[0], "not found in ivoa.obscore of this archive")]
    assert not list(dest.glob("*.part*"))
    with psycopg.connect(settings.database_url) as conn:
        sha = dict(conn.execute("SELECT publisher_did, file_sha256 FROM archive.spectra"))
    by_id = dict(report.succeeded + report.skipped)
    assert all(_sha(by_id[i]) == sha[i] for i in ids)
    table = report.to_table()
    assert list(table["status"]).count("failed") == 1


def test_a_file_of_another_spectrum_with_the_same_name_is_not_taken_for_it(
    archive: Archive, tmp_path: Path
) -> None:
    """The same key at another archive gives the same file name: that file is neither skipped
    as the other spectrum's nor overwritten; the new one gets a hash in its name."""
    from escape_vo_client.download import Item, download_items, read_ids, run_coroutine

    rows = archive.query(
        "SELECT TOP 2 obs_publisher_did, access_url, access_format FROM ivoa.obscore "
        "WHERE instrument_name = 'HARPS' ORDER BY obs_publisher_did"
    )
    did = str(rows["obs_publisher_did"][0])
    first = archive.download(did, tmp_path, progress=False)
    assert first.ok and len(first.succeeded) == 1
    ours = first.succeeded[0][1]
    digest = _sha(ours)
    other = "ivo://other.example/spectra?" + did.split("?", 1)[1]  # same key, other spectrum
    item = Item(other, str(rows["access_url"][1]), str(rows["access_format"][1]))

    def theirs():
        return run_coroutine(download_items([item], tmp_path, progress=False))

    report = theirs()
    assert report.ok and len(report.succeeded) == 1 and not report.skipped
    path = report.succeeded[0][1]
    assert path != ours and path.name.startswith(ours.stem + "-")
    assert _sha(ours) == digest and _sha(path) != digest
    assert read_ids(tmp_path) == {ours.name: did, path.name: other}
    again = archive.download(did, tmp_path, progress=False)
    assert again.skipped == [(did, ours)] and not again.succeeded
    assert theirs().skipped == [(other, path)]


def test_an_authenticated_session_carries_over_to_datalink_and_downloads(
    fresh_db, tmp_path: Path
) -> None:
    """pyvo queries go through the user's requests.Session; the downloads (DataLink batches,
    files) go through the client's own HTTP session, which must carry the same identity: the
    session's headers, its cookies for the domains they were set for, and its basic auth."""
    import base64

    import requests

    from tests.fixtures.archive import UNREACHABLE, serve_fixture_archive

    with serve_fixture_archive(fresh_db(), tmp_path / "remote", n_spectra=6) as remote:
        seen: list[str] = []

        def allowed(request) -> bool:
            if request.url.path.startswith("/tap"):
                return True  # the catalogue is public, the data proprietary
            basic = request.headers.get("authorization", "").removeprefix("Basic ")
            user = base64.b64decode(basic).decode() if basic else ""
            ok = (
                request.headers.get("x-archive-token") == "s3cret"
                and request.cookies.get("login") == "yes"
                and user == "astro:pw"
            )
            seen.append(request.url.path)
            return ok

        remote.require = allowed
        rows = Archive(remote.base_url).query(
            "SELECT obs_publisher_did, access_url, access_format, access_estsize FROM ivoa.obscore"
        )
        n_good = len(rows) - len(UNREACHABLE)

        def session(cookie_domain: str) -> requests.Session:
            s = requests.Session()
            s.headers["X-Archive-Token"] = "s3cret"
            s.cookies.set("login", "yes", domain=cookie_domain, path="/")
            s.auth = ("astro", "pw")
            return s

        anonymous = Archive(remote.base_url).download(rows, tmp_path / "anon", progress=False)
        assert not anonymous.succeeded
        assert sum("401" in reason for _, reason in anonymous.failed) >= n_good

        # the login cookie of another site is not sent to this one
        elsewhere = Archive(remote.base_url, session=session("other.example"))
        report = elsewhere.download(rows, tmp_path / "elsewhere", progress=False)
        assert not report.succeeded

        logged_in = Archive(remote.base_url, session=session("127.0.0.1"))
        report = logged_in.download(rows, tmp_path / "auth", progress=False)
        assert len(report.succeeded) == n_good, report.summary()
        assert {rid for rid, _ in report.failed} == set(UNREACHABLE)
        assert any(p.startswith("/links") for p in seen) and any(
            p.startswith("/files/") for p in seen
        )
