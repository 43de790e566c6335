"""The demo generator: reproducible bytes, truth that matches the files, every format present.

The read-back helpers here are deliberately independent of the generator: they decode each
format the way an archive user would (header keywords, columns, WCS), so a mismatch between
truth.json and the files shows up as a failure.
"""

from __future__ import annotations

import gzip
import json
import warnings
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from escape_vo.demo.generate import DemoTruth, generate_demo, write_bad_files
from escape_vo.demo.plan import make_plan

N_SMALL = 60
FORMATS = {"eso-phase3", "sdss", "image1d", "bintable"}
INSTRUMENTS = {
    "HARPS", "FEROS", "UVES", "XSHOOTER", "BOSS", "SDSS", "B&C", "IDS", "AAOMEGA-2DF",
    "ISIS", "GMOS-S", "HECTOSPEC",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoTruth]]:
    dest = tmp_path_factory.mktemp("demo_a")
    return dest, generate_demo(dest, N_SMALL, seed=7, workers=1)


@pytest.fixture(scope="module")
def demo_parallel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoTruth]]:
    dest = tmp_path_factory.mktemp("demo_b")
    return dest, generate_demo(dest, N_SMALL, seed=7, workers=2)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _open(path: Path) -> fits.HDUList:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deliberately defective long-slit headers warn
        return fits.open(path, ignore_missing_end=True)


# --------------------------------------------------------------------------- independent readers


def _icrs(lon: float, lat: float, frame: str, equinox: str | None, unit=u.deg) -> SkyCoord:
    kwargs = {"equinox": equinox} if equinox else {}
    return SkyCoord(lon, lat, unit=unit, frame=frame, **kwargs).icrs


def _linear_wcs(h: fits.Header) -> tuple[float, float, int]:
    n = h["NAXIS1"]
    step = h["CDELT1"] if "CDELT1" in h else h["CD1_1"]
    first = h["CRVAL1"] + (1 - h["CRPIX1"]) * step
    last = h["CRVAL1"] + (n - h["CRPIX1"]) * step
    if h.get("DC-FLAG", 0) == 1:
        first, last = 10.0**first, 10.0**last
    return first * 1e-10, last * 1e-10, n  # Angstrom, stated or implied


def read_back(root: Path, t: DemoTruth) -> tuple[float, float, int, SkyCoord | None]:
    """(wave_min m, wave_max m, n_pix, ICRS position or None) as the file states them."""
    with _open(root / t.path) as hdul:
        p = hdul[0].header
        if t.file_format == "eso-phase3":
            ext = hdul[1]
            unit = {"nm": 1e-9, "angstrom": 1e-10}[ext.header["TUNIT1"]]
            wave = ext.data["WAVE"][0]
            assert ext.header["NELEM"] == wave.size
            assert p["WAVELMIN"] == pytest.approx(wave[0] * unit * 1e9, rel=1e-9)
            frame = p["RADESYS"].lower()
            pos = _icrs(p["RA"], p["DEC"], frame, "J2000" if frame == "fk5" else None)
            return wave[0] * unit, wave[-1] * unit, wave.size, pos
        if t.file_format == "sdss":
            loglam = hdul["COADD"].data["loglam"].astype(np.float64)
            pos = _icrs(p["PLUG_RA"], p["PLUG_DEC"], "fk5", f"J{p['EQUINOX']}")
            return 10 ** loglam[0] * 1e-10, 10 ** loglam[-1] * 1e-10, loglam.size, pos
        if t.file_format == "image1d":
            w0, w1, n = _linear_wcs(p)
            if p["NAXIS"] == 2:  # 2dF: program fibres in row order, RA/DEC in radians
                fib = hdul["FIBRES"].data
                row = np.flatnonzero(fib["TYPE"] == "P")[t.file_index]
                pos = _icrs(fib["RA"][row], fib["DEC"][row], "fk5", "J2000", unit=u.rad)
                return w0, w1, n, pos
            if "RA" not in p or p["RA"] == "N/A":
                return w0, w1, n, None
            fk4 = p["RADECSYS"] == "FK4"
            equinox = float(p["EQUINOX"])  # some old headers write it as a string
            pos = SkyCoord(
                p["RA"], p["DEC"], unit=(u.hourangle, u.deg), frame="fk4" if fk4 else "fk5",
                equinox=f"{'B' if fk4 else 'J'}{equinox}",
            ).icrs  # fmt: skip
            return w0, w1, n, pos
        table = hdul[1]
        names = table.columns.names
        if "RA" in names:  # several targets, one row each
            row = table.data[t.file_index]
            wave = row["WAVELENGTH"]
            return (
                wave[0] * 1e-10,
                wave[-1] * 1e-10,
                wave.size,
                _icrs(row["RA"], row["DEC"], "icrs", None),
            )
        wave_col = next(c for c in table.columns if c.name in ("WAVELENGTH", "LAMBDA"))
        factor = {"Angstrom": 1e-10, "nm": 1e-9, "um": 1e-6}[wave_col.unit]
        wave = table.data[wave_col.name]
        return (
            wave[0] * factor,
            wave[-1] * factor,
            wave.size,
            _icrs(p["RA"], p["DEC"], "icrs", None),
        )


