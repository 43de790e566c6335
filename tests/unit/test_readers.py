"""FITS spectrum readers: every supported layout, every rejection reason, tolerated header defects.

Test files are written in memory with astropy, with headers modelled on the real archives.
"""

from __future__ import annotations

import contextlib
import gzip
import io

import numpy as np
import pytest
from astropy.io import fits

from escape_vo.ingest.model import NotASpectrum, RawPosition, SpectrumRecord, UnreadableFile
from escape_vo.ingest.readers import read_spectra
from escape_vo.ingest.readers.spectrum import BAD_PIXEL

ESO_FLUX_UNIT = "erg.cm**(-2).s**(-1).angstrom**(-1)"
CGS_FLAM = "erg / (Angstrom s cm2)"


# ----------------------------------------------------------------------------- file builders


def to_bytes(*hdus: fits.hdu.base.ExtensionHDU) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buf)
    return buf.getvalue()


def set_card(data: bytes, key: str, card: str) -> bytes:
    """Overwrite the first card starting with key by raw text (to create invalid cards)."""
    start = 0
    while True:
        i = data.find(key.ljust(8).encode(), start)
        assert i >= 0, key
        if i % 80 == 0:
            break
        start = i + 1
    return data[:i] + card.ljust(80)[:80].encode("latin-1") + data[i + 80 :]


def eso_primary(**extra: object) -> fits.PrimaryHDU:
    h = fits.Header()
    cards = {
        "ORIGIN": "ESO",
        "TELESCOP": "ESO-VLT-U2",
        "INSTRUME": "UVES",
        "OBJECT": "HD 102195",
        "RA": 176.4275,
        "DEC": 2.8215,
        "EQUINOX": 2000.0,
        "RADESYS": "FK5",
        "EXPTIME": 1800.0,
        "TEXPTIME": 1800.0,
        "MJD-OBS": 55100.2,
        "MJD-END": 55100.22083,
        "DATE-OBS": "2009-09-25T04:48:00.000",
        "PRODCATG": "SCIENCE.SPECTRUM",
        "PROG_ID": "084.D-0067(A)",
        "OBID1": 200144000,
        "SPEC_RES": 42310.0,
        "SNR": 87.5,
        "APERTURE": 0.000277778,
        "FLUXCAL": "ABSOLUTE",
        "ARCFILE": "ADP.2013-09-25T14:03:11.877.fits",
    }
    cards.update(extra)
    for key, value in cards.items():
        if value is not None:
            h[key] = value
    for i in range(60):  # real SDP headers carry hundreds of HIERARCH cards
        h[f"HIERARCH ESO DET OUT{i} NAME"] = f"port {i}"
    return fits.PrimaryHDU(header=h)


def eso_table(
    n: int = 2000,
    *,
    rows: int = 1,
    version: int = 2,
    wave_unit: str = "nm",
    start: float = 300.0,
    stop: float = 1000.0,
    extname: str = "SPECTRUM",
    flux_unit: str = ESO_FLUX_UNIT,
    flux_name: str = "FLUX",
    err_name: str | None = None,
    utypes: bool = True,
    extra_columns: list[fits.Column] | None = None,
    header: dict | None = None,
) -> fits.BinTableHDU:
    wave = np.tile(np.linspace(start, stop, n), (rows, 1))
    rng = np.random.default_rng(1)
    flux = (1e-15 * (1 + 0.01 * rng.standard_normal((rows, n)))).astype(np.float32)
    err = np.full((rows, n), 1e-17, dtype=np.float32)
    qual = np.zeros((rows, n), dtype=np.int32)
    qual[:, 10] = 2
    err_name = err_name or ("ERR_FLUX" if version == 2 else "ERR")
    prefix = "spec:Data." if version == 2 else "Spectrum.Data."
    cols = [
        fits.Column(name="WAVE", format=f"{n}D", unit=wave_unit, array=wave),
        fits.Column(name=flux_name, format=f"{n}E", unit=flux_unit, array=flux),
        fits.Column(name=err_name, format=f"{n}E", unit=flux_unit, array=err),
        fits.Column(name="QUAL", format=f"{n}J", array=qual),
    ]
    cols += extra_columns or []
    hdu = fits.BinTableHDU.from_columns(cols, name=extname)
    hdu.header["VOCLASS"] = f"SPECTRUM V{version}.0"
    hdu.header["NELEM"] = n
    if utypes:
        for i, utype in enumerate(
            [
                "SpectralAxis.Value",
                "FluxAxis.Value",
                "FluxAxis.Accuracy.StatError",
                "FluxAxis.Quality",
            ],
            start=1,
        ):
            hdu.header[f"TUTYP{i}"] = prefix + utype
    for key, value in (header or {}).items():
        hdu.header[key] = value
    return hdu


def eso_file(**kwargs: object) -> bytes:
    primary_extra = kwargs.pop("primary", {})
    return to_bytes(eso_primary(**primary_extra), eso_table(**kwargs))


