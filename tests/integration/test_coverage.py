"""Coverage MOCs: the numpy constructions against mocpy's own, /coverage over real HTTP against
the positions and times in the database, recomputation after an ingest, and Aladin loading the
MOC with SSA results (when Debian's aladin and Xvfb are installed)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import astropy.units as u
import cdshealpix
import httpx
import numpy as np
import psycopg
import pytest
from astropy.time import Time
from mocpy import MOC, STMOC, TimeMOC

from escape_vo.coverage import store as coverage_store
from escape_vo.coverage.compute import space_moc, space_time_moc, time_moc
from escape_vo.demo.generate import generate_demo
from escape_vo.ingest.pipeline import ingest
from escape_vo.web.app import create_app
from tests.conftest import LiveServer, free_port

ALADIN = Path(__file__).resolve().parents[3] / "shared" / "clients" / "aladin-snapshot.sh"


def _moc(kind: type, content: bytes):
    """Parse a MOC 2.0 FITS body with mocpy (which reads FITS from files)."""
    with tempfile.NamedTemporaryFile(suffix=".fits") as f:
        f.write(content)
        f.flush()
        return kind.load(f.name, format="fits")


def test_numpy_constructions_equal_mocpys() -> None:
    rng = np.random.default_rng(3)
    n = 400
    ra, dec = rng.uniform(10, 30, n), rng.uniform(-20, 0, n)
    hp = cdshealpix.lonlat_to_healpix(ra * u.deg, dec * u.deg, 29).astype(np.int64)
    t_min = rng.uniform(55000, 55030, n)
    t_max = t_min + rng.uniform(0, 2, n)  # up to two days: several time cells
    aperture = np.where(rng.uniform(size=n) < 0.5, rng.uniform(0.001, 0.05, n), np.nan)

    st = space_time_moc(hp, t_min, t_min, 9)
    assert st == STMOC.from_times_positions(Time(t_min, format="mjd"), 25, ra * u.deg,
                                            dec * u.deg, 9)  # fmt: skip
    tm = time_moc(t_min, t_max)
    ref = TimeMOC.from_time_ranges(Time(t_min, format="mjd"), Time(t_max, format="mjd"), order=31)
    assert tm == ref
    ranged = space_time_moc(hp, t_min, t_max, 9)
    assert all(ranged.contains(Time(t_max, format="mjd"), ra * u.deg, dec * u.deg))
    sm = space_moc(hp, ra, dec, aperture, 9)
    points = MOC.from_lonlat(lon=ra * u.deg, lat=dec * u.deg, max_norder=9)
    has = np.isfinite(aperture)
    discs = MOC.from_cones(lon=ra[has] * u.deg, lat=dec[has] * u.deg,
                           radius=aperture[has] / 2 * u.deg, max_depth=9,
                           union_strategy="small_cones")  # fmt: skip
    assert sm == points.union(discs)
    assert sm.sky_fraction > points.sky_fraction  # the apertures add cells
    assert space_moc(hp[:0], ra[:0], dec[:0], aperture[:0], 9).empty()


@pytest.fixture(scope="module")
def positions(demo_archive) -> dict[str, np.ndarray]:
    settings, _ = demo_archive
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT ra, dec, t_min, coalesce(t_max, t_min) FROM archive.spectra "
            "WHERE ra IS NOT NULL AND t_min IS NOT NULL"
        ).fetchall()
    ra, dec, t0, t1 = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    return {"ra": ra, "dec": dec, "t_min": t0, "t_max": t1}


def test_archive_coverage_over_http(live_server, positions) -> None:
    url = f"{live_server.url}/coverage"
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "application/fits"
    space = _moc(MOC, r.content)
    assert space.max_order == 9
    lon, lat = positions["ra"] * u.deg, positions["dec"] * u.deg
    assert space.contains_lonlat(lon, lat).all()
    as_json = httpx.get(url, params={"format": "json"}, timeout=30)
    assert as_json.headers["content-type"] == "application/json"
    assert MOC.from_json(as_json.json()) == space
    as_ascii = httpx.get(url, params={"FORMAT": "ascii"}, timeout=30)
    assert MOC.from_str(as_ascii.text) == space
    coarse = _moc(MOC, httpx.get(url, params={"ORDER": "5"}, timeout=30).content)
    assert coarse.max_order == 5 and coarse.contains_lonlat(lon, lat).all()

    times = _moc(TimeMOC, httpx.get(url, params={"KIND": "time"}, timeout=30).content)
    assert times.contains(Time(positions["t_min"], format="mjd")).all()
    assert times.contains(Time(positions["t_max"], format="mjd")).all()
    both = _moc(STMOC, httpx.get(url, params={"KIND": "space-time"}, timeout=30).content)
    assert both.contains(Time(positions["t_min"], format="mjd"), lon, lat).all()
    elsewhere = positions["ra"] + 180.0  # the same times, the other side of the sky
    assert not both.contains(Time(positions["t_min"], format="mjd"), elsewhere * u.deg,
                             -lat).any()  # fmt: skip

    demo = httpx.get(f"{url}/demo", timeout=30)  # the demo archive's only collection
    assert _moc(MOC, demo.content) == space
    again = httpx.get(url, headers={"If-None-Match": r.headers["etag"]}, timeout=30)
    assert again.status_code == 304

    for params, status, words in [
        ({"FORMAT": "png"}, 400, "fits, json or ascii"),
        ({"KIND": "energy"}, 400, "space, time, space-time"),
        ({"ORDER": "31"}, 400, "0 to 29"),
        ({"KIND": "space-time", "ORDER": "3"}, 400, "KIND=space or KIND=time"),
        ({"POS": "1,2"}, 400, "KIND, FORMAT and ORDER"),
    ]:
        bad = httpx.get(url, params=params, timeout=30)
        assert bad.status_code == status and words in bad.text, (params, bad.text)
    missing = httpx.get(f"{url}/nope", timeout=30)
    assert missing.status_code == 404 and "demo" in missing.text


def test_recomputed_after_ingest(settings, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(coverage_store, "CHECK_INTERVAL", 0.0)
    truth = generate_demo(tmp_path / "files", n_spectra=12, seed=21)
    port = free_port()
    app = create_app(settings.model_copy(update={"port": port}))
    with LiveServer(app, port) as server:
        empty = httpx.get(f"{server.url}/coverage", timeout=30)
        assert empty.status_code == 200 and _moc(MOC, empty.content).empty()
        for batch, collection in ((truth[:6], "north"), (truth[6:], "south")):
            names = {Path(t.path).name for t in batch}
            report = ingest(
                [p for p in (tmp_path / "files").rglob("*.fits*") if p.name in names],
                db_url=settings.database_url,
                store_url=settings.files_url,
                authority=settings.ivo_authority,
                collection=collection,
                workers=1,
            )
            assert report.ok, report.summary()
        whole = _moc(MOC, httpx.get(f"{server.url}/coverage", timeout=30).content)
        north = _moc(MOC, httpx.get(f"{server.url}/coverage/north", timeout=30).content)
        south = _moc(MOC, httpx.get(f"{server.url}/coverage/south", timeout=30).content)
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT collection, ra, dec FROM archive.spectra WHERE ra IS NOT NULL"
        ).fetchall()
    assert {c for c, _, _ in rows} == {"north", "south"}
    for collection, ra, dec in rows:
        assert whole.contains_lonlat(ra * u.deg, dec * u.deg).all()
        mine = north if collection == "north" else south
        assert mine.contains_lonlat(ra * u.deg, dec * u.deg).all()
    assert whole == north.union(south)
    cached = sorted(p.name for p in (settings.data_dir / "coverage" / "archive").iterdir())
    assert cached == ["space-time.fits", "space.fits", "summary.json", "time.fits"]


@pytest.mark.skipif(
    not (ALADIN.exists() and Path("/usr/share/java/aladin.jar").exists()
         and shutil.which("Xvfb")),
    reason="needs Debian's aladin, Xvfb and shared/clients/aladin-snapshot.sh beside the repo",
)  # fmt: skip
def test_aladin_loads_the_moc_and_ssa_results(live_server, positions, tmp_path: Path) -> None:
    ra, dec = float(positions["ra"][0]), float(positions["dec"][0])
    ssa = f"{live_server.url}/ssa?REQUEST=queryData&POS={ra:.4f},{dec:.4f}&SIZE=4"
    out = tmp_path / "aladin.png"
    done = subprocess.run(
        [str(ALADIN), f"{live_server.url}/coverage", f"{ra:.4f} {dec:.4f}", str(out), ssa],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                          "TIMEOUT": "90"},
    )  # fmt: skip
    # exit 0: Aladin read both (an unreadable MOC or an error VOTable exits 3 with its "!!!")
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 5000
