"""Ingest of the demo formats against the generator's truth, idempotency and rejections."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from escape_vo.demo.generate import generate_demo, write_bad_files
from escape_vo.filestore import FileStore
from escape_vo.ingest.pipeline import ingest
from escape_vo.settings import Settings


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo")
    generate_demo(dest, n_spectra=150, seed=7, workers=2)
    return dest


def _ingest(settings: Settings, *paths: Path, workers: int = 2, **kw):
    return ingest(
        paths,
        db_url=settings.database_url,
        store_url=settings.files_url,
        authority=settings.ivo_authority,
        workers=workers,
        **kw,
    )


def _rows(url: str) -> dict[tuple[str, int], dict]:
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT * FROM archive.spectra")
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return {(r["original_name"], r["file_index"]): r for r in rows}


def test_demo_files_are_ingested_as_the_truth_says(settings: Settings, demo_dir: Path) -> None:
    truth = json.loads((demo_dir / "truth.json").read_text())
    report = _ingest(settings, demo_dir, collection="demo")
    assert report.ok, report.summary()
    assert report.spectra_ingested == len(truth)
    rows = _rows(settings.database_url)
    assert len(rows) == len(truth)
    for t in truth:
        row = rows[(Path(t["path"]).name, t["file_index"])]
        assert row["file_format"] == t["file_format"], t["path"]
        assert row["n_pix"] == t["n_pix"], t["path"]
        assert row["wave_min"] == pytest.approx(t["wave_min"], rel=1e-6), t["path"]
        assert row["wave_max"] == pytest.approx(t["wave_max"], rel=1e-6), t["path"]
        assert row["instrument"] == t["instrument"], t["path"]
        assert row["target_name"] == t["target_name"], t["path"]
        assert row["collection"] == "demo"
        assert row["publisher_did"].startswith("ivo://test.example/spectra?")
        if t["ra"] is None:
            assert row["ra"] is None and row["healpix"] is None, t["path"]
            assert "position" in (row["warnings"] or ""), t["path"]
        else:
            sep = SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg).separation(
                SkyCoord(t["ra"] * u.deg, t["dec"] * u.deg)
            )
            assert sep.arcsec < 0.1, (t["path"], sep.arcsec)
            assert row["healpix"] is not None
    with psycopg.connect(settings.database_url) as conn:
        n_obscore = conn.execute("SELECT count(*) FROM ivoa.obscore").fetchone()[0]
        nrows = conn.execute(
            "SELECT nrows FROM tap_schema.tables WHERE table_name = 'archive.spectra'"
        ).fetchone()[0]
    assert n_obscore == nrows == len(truth)


def test_stored_files_are_byte_identical(settings: Settings, demo_dir: Path) -> None:
    _ingest(settings, demo_dir)
    store = FileStore(settings.files_url)
    for row in list(_rows(settings.database_url).values())[:40]:
        with store.open(row["file_path"]) as fh:
            data = fh.read()
        assert hashlib.sha256(data).hexdigest() == row["file_sha256"]
        assert len(data) == row["file_size"]


def test_second_ingest_adds_nothing(settings: Settings, demo_dir: Path) -> None:
    first = _ingest(settings, demo_dir)
    second = _ingest(settings, demo_dir)
    assert first.spectra_ingested > 0
    assert second.spectra_ingested == 0
    assert second.files_ingested == 0
    assert second.files_skipped == first.files_ingested
    assert len(_rows(settings.database_url)) == first.spectra_ingested


def test_same_bytes_under_two_names_are_stored_once(
    settings: Settings, demo_dir: Path, tmp_path: Path
) -> None:
    one = next(demo_dir.rglob("*.fits"))
    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(one, copies / "a.fits")
    shutil.copy(one, copies / "b.fits")
    report = _ingest(settings, copies, workers=1)
    assert report.files_ingested == 1 and report.files_skipped == 1


def test_bad_files_are_rejected_with_reasons_and_good_ones_land(
    settings: Settings, demo_dir: Path, tmp_path: Path
) -> None:
    bad = write_bad_files(tmp_path / "bad")
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "bad", mixed / "bad")
    good = sorted(demo_dir.rglob("*.fits"))[:5]
    for f in good:
        shutil.copy(f, mixed / f.name)
    report = _ingest(settings, mixed, tmp_path / "does-not-exist")
    assert not report.ok
    reasons = {Path(p).name: r for p, r in report.failures}
    assert "does-not-exist" in reasons
    for name, fragment in bad.items():
        assert name in reasons, f"{name} was not rejected"
        assert fragment in reasons[name].lower(), (name, reasons[name])
        assert "\n" not in reasons[name]
    assert report.files_ingested == len(good)
    assert {Path(p).name for p, _ in report.failures} == set(bad) | {"does-not-exist"}


def test_concurrent_ingests_of_the_same_files_do_not_duplicate(
    settings: Settings, demo_dir: Path
) -> None:
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(_ingest(settings, demo_dir, workers=1)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    truth = json.loads((demo_dir / "truth.json").read_text())
    assert len(_rows(settings.database_url)) == len(truth)
    assert sum(r.spectra_ingested for r in results) == len(truth)


def test_positions_from_other_frames_are_converted_to_icrs() -> None:
    from escape_vo.ingest.model import RawPosition
    from escape_vo.ingest.positions import healpix_index, to_icrs

    fk4 = RawPosition(lon_deg=150.0, lat_deg=2.0, frame="fk4", equinox="B1950")
    out = to_icrs([fk4, None, RawPosition(10.0, 95.0)])
    expected = SkyCoord(150 * u.deg, 2 * u.deg, frame="fk4", equinox="B1950").icrs
    assert out[0] == pytest.approx((expected.ra.deg, expected.dec.deg), abs=1e-9)
    assert out[1] is None
    assert isinstance(out[2], str) and "not on the sky" in out[2]
    # HEALPix order 29 index: neighbouring points share their order-10 parent.
    idx = healpix_index(np.array([150.0, 150.00001]), np.array([2.0, 2.0]))
    assert (idx[0] >> 38) == (idx[1] >> 38)