def sdss_file(
    *,
    n: int = 3800,
    plate: int = 266,
    run2d: str | None = "26",
    bunit: str | None = "1E-17 erg/cm^2/s/Ang",
    cls: str = "GALAXY",
) -> bytes:
    h = fits.Header()
    cards = {
        "TELESCOP": "SDSS 2.5-M",
        "FLAVOR": "science",
        "RA": 146.71421,  # telescope pointing, not the fibre
        "DEC": -1.0412,
        "PLUG_RA": 146.7142,
        "PLUG_DEC": -1.04128,
        "RADECSYS": "FK5",
        "EQUINOX": 2000.0,
        "MJD": 51630,
        "PLATEID": plate,
        "FIBERID": 1,
        "EXPTIME": 2701.0,
        "TAI-BEG": 4457164584.0,
        "TAI-END": 4457167285.0,
        "DATE-OBS": "2000-03-25",
        "BUNIT": bunit,
        "RUN2D": run2d,
    }
    for key, value in cards.items():
        if value is not None:
            h[key] = value
    loglam = (3.5797 + 1e-4 * np.arange(n)).astype(np.float32)
    flux = np.linspace(5, 15, n).astype(np.float32)
    ivar = np.full(n, 4.0, dtype=np.float32)  # error 0.5
    ivar[100:110] = 0.0
    and_mask = np.zeros(n, dtype=np.int32)
    and_mask[200] = 1 << 16
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format="E", array=flux),
            fits.Column(name="loglam", format="E", array=loglam),
            fits.Column(name="ivar", format="E", array=ivar),
            fits.Column(name="and_mask", format="J", array=and_mask),
            fits.Column(name="or_mask", format="J", array=and_mask),
            fits.Column(name="wdisp", format="E", array=np.ones(n, np.float32)),
            fits.Column(name="sky", format="E", array=np.ones(n, np.float32)),
            fits.Column(name="model", format="E", array=flux),
        ],
        name="COADD",
    )
    specobj_cols = [
        fits.Column(name=f"EXTRA{i}", format="E", array=np.zeros(1, np.float32)) for i in range(150)
    ]
    specobj_cols += [
        fits.Column(name="CLASS", format="6A", array=np.array([cls])),
        fits.Column(name="SUBCLASS", format="21A", array=np.array(["STARFORMING"])),
        fits.Column(name="Z", format="E", array=np.array([0.0784], np.float32)),
        fits.Column(name="SN_MEDIAN_ALL", format="E", array=np.array([14.3], np.float32)),
        fits.Column(name="OBJTYPE", format="16A", array=np.array(["GALAXY"])),
    ]
    specobj = fits.BinTableHDU.from_columns(specobj_cols, name="SPECOBJ")
    return to_bytes(fits.PrimaryHDU(header=h), coadd, specobj)


def image1d(
    n: int = 1500,
    shape: tuple[int, ...] | None = None,
    dtype: type = np.float32,
    extensions: tuple = (),
    **cards: object,
) -> bytes:
    data = np.linspace(100, 200, n).astype(dtype)
    if shape is not None:
        data = data.reshape(shape)
    h = fits.Header()
    for key, value in cards.items():
        if value is not None:
            h[key.replace("_", "-") if key in ("DC_FLAG", "DATE_OBS") else key] = value
    return to_bytes(fits.PrimaryHDU(data=data, header=h), *extensions)


def twodf_file(types: str = "PSPFP", npix: int = 800) -> bytes:
    nfib = len(types)
    flux = np.arange(nfib * npix, dtype=np.float32).reshape(nfib, npix) + 10
    var = np.full((nfib, npix), 4.0, dtype=np.float32)
    var[0, 5] = np.nan
    h = fits.Header()
    for key, value in {
        "TELESCOP": "Anglo-Australian Telescope",
        "INSTRUME": "AAOMEGA-2dF",
        "OBJECT": "COSMOS_field_3",
        "RADECSYS": "FK5",
        "EQUINOX": 2000.0,
        "CRVAL1": 5800.0,
        "CDELT1": 2.1,
        "CRPIX1": 1.0,
        "CTYPE1": "Wavelength",
        "CUNIT1": "Angstroms",
        "BUNIT": "Counts",
        "EXPOSED": 1200.0,
        "UTMJD": 56000.5,
    }.items():
        h[key] = value
    primary = fits.PrimaryHDU(data=flux, header=h)
    variance = fits.ImageHDU(data=var, name="VARIANCE")
    names = np.array([f"target_{i}" if t == "P" else f"{t}-fibre" for i, t in enumerate(types)])
    fibres = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="NAME", format="80A", array=names),
            fits.Column(name="RA", format="D", array=np.radians(150.0 + np.arange(nfib) * 0.01)),
            fits.Column(name="DEC", format="D", array=np.radians(2.2 + np.arange(nfib) * 0.01)),
            fits.Column(name="TYPE", format="1A", array=np.array(list(types))),
            fits.Column(name="PIVOT", format="I", array=np.arange(1, nfib + 1, dtype=np.int16)),
            fits.Column(name="MAGNITUDE", format="D", array=np.full(nfib, 19.5)),
        ],
        name="FIBRES",
    )
    return to_bytes(primary, variance, fibres)


def single(data: bytes, name: str = "file.fits") -> SpectrumRecord:
    records = read_spectra(data, name)
    assert len(records) == 1
    return records[0]


def has_warning(rec: SpectrumRecord, fragment: str) -> bool:
    return any(fragment.lower() in w.lower() for w in rec.warnings)


# ----------------------------------------------------------------------------- ESO Phase 3


def test_eso_v2_nm_full_metadata():
    rec = single(eso_file(n=20000, version=2, wave_unit="nm"), "ADP.fits")
    assert rec.file_format == "eso-phase3"
    assert rec.file_index == 0
    assert rec.n_pix == 20000
    assert rec.wave_min == pytest.approx(300e-9)
    assert rec.wave_max == pytest.approx(1000e-9)
    assert rec.wave.dtype == np.float64 and rec.wave.size == 20000
    assert rec.flux.dtype == np.float32 and rec.error.size == 20000
    assert rec.quality[10] == 2 and rec.quality[11] == 0
    assert rec.position == RawPosition(176.4275, 2.8215, "fk5", "J2000")
    assert rec.flux_unit == CGS_FLAM
    assert rec.calib_level == 2
    assert rec.obs_id == rec.origin_id == "ADP.2013-09-25T14:03:11.877.fits"
    assert rec.target_name == "HD 102195"
    assert rec.instrument == "UVES" and rec.facility == "ESO-VLT-U2"
    assert rec.exptime == 1800.0
    assert rec.t_min == pytest.approx(55100.2) and rec.t_max == pytest.approx(55100.22083)
    assert rec.resolving_power == 42310.0
    assert rec.snr == 87.5
    assert rec.aperture == pytest.approx(1 / 3600, rel=1e-3)
    assert rec.warnings == []