# --------------------------------------------------------------------------- tests


def test_same_seed_same_bytes_whatever_the_workers(demo, demo_parallel) -> None:
    (root_a, truth_a), (root_b, truth_b) = demo, demo_parallel
    assert truth_a == truth_b
    files_a, files_b = _files(root_a), _files(root_b)
    assert files_a.keys() == files_b.keys()
    assert all(files_a[k] == files_b[k] for k in files_a), "bytes differ between worker counts"


def test_different_seed_differs(demo, tmp_path: Path) -> None:
    other = generate_demo(tmp_path, N_SMALL, seed=8, workers=1)
    assert [t.path for t in other] != [t.path for t in demo[1]]
    assert [t.snr for t in other] != [t.snr for t in demo[1]]


def test_truth_json_matches_returned_truth(demo) -> None:
    root, truth = demo
    assert len(truth) == N_SMALL
    on_disk = json.loads((root / "truth.json").read_text())
    assert on_disk == [asdict(t) for t in truth]
    assert len({(t.path, t.file_index) for t in truth}) == N_SMALL
    paths = {t.path for t in truth}
    assert len({Path(p).name for p in paths}) == len(paths)  # original names are unique too


def test_every_file_opens_and_checksums_hold(demo) -> None:
    root, truth = demo
    for rel in sorted({t.path for t in truth}):
        path = root / rel
        if rel.endswith(".gz"):
            assert gzip.decompress(path.read_bytes())[:6] == b"SIMPLE"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, checksum=True, ignore_missing_end=True) as hdul:
                for hdu in hdul:
                    _ = hdu.data
                if not rel.startswith("longslit/"):  # long-slit files carry header defects
                    hdul.verify("exception")
        assert not [w for w in caught if "checksum" in str(w.message).lower()], rel


def test_truth_agrees_with_files(demo) -> None:
    root, truth = demo
    for t in truth:
        w0, w1, n, pos = read_back(root, t)
        assert n == t.n_pix, t.path
        assert w0 == pytest.approx(t.wave_min, rel=1e-6), t.path
        assert w1 == pytest.approx(t.wave_max, rel=1e-6), t.path
        assert 1.5e-7 < t.wave_min < t.wave_max < 3e-6
        if pos is None:
            assert t.ra is None and t.dec is None, t.path
            continue
        truth_pos = SkyCoord(t.ra * u.deg, t.dec * u.deg, frame="icrs")
        assert pos.separation(truth_pos).arcsec < 0.1, t.path


def test_formats_instruments_classes_and_anomalies_present(demo) -> None:
    _, truth = demo
    assert {t.file_format for t in truth} == FORMATS
    assert {t.instrument for t in truth} == INSTRUMENTS
    assert {t.obj_class for t in truth} == {"star", "qso", "galaxy"}
    assert any(t.anomalous for t in truth)
    assert any(t.path.endswith(".fits.gz") for t in truth)
    assert any(t.ra is None for t in truth)  # an old long-slit file without position
    assert all(3 <= t.snr <= 200 for t in truth if not t.anomalous)
    fibres = [t for t in truth if t.instrument == "AAOMEGA-2DF"]
    assert sorted(t.file_index for t in fibres if t.path == fibres[0].path)[:2] == [0, 1]