def test_eso_v1_angstrom_phase3spectra_uncalibrated_adu():
    data = eso_file(
        version=1,
        wave_unit="Angstrom",
        start=3000,
        stop=10000,
        extname="PHASE3SPECTRA",
        flux_unit="adu",
        primary={"FLUXCAL": "UNCALIBRATED", "SNR": None},
    )
    rec = single(data)
    assert rec.file_format == "eso-phase3"
    assert rec.wave_min == pytest.approx(3000e-10) and rec.wave_max == pytest.approx(1e-6)
    assert rec.flux_unit == "adu"
    assert rec.calib_level == 1
    # no SNR keyword: median flux/error over good pixels = 1e-15 / 1e-17
    assert rec.snr == pytest.approx(100.0, rel=0.01)


@pytest.mark.parametrize("unit", ["angstrom", "Angstrom", "A", "Angstroms"])
def test_eso_angstrom_spellings(unit):
    rec = single(eso_file(wave_unit=unit, start=3500, stop=9000))
    assert rec.wave_min == pytest.approx(3500e-10)
    assert not has_warning(rec, "unit")


def test_eso_extname_case_insensitive_and_voclass_only():
    table = eso_table(extname="Spectrum")
    assert single(to_bytes(eso_primary(), table)).file_format == "eso-phase3"
    table = eso_table(extname="DATA")  # matched by VOCLASS alone
    assert single(to_bytes(eso_primary(), table)).file_format == "eso-phase3"


def test_eso_flux_reduced_variant():
    rec = single(eso_file(flux_name="FLUX_REDUCED", err_name="ERR_REDUCED", flux_unit="adu"))
    assert rec.flux_unit == "adu" and rec.calib_level == 1
    assert np.isfinite(rec.error).all()


def test_eso_columns_identified_by_utype():
    n = 500
    cols = [
        fits.Column(
            name="LAMBDA_X", format=f"{n}D", unit="nm", array=np.linspace(500, 600, n)[None]
        ),
        fits.Column(name="F", format=f"{n}E", unit=ESO_FLUX_UNIT, array=np.ones((1, n), "f4")),
        fits.Column(name="E", format=f"{n}E", unit=ESO_FLUX_UNIT, array=np.full((1, n), 0.1, "f4")),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    for i, utype in enumerate(
        ["SpectralAxis.Value", "FluxAxis.Value", "FluxAxis.Accuracy.StatError"], start=1
    ):
        table.header[f"TUTYP{i}"] = "spec:Data." + utype
    rec = single(to_bytes(eso_primary(SNR=None), table))
    assert rec.wave_min == pytest.approx(500e-9)
    assert rec.snr == pytest.approx(10.0)


def test_eso_extension_keywords_win():
    table = eso_table(header={"OBJECT": "HD 102195 b", "SNR": 12.0})
    rec = single(to_bytes(eso_primary(), table))
    assert rec.target_name == "HD 102195 b"
    assert rec.snr == 12.0


def test_eso_several_rows_are_several_spectra():
    extra = [
        fits.Column(name="OBJECT", format="20A", array=np.array(["star A", "star B"])),
        fits.Column(name="RA", format="D", unit="deg", array=np.array([10.0, 20.0])),
        fits.Column(name="DEC", format="D", unit="deg", array=np.array([-5.0, -6.0])),
    ]
    records = read_spectra(eso_file(rows=2, extra_columns=extra), "multi.fits")
    assert [r.file_index for r in records] == [0, 1]
    assert [r.target_name for r in records] == ["star A", "star B"]
    assert records[1].position == RawPosition(20.0, -6.0, "fk5", "J2000")
    assert records[0].obs_id != records[1].obs_id


def test_eso_gzip_detected_by_magic_bytes():
    raw = eso_file()
    rec = single(gzip.compress(raw), "no_gz_suffix.fits")
    assert rec.n_pix == 2000
    assert single(raw).wave_max == rec.wave_max


def test_eso_no_position_warns():
    rec = single(eso_file(primary={"RA": None, "DEC": None}))
    assert rec.position is None
    assert has_warning(rec, "no position in header")


# ----------------------------------------------------------------------------- SDSS


def test_sdss_spec_file():
    rec = single(sdss_file(), "spec-0266-51630-0001.fits")
    assert rec.file_format == "sdss"
    assert rec.n_pix == 3800
    assert rec.wave_min == pytest.approx(10**3.5797 * 1e-10, rel=1e-6)
    assert rec.wave_max == pytest.approx(10 ** (3.5797 + 1e-4 * 3799) * 1e-10, rel=1e-6)
    assert rec.position == RawPosition(146.7142, -1.04128, "fk5", "J2000")
    assert rec.obs_id == "spec-0266-51630-0001"
    assert rec.origin_id == "spec-0266-51630-0001.fits"
    assert rec.flux_unit == "1e-17 erg / (Angstrom s cm2)"
    assert rec.calib_level == 2
    assert rec.target_class == "galaxy"
    assert rec.redshift == pytest.approx(0.0784)
    assert rec.snr == pytest.approx(14.3)
    assert rec.facility == "SDSS 2.5-M" and rec.instrument == "SDSS"
    assert rec.aperture == pytest.approx(3 / 3600)
    assert rec.exptime == 2701.0
    assert rec.t_min == pytest.approx(4457164584.0 / 86400)
    assert rec.t_max == pytest.approx(4457167285.0 / 86400)
    # ivar == 0: error unknown and the pixel flagged; ivar 4 -> error 0.5
    assert np.isnan(rec.error[100:110]).all()
    assert (rec.quality[100:110] & BAD_PIXEL).all()
    assert rec.error[0] == pytest.approx(0.5)
    assert rec.quality[200] == 1 << 16 and rec.quality[0] == 0
    assert rec.warnings == []


def test_sdss_boss_fibre_and_missing_bunit():
    rec = single(sdss_file(plate=3586, run2d="v5_13_2", bunit=None, cls="QSO"))
    assert rec.aperture == pytest.approx(2 / 3600)
    assert rec.instrument == "BOSS"
    assert rec.target_class == "qso"
    assert rec.flux_unit == "1e-17 erg / (Angstrom s cm2)"
    assert has_warning(rec, "no BUNIT")


def test_sdss_unknown_spectrograph_gives_no_aperture():
    rec = single(sdss_file(plate=3300, run2d=None))
    assert rec.aperture is None


# ----------------------------------------------------------------------------- 1-D images


def test_image_linear_cdelt_angstrom():
    data = image1d(
        CRVAL1=4000.0,
        CRPIX1=1.0,
        CDELT1=2.0,
        CTYPE1="LINEAR",
        CUNIT1="Angstrom",
        BUNIT="erg/cm2/s/A",
        OBJECT=" NGC 1068 ",
        RA=40.669629,
        DEC=-0.013281,
        RADESYS="ICRS",
        TELESCOP="INT",
        INSTRUME="IDS",
        EXPTIME=600.0,
        DATE_OBS="1995-10-12T01:02:03",
    )
    rec = single(data, "ngc1068.fits")
    assert rec.file_format == "image1d"
    assert rec.n_pix == 1500
    assert rec.wave_min == pytest.approx(4000e-10)
    assert rec.wave_max == pytest.approx((4000 + 2 * 1499) * 1e-10)
    assert rec.target_name == "NGC 1068"
    assert rec.position == RawPosition(40.669629, -0.013281, "icrs", None)
    assert rec.flux_unit == CGS_FLAM and rec.calib_level == 2
    assert rec.t_min == pytest.approx(50002 + (3600 + 120 + 3) / 86400)  # MJD 50000 = 1995-10-10
    assert rec.t_max == pytest.approx(rec.t_min + 600 / 86400)
    assert rec.obs_id == "ngc1068" and rec.origin_id == "ngc1068.fits"
    assert np.isnan(rec.error).all() and rec.snr is None


def test_image_cd1_1_crpix_nm():
    rec = single(image1d(CRVAL1=500.0, CRPIX1=11.0, CD1_1=0.1, CTYPE1="WAVE", CUNIT1="nm"))
    assert rec.wave_min == pytest.approx((500 - 1.0) * 1e-9)
    assert rec.wave_max == pytest.approx((500 - 1.0 + 0.1 * 1499) * 1e-9)


def test_image_dc_flag_log_wavelength():
    rec = single(image1d(CRVAL1=3.6, CDELT1=1e-4, CTYPE1="LINEAR", DC_FLAG=1))
    assert rec.wave_min == pytest.approx(10**3.6 * 1e-10)
    assert rec.wave_max == pytest.approx(10 ** (3.6 + 1e-4 * 1499) * 1e-10)


def test_image_without_cunit_assumes_angstrom_with_warning():
    rec = single(image1d(CRVAL1=6000.0, CDELT1=1.0))
    assert rec.wave_min == pytest.approx(6000e-10)
    assert has_warning(rec, "Angstrom")


@pytest.mark.parametrize("shape", [(1, 1500), (1, 1, 1500)])
def test_image_degenerate_axes(shape):
    rec = single(image1d(shape=shape, CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom"))
    assert rec.n_pix == 1500


def test_image_fk4_b1950_sexagesimal_and_string_equinox():
    data = image1d(
        CRVAL1=4000.0,
        CDELT1=1.0,
        CUNIT1="Angstrom",
        RA="12:34:56.78",
        DEC="-45:12:01.2",
        RADECSYS="FK4",
        EQUINOX="1950.0",
        BUNIT="ADU",
    )
    rec = single(data)
    assert rec.position.frame == "fk4" and rec.position.equinox == "B1950"
    assert rec.position.lon_deg == pytest.approx((12 + 34 / 60 + 56.78 / 3600) * 15)
    assert rec.position.lat_deg == pytest.approx(-(45 + 12 / 60 + 1.2 / 3600))
    assert has_warning(rec, "EQUINOX given as the string")
    assert rec.flux_unit == "adu" and rec.calib_level == 1


def test_image_equinox_without_radesys_follows_fits_rules():
    rec = single(image1d(CRVAL1=4000.0, CDELT1=1.0, RA=10.0, DEC=20.0, EQUINOX=1950.0))
    assert rec.position == RawPosition(10.0, 20.0, "fk4", "B1950")
    rec = single(image1d(CRVAL1=4000.0, CDELT1=1.0, RA=10.0, DEC=20.0, EQUINOX=2000.0))
    assert rec.position == RawPosition(10.0, 20.0, "fk5", "J2000")


def test_image_error_extension_variance_and_sigma():
    var = fits.ImageHDU(np.full(1500, 4.0, np.float32), name="VARIANCE")
    rec = single(image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom", extensions=(var,)))
    assert rec.error[0] == pytest.approx(2.0)
    assert rec.snr == pytest.approx(np.median(np.linspace(100, 200, 1500)) / 2, rel=1e-3)
    sig = fits.ImageHDU(np.full(1500, 5.0, np.float32), name="ERR")
    rec = single(image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom", extensions=(sig,)))
    assert rec.error[0] == pytest.approx(5.0)


def test_image_iraf_bands_single_aperture():
    n = 1000
    cube = np.stack([np.full(n, 50.0), np.full(n, 60.0), np.full(n, 5.0), np.full(n, 2.0)])
    h = fits.Header()
    h["CTYPE1"] = "LINEAR"
    h["CRVAL1"] = 5000.0
    h["CDELT1"] = 0.5
    h["CUNIT1"] = "Angstrom"
    for i, band in enumerate(["spectrum", "raw", "background", "sigma - clean no"], start=1):
        h[f"BANDID{i}"] = band
    rec = single(to_bytes(fits.PrimaryHDU(cube.reshape(4, 1, n).astype(np.float32), h)))
    assert rec.n_pix == n and rec.flux[0] == 50.0
    assert rec.error[0] == 2.0 and rec.snr == pytest.approx(25.0)


def test_image_iraf_multispec_single_aperture_dispersion():
    h = fits.Header()
    h["WAT0_001"] = "system=multispec"
    h["WAT1_001"] = "wtype=multispec label=Wavelength units=angstroms"
    h["WAT2_001"] = 'wtype=multispec spec1 = "1 1 0 4500. 0.25 1500 0. 10.0 20.0"'
    h["CTYPE1"] = "MULTISPE"
    h["CTYPE2"] = "MULTISPE"
    data = np.ones((1, 1500), np.float32)
    rec = single(to_bytes(fits.PrimaryHDU(data, h)))
    assert rec.wave_min == pytest.approx(4500e-10)
    assert rec.wave_max == pytest.approx((4500 + 0.25 * 1499) * 1e-10)


# ----------------------------------------------------------------------------- 2dF multi-fibre


def test_2df_program_fibres_only():
    records = read_spectra(twodf_file("PSPFPN"), "12mar10031red.fits")
    assert [r.target_name for r in records] == ["target_0", "target_2", "target_4"]
    assert [r.file_index for r in records] == [0, 1, 2]
    first = records[0]
    assert first.file_format == "image1d"
    assert first.position.frame == "fk5" and first.position.equinox == "J2000"
    assert first.position.lon_deg == pytest.approx(150.0)
    assert records[1].position.lat_deg == pytest.approx(2.22)
    assert first.n_pix == 800
    assert first.wave_min == pytest.approx(5800e-10)
    assert first.wave_max == pytest.approx((5800 + 2.1 * 799) * 1e-10)
    assert first.error[0] == pytest.approx(2.0)
    assert np.isnan(first.error[5]) and first.quality[5] & BAD_PIXEL
    assert first.calib_level == 1
    assert first.aperture == pytest.approx(2.1 / 3600)
    assert first.t_min == pytest.approx(56000.5)
    assert records[2].flux[0] == pytest.approx(4 * 800 + 10)
    assert len({r.obs_id for r in records}) == 3


# ----------------------------------------------------------------------------- generic tables


def test_table_one_row_per_pixel_unitless_wavelength_and_ivar():
    n = 1200
    wave = np.linspace(3800, 9200, n)
    ivar = np.full(n, 0.25)
    ivar[7] = 0
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="wavelength", format="D", array=wave),
            fits.Column(name="flux", format="E", unit="erg/s/cm2/Angstrom", array=np.ones(n)),
            fits.Column(name="ivar", format="E", array=ivar),
        ]
    )
    primary = fits.PrimaryHDU()
    primary.header["OBJECT"] = "PG 1159-035"
    primary.header["RA"] = 180.5
    primary.header["DEC"] = -3.76
    primary.header["RADESYS"] = "ICRS"
    rec = single(to_bytes(primary, table))
    assert rec.file_format == "bintable"
    assert rec.n_pix == n
    assert rec.wave_min == pytest.approx(3800e-10) and rec.wave_max == pytest.approx(9200e-10)
    assert has_warning(rec, "no wavelength unit")
    assert rec.error[0] == pytest.approx(2.0)
    assert np.isnan(rec.error[7]) and rec.quality[7] & BAD_PIXEL
    assert rec.snr == pytest.approx(0.5)
    assert rec.position == RawPosition(180.5, -3.76, "icrs", None)
    assert rec.calib_level == 2


def test_table_unitless_nanometres_inferred():
    n = 100
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="LAMBDA", format="D", array=np.linspace(400, 900, n)),
            fits.Column(name="FLAM", format="E", array=np.ones(n)),
        ]
    )
    rec = single(to_bytes(fits.PrimaryHDU(), table))
    assert rec.wave_min == pytest.approx(400e-9)
    assert has_warning(rec, "nm assumed")