def test_plan_proportions_and_sky_coverage() -> None:
    jobs = make_plan(2400, np.random.SeedSequence(42))
    targets = [(j, t) for j in jobs for t in j.targets]
    assert len(targets) == 2400
    fam = Counter(j.inst.fmt.replace("table-rows", "table") for j, _ in targets)
    assert fam == {"eso": 1080, "sdss": 600, "image1d": 240, "fibres": 240, "table": 240}
    assert sum(t.source.anomaly is not None for _, t in targets) == 12
    ra = np.array([t.ra for _, t in targets if t.ra is not None])
    dec = np.array([t.dec for _, t in targets if t.dec is not None])
    assert (dec > 89).sum() >= 5 and (dec < -89).sum() >= 5
    assert ((ra < 0.5) | (ra > 359.5)).sum() >= 5
    # A dense clump: 50 targets within 0.5 deg of a centre are all within 1 deg of each other;
    # a 2dF field (1 deg radius) holds far fewer than 50 program fibres.
    xyz = SkyCoord(ra * u.deg, dec * u.deg).cartesian.xyz.value.T
    neighbours = (xyz @ xyz.T > np.cos(np.radians(1.0))).sum(axis=1)
    assert neighbours.max() >= 50
    # roughly uniform: each hemisphere holds about half of the targets
    assert 0.4 < (dec > 0).mean() < 0.6


def test_n_pix_override(tmp_path: Path) -> None:
    truth = generate_demo(tmp_path, 25, seed=3, n_pix=512, workers=1)
    assert all(abs(t.n_pix - 512) <= 1 for t in truth)
    for t in truth:
        assert read_back(tmp_path, t)[2] == t.n_pix


def test_bad_files(tmp_path: Path) -> None:
    expected = write_bad_files(tmp_path)
    assert set(expected.values()) >= {
        "truncated", "not a fits", "2-d", "echelle", "no wavelength", "error array",
    }  # fmt: skip
    for name, fragment in expected.items():
        path = tmp_path / name
        assert path.is_file() and fragment == fragment.lower()
    assert not (tmp_path / "not_fits_png.fits").read_bytes().startswith(b"SIMPLE")
    assert (tmp_path / "truncated.fits").stat().st_size % 2880 != 0
    with pytest.raises((EOFError, OSError)):
        gzip.decompress((tmp_path / "truncated_stream.fits.gz").read_bytes())
    with fits.open(tmp_path / "echelle_raw_2d.fits") as hdul:
        assert hdul[0].data.shape == (2048, 2048) and "CTYPE1" not in hdul[0].header
    with fits.open(tmp_path / "echelle_extracted_2d.fits") as hdul:
        assert hdul[0].header["NAXIS"] == 2 and "FIBRES" not in hdul
    with fits.open(tmp_path / "mcmc_samples.fits") as hdul:
        assert set(hdul[1].columns.names) == {"TEFF", "LOGG", "FEH", "VSINI"}
    with fits.open(tmp_path / "error_only.fits") as hdul:
        assert hdul[0].header["HDUCLAS2"] == "ERROR" and hdul[0].header["NAXIS"] == 1
    assert write_bad_files(tmp_path / "again") == expected
    assert _files(tmp_path / "again") == {k: v for k, v in _files(tmp_path).items() if "/" not in k}


def test_quasar_whose_spectrum_starts_just_blueward_of_lyman_alpha() -> None:
    """Seed 7 drew a quasar whose spectrum begins 1-2 Å short of its Lyα line: no room for a
    forest absorber, so none is drawn (this used to raise inside numpy's uniform)."""
    from escape_vo.demo.physics import qso_flux

    z = 2.5
    start = 1215.67 * (1 + z) - 1.5
    wave = np.linspace(start, start + 2000, 4000)
    flux = qso_flux(wave, z, 5000.0, np.random.default_rng(0))
    assert flux.shape == wave.shape and np.isfinite(flux).all() and (flux > 0).all()