def test_table_variance_and_loglam():
    n = 300
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="LOGLAM", format="D", array=3.6 + 1e-4 * np.arange(n)),
            fits.Column(name="SPEC", format="E", unit="Jy", array=np.full(n, 3.0)),
            fits.Column(name="VAR", format="E", array=np.full(n, 9.0)),
        ]
    )
    rec = single(to_bytes(fits.PrimaryHDU(), table))
    assert rec.wave_min == pytest.approx(10**3.6 * 1e-10)
    assert rec.error[0] == pytest.approx(3.0) and rec.snr == pytest.approx(1.0)
    assert rec.flux_unit == "Jy" and rec.calib_level == 2


def test_table_rows_of_arrays_with_row_positions():
    n, rows = 400, 3
    cols = [
        fits.Column(
            name="WAVE",
            format=f"{n}E",
            unit="Angstrom",
            array=np.tile(np.linspace(4000, 7000, n), (rows, 1)),
        ),
        fits.Column(
            name="FLUX", format=f"{n}E", unit="erg/(s cm2 Angstrom)", array=np.ones((rows, n))
        ),
        fits.Column(name="ERR", format=f"{n}E", array=np.full((rows, n), 0.1)),
        fits.Column(name="NAME", format="12A", array=np.array(["a", "b", "c"])),
        fits.Column(name="RA", format="D", array=np.array([1.0, 2.0, 3.0])),
        fits.Column(name="DEC", format="D", array=np.array([-1.0, -2.0, -3.0])),
    ]
    table = fits.BinTableHDU.from_columns(cols)
    primary = fits.PrimaryHDU()
    primary.header["RADESYS"] = "FK5"
    primary.header["EQUINOX"] = 2000.0
    records = read_spectra(to_bytes(primary, table), "rows.fits")
    assert [r.target_name for r in records] == ["a", "b", "c"]
    assert records[2].position == RawPosition(3.0, -3.0, "fk5", "J2000")
    assert all(r.n_pix == n for r in records)
    assert records[0].snr == pytest.approx(10.0)


def test_table_rows_of_arrays_header_position():
    n = 50
    cols = [
        fits.Column(
            name="WAVE", format=f"{n}D", unit="um", array=np.tile(np.linspace(1, 2.5, n), (2, 1))
        ),
        fits.Column(name="FLUX", format=f"{n}E", unit="W/(m2 um)", array=np.ones((2, n))),
    ]
    table = fits.BinTableHDU.from_columns(cols)
    table.header["RA"] = 83.82
    table.header["DEC"] = -5.39
    table.header["RADESYS"] = "ICRS"
    records = read_spectra(to_bytes(fits.PrimaryHDU(), table), "x.fits")
    assert len(records) == 2
    assert records[1].position == RawPosition(83.82, -5.39, "icrs", None)
    assert records[0].wave_max == pytest.approx(2.5e-6)


def test_table_without_any_position():
    n = 20
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="WAVE", format="D", unit="nm", array=np.linspace(500, 510, n)),
            fits.Column(name="FLUX", format="D", array=np.ones(n)),
        ]
    )
    rec = single(to_bytes(fits.PrimaryHDU(), table))
    assert rec.position is None and has_warning(rec, "no position in header")
    assert rec.flux.dtype == np.float64
    assert has_warning(rec, "no flux unit") and rec.calib_level == 1


# ----------------------------------------------------------------------------- rejections


def reason(exc_type: type[Exception], data: bytes) -> str:
    with pytest.raises(exc_type) as info:
        read_spectra(data, "bad.fits")
    text = str(info.value)
    assert "\n" not in text
    return text


def test_truncated_file_says_promised_and_present_bytes():
    data = eso_file(n=5000)
    cut = data[: len(data) - 20000]
    text = reason(UnreadableFile, cut)
    assert "truncated" in text
    assert str(len(data)) in text and str(len(cut)) in text


def test_truncated_inside_header():
    text = reason(UnreadableFile, eso_file()[:1000])
    assert "truncated" in text


@pytest.mark.parametrize(
    "data", [b"", b"hello world, this is text", b"<html><body>404</body></html>", b"%PDF-1.4"]
)
def test_not_fits(data):
    assert "not a FITS file" in reason(UnreadableFile, data)


def test_truncated_and_corrupt_gzip():
    packed = gzip.compress(eso_file())
    assert "truncated" in reason(UnreadableFile, packed[: len(packed) // 2])
    damaged = bytearray(packed)
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    text = reason(UnreadableFile, bytes(damaged))
    assert "corrupt gzip" in text or "truncated" in text


def test_a_gzip_bomb_is_refused_before_it_inflates():
    """A few kB of gzip holding gigabytes of zeros would take the memory of the server: it is
    refused at the limit, across several gzip members too."""
    import tracemalloc

    from escape_vo.ingest.readers import read_spectra

    bomb = gzip.compress(b"SIMPLE  =" + bytes(3 << 30), compresslevel=9)  # 3 GiB of zeros
    assert len(bomb) < 4_000_000
    tracemalloc.start()
    with pytest.raises(UnreadableFile, match=r"inflates to more than 1073\.74 MB"):
        read_spectra(bomb, "bomb.fits.gz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < (1 << 30) + (64 << 20)  # the limit and a step, never the 3 GiB
    members = gzip.compress(eso_file()) * 3
    with pytest.raises(UnreadableFile, match="inflates to more than"):
        read_spectra(members, "three.fits.gz", max_inflated=2 * len(eso_file()))
    assert read_spectra(members, "three.fits.gz", max_inflated=3 * len(eso_file()))


def test_raw_2d_image():
    data = to_bytes(fits.PrimaryHDU(np.zeros((300, 400), np.uint16)))
    assert "2-d image (400 x 300 pixels) without a spectral axis" in reason(NotASpectrum, data)


def test_2d_echelle_iraf_multispec():
    h = fits.Header()
    h["WAT0_001"] = "system=multispec"
    h["WAT1_001"] = "wtype=multispec label=Wavelength units=angstroms"
    h["WAT2_001"] = 'wtype=multispec spec1 = "1 1 0 4500. 0.05 2048 0. 1. 2." spec2 = "2 2 0 4'
    h["WAT2_002"] = '560. 0.05 2048 0. 3. 4."'
    h["CTYPE1"] = "MULTISPE"
    text = reason(NotASpectrum, to_bytes(fits.PrimaryHDU(np.ones((40, 2048), np.float32), h)))
    assert "echelle" in text and "merge" in text


def test_2d_echelle_spectral_wcs_rows_are_orders():
    h = fits.Header()
    h["CTYPE1"] = "WAVE"
    h["CRVAL1"] = 3800.0
    h["CDELT1"] = 0.02
    h["CUNIT1"] = "Angstrom"
    text = reason(NotASpectrum, to_bytes(fits.PrimaryHDU(np.ones((72, 4096), np.float32), h)))
    assert "echelle" in text and "merge" in text


def test_coefficient_table():
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="ORDER", format="J", array=np.arange(5)),
            fits.Column(name="COEFFS", format="6D", array=np.ones((5, 6))),
            fits.Column(name="RMS", format="D", array=np.ones(5)),
        ],
        name="WAVE_SOLUTION",
    )
    text = reason(NotASpectrum, to_bytes(fits.PrimaryHDU(), table))
    assert "no wavelength" in text and "COEFFS" in text and "ORDER" in text


def test_parameter_samples_table():
    rng = np.random.default_rng(0)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=c, format="D", array=rng.normal(size=1000))
            for c in ("teff", "logg", "feh", "lnprob")
        ],
        name="SAMPLES",
    )
    text = reason(NotASpectrum, to_bytes(fits.PrimaryHDU(), table))
    assert "no wavelength" in text and "teff" in text and "lnprob" in text


def test_lone_error_array():
    h = fits.Header()
    h["EXTNAME"] = "ERROR"
    h["CRVAL1"] = 4000.0
    h["CDELT1"] = 1.0
    text = reason(NotASpectrum, to_bytes(fits.PrimaryHDU(np.ones(100, np.float32), h)))
    assert "error array" in text
    var = fits.ImageHDU(np.ones(100, np.float32), name="VARIANCE")
    assert "error array" in reason(NotASpectrum, to_bytes(fits.PrimaryHDU(), var))
    h = fits.Header()
    h["HDUCLAS2"] = "ERROR"
    assert "error array" in reason(NotASpectrum, to_bytes(fits.PrimaryHDU(np.ones(10), h)))


def test_other_non_spectra():
    assert "no data" in reason(NotASpectrum, to_bytes(fits.PrimaryHDU()))
    assert "cube" in reason(NotASpectrum, to_bytes(fits.PrimaryHDU(np.ones((4, 5, 6)))))
    no_wcs = to_bytes(fits.PrimaryHDU(np.ones(100, np.float32)))
    assert "without a wavelength axis" in reason(NotASpectrum, no_wcs)
    h = fits.Header()
    h["CTYPE1"], h["CRVAL1"], h["CDELT1"] = "WAVE", 4000.0, 0.0
    flat = to_bytes(fits.PrimaryHDU(np.ones(100, np.float32), h))
    assert "step of 0 (CDELT1 or CD1_1 is 0)" in reason(NotASpectrum, flat)
    h = fits.Header()
    h["CTYPE1"] = "RA---TAN"
    h["CRVAL1"] = 10.0
    h["CDELT1"] = 0.001
    assert "not a spectral axis" in reason(NotASpectrum, to_bytes(fits.PrimaryHDU(np.ones(50), h)))
    h = fits.Header()
    h["CTYPE1"] = "WAVE"
    h["CRVAL1"] = 4000.0
    h["CDELT1"] = 1.0
    h["CUNIT1"] = "Angstrom"
    h["CTYPE2"] = "LINEAR"
    h["CUNIT2"] = "arcsec"
    longslit = to_bytes(fits.PrimaryHDU(np.ones((200, 1000), np.float32), h))
    assert "long-slit" in reason(NotASpectrum, longslit)


def test_broken_structure_never_leaks_other_exceptions():
    good = eso_file(n=300)
    rng = np.random.default_rng(42)
    for _ in range(200):
        data = bytearray(good)
        for pos in rng.integers(0, 2880 * 3, size=3):
            data[pos] = rng.integers(0, 256)
        with contextlib.suppress(UnreadableFile, NotASpectrum):
            read_spectra(bytes(data), "fuzz.fits")
    bad_tform = set_card(good, "TFORM1", "TFORM1  = 'garbage'")
    assert "TFORM1" in reason(UnreadableFile, bad_tform)


# ----------------------------------------------------------------------------- header defects


def test_invalid_cards_tolerated():
    data = image1d(
        CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom", EXPTIME=300.0, OBSERVER="x", RA=1.0, DEC=2.0
    )
    data = set_card(data, "OBSERVER", "OBSERVER= 'Smith, J. (unterminated")
    data = set_card(data, "EXPTIME", "EXPTIME =  300.0 sec / exposure")
    data = set_card(data, "RA", "RA=10.5")
    rec = single(data)
    assert rec.n_pix == 1500
    assert rec.exptime is None
    assert rec.position.lon_deg == 10.5
    assert has_warning(rec, "EXPTIME") and has_warning(rec, "non-standard card")


def test_old_date_format_and_na_position():
    data = image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom", RA="N/A", DEC="N/A")
    data = set_card(data, "RA", "DATE-OBS= '12/03/98'")
    rec = single(data)
    assert rec.t_min == pytest.approx(50884.0)  # 1998-03-12
    assert has_warning(rec, "DD/MM/YY")
    assert rec.position is None and has_warning(rec, "no position in header")


def test_missing_end_card():
    data = image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom")
    data = set_card(data, "END", "")
    rec = single(data)
    assert rec.n_pix == 1500 and rec.flux[0] == pytest.approx(100.0)
    assert has_warning(rec, "missing END card")


def test_long_string_continue_and_trailing_bytes():
    long_name = "A very long target designation that does not fit in one card at all, really"
    data = image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom", OBJECT=long_name)
    rec = single(data + b"garbage after the end" * 10)
    assert rec.target_name == long_name
    assert has_warning(rec, "after the last HDU")


def test_integer_image_with_bscale_and_blank():
    h = fits.Header()
    for key, value in {
        "CRVAL1": 4000.0,
        "CDELT1": 1.0,
        "CUNIT1": "Angstrom",
        "BUNIT": "ct",
    }.items():
        h[key] = value
    hdu = fits.PrimaryHDU(np.arange(100, dtype=np.int16), h)
    hdu.header["BSCALE"] = 2.0
    hdu.header["BZERO"] = 10.0
    hdu.header["BLANK"] = 5
    rec = single(to_bytes(hdu))
    assert rec.flux[1] == pytest.approx(12.0)
    assert np.isnan(rec.flux[5]) and rec.quality[5] & BAD_PIXEL
    assert rec.calib_level == 1


# ----------------------------------------------------------------------------- more layouts


def test_coadd_table_of_another_archive_read_generically():
    """LAMOST-style COADD: one row of array columns WAVELENGTH/FLUX/IVAR, no loglam."""
    n = 600
    cols = [
        fits.Column(name="FLUX", format=f"{n}E", array=np.full((1, n), 8.0)),
        fits.Column(name="IVAR", format=f"{n}E", array=np.full((1, n), 0.25)),
        fits.Column(name="WAVELENGTH", format=f"{n}E", array=np.linspace(3700, 9100, n)[None]),
        fits.Column(name="ANDMASK", format=f"{n}E", array=np.zeros((1, n))),
    ]
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "LAMOST"
    primary.header["RA"] = 332.3
    primary.header["DEC"] = 28.1
    primary.header["BUNIT"] = "erg/s/cm2/A"
    rec = single(to_bytes(primary, fits.BinTableHDU.from_columns(cols, name="COADD")))
    assert rec.file_format == "bintable"
    assert rec.wave_min == pytest.approx(3700e-10)
    assert rec.snr == pytest.approx(4.0) and rec.calib_level == 2
    assert has_warning(rec, "Angstrom assumed")


def test_variable_length_array_columns():
    waves = [np.linspace(4000, 5000, 100), np.linspace(6000, 7000, 150)]
    fluxes = [np.ones(100), np.ones(150) * 2]
    cols = [
        fits.Column(
            name="WAVE", format="PD()", unit="Angstrom", array=np.array(waves, dtype=object)
        ),
        fits.Column(name="FLUX", format="PD()", unit="Jy", array=np.array(fluxes, dtype=object)),
    ]
    records = read_spectra(
        to_bytes(fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)), "v.fits"
    )
    assert [r.n_pix for r in records] == [100, 150]
    assert records[1].wave_min == pytest.approx(6000e-10) and records[1].flux[0] == 2.0


def test_ascii_table_one_row_per_pixel():
    n = 50
    cols = [
        fits.Column(name="LAMBDA", format="F10.3", unit="nm", array=np.linspace(400, 450, n)),
        fits.Column(name="FLUX", format="E14.6", unit="erg/s/cm2/nm", array=np.full(n, 2.5)),
        fits.Column(name="ERROR", format="E14.6", array=np.full(n, 0.5)),
    ]
    rec = single(to_bytes(fits.PrimaryHDU(), fits.TableHDU.from_columns(cols)))
    assert rec.n_pix == n and rec.wave_max == pytest.approx(450e-9)
    assert rec.snr == pytest.approx(5.0)


def test_wavelength_array_in_its_own_hdu():
    n = 300
    flux = fits.ImageHDU(np.full(n, 3.0, np.float32), name="FLUX")
    flux.header["BUNIT"] = "erg/s/cm2/Angstrom"
    wave = fits.ImageHDU(np.linspace(1.0, 2.5, n), name="WAVE")
    wave.header["BUNIT"] = "um"
    err = fits.ImageHDU(np.full(n, 1.5, np.float32), name="ERR")
    rec = single(to_bytes(fits.PrimaryHDU(), flux, err, wave))
    assert rec.wave_min == pytest.approx(1e-6) and rec.wave_max == pytest.approx(2.5e-6)
    assert rec.snr == pytest.approx(2.0)


def test_echelle_orders_as_table_rows():
    n, orders = 200, 30
    cols = [
        fits.Column(name="SPORDER", format="I", array=np.arange(orders)),
        fits.Column(name="WAVELENGTH", format=f"{n}D", unit="Angstrom", array=np.ones((orders, n))),
        fits.Column(name="FLUX", format=f"{n}E", array=np.ones((orders, n))),
    ]
    text = reason(NotASpectrum, to_bytes(fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)))
    assert "echelle" in text and "merge" in text


def test_tile_compressed_image_is_reported():
    hdu = fits.CompImageHDU(np.ones((64, 64), np.float32))
    assert "decompress" in reason(UnreadableFile, to_bytes(fits.PrimaryHDU(), hdu))


def test_stray_non_ascii_byte_in_header_tolerated():
    data = image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom", OBSERVER="Muller")
    i = data.find(b"Muller")
    data = data[: i + 1] + b"\xfc" + data[i + 2 :]
    rec = single(data)
    assert rec.n_pix == 1500


def test_image_without_position_warns():
    rec = single(image1d(CRVAL1=4000.0, CDELT1=1.0, CUNIT1="Angstrom"))
    assert rec.position is None and has_warning(rec, "no position in header")


def test_padding_without_wavelength_is_dropped():
    n = 1000
    wave = np.linspace(500, 600, n)
    wave[900:] = np.nan  # fixed-width cell padded after the last real pixel
    cols = [
        fits.Column(name="WAVE", format=f"{n}D", unit="nm", array=wave[None]),
        fits.Column(name="FLUX", format=f"{n}E", unit=ESO_FLUX_UNIT, array=np.ones((1, n))),
        fits.Column(name="ERR", format=f"{n}E", unit=ESO_FLUX_UNIT, array=np.ones((1, n))),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    rec = single(to_bytes(eso_primary(), table))
    assert rec.n_pix == 900 and rec.flux.size == rec.error.size == rec.quality.size == 900
    assert rec.wave_max == pytest.approx(wave[899] * 1e-9)
    assert has_warning(rec, "100 samples without a valid wavelength")
