"""FITS writers imitating real archive formats: ESO Phase 3, SDSS spec, long-slit, 2dF, tables.

Each writer turns a planned FileJob into the bytes of one FITS file and reports, per spectrum,
what it actually wrote (first/last wavelength in metres, pixel count, median S/N). Nothing here
reads the clock: dates and checksum comments come from the plan, so files are reproducible.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from escape_vo.demo.physics import (
    Noisy,
    add_noise,
    sigma_inst,
    sky_flux,
    source_flux,
    throughput,
)
from escape_vo.demo.plan import FileJob, Target, mjd_to_datetime, mjd_to_iso
from escape_vo.demo.positions import scatter_around


@dataclass(frozen=True, slots=True)
class Written:
    """What a writer put in the file for one spectrum (the per-file part of the truth)."""

    file_index: int
    wave_min: float  # metres, first pixel centre
    wave_max: float  # metres, last pixel centre
    n_pix: int
    snr: float


Writer = Callable[[FileJob, np.random.Generator], tuple[bytes, list[Written]]]

F32 = np.float32
ESO_FLUX_UNIT = "erg.cm**(-2).s**(-1).angstrom**(-1)"


def _observe(
    job: FileJob,
    target: Target,
    wave_aa: np.ndarray,
    rng: np.random.Generator,
    n_bad: int,
    scale: float = 1.0,
    response: np.ndarray | None = None,
) -> Noisy:
    """Model, turned into detector counts (ADU) if a response curve is given, plus noise."""
    model = source_flux(wave_aa, target.source, job.resolving_power, rng) * scale
    if response is not None:
        model = model * response
        positive = model[model > 0]
        level = float(np.median(positive)) if positive.size else 1.0
        model = model * (10 ** rng.uniform(2.0, 4.3) / level)
    return add_noise(model, target.snr, rng, n_bad)


def _big_endian(hdu: fits.BinTableHDU) -> fits.BinTableHDU:
    """The same table re-read from FITS-ordered bytes.

    astropy byte-swaps native tables with a Python loop over every element of array columns,
    three times (datasum, checksum, write): 20 ms for one ESO spectrum. A big-endian table
    takes its fast path, and the bytes written are identical (valid for tables without a heap,
    i.e. no variable-length columns, which is all this module writes).
    """
    arr = np.asarray(hdu.data).view(np.ndarray)
    raw = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    raw += b"\0" * (-len(raw) % 2880)
    return fits.BinTableHDU.fromstring(hdu.header.tostring().encode("ascii") + raw)


def _to_bytes(
    hdus: list[fits.PrimaryHDU | fits.ImageHDU | fits.BinTableHDU], checksum_when: str | None
) -> bytes:
    """Serialise; checksums get a fixed 'updated' comment instead of the current time."""
    hdus = [_big_endian(h) if isinstance(h, fits.BinTableHDU) else h for h in hdus]
    head = hdus[0].header
    if len(hdus) > 1 and "EXTEND" not in head:  # astropy adds it while writing: too late
        head.set("EXTEND", True, after=f"NAXIS{head['NAXIS']}" if head["NAXIS"] else "NAXIS")
    if checksum_when is not None:
        for hdu in hdus:
            hdu.add_datasum(when=f"data unit checksum updated {checksum_when}")
            hdu.add_checksum(when=f"HDU checksum updated {checksum_when}", override_datasum=True)
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def _release(job: FileJob, days: float) -> str:
    return mjd_to_iso(job.mjd + days, 0)


# --------------------------------------------------------------------------- ESO Phase 3

_ESO_ARC = {"HARPS": "HARPS", "FEROS": "FEROS", "UVES": "UVES", "XSHOOTER": "XSHOO"}
_ESO_SOFT = {
    "HARPS": "harps/3.8",
    "FEROS": "feros/1.5",
    "UVES": "uves/5.10.4",
    "XSHOOTER": "xshoo/3.5.3",
}
_ERR_UCD = "stat.error;phot.flux.density;meta.main"
_QUAL_UTYPE = "FluxAxis.Accuracy.QualityStatus"
_UTYPE = {
    "SPECTRUM V1.0": "spec:Data.{}",
    "SPECTRUM V2.0": "spec:Spectrum.Data.{}",
}


def write_eso(job: FileJob, rng: np.random.Generator) -> tuple[bytes, list[Written]]:
    """ESO science data product: header-only primary plus a one-row table of array columns."""
    o, t, n = job.opts, job.targets[0], job.n_pix
    angstrom = o["wave_unit"] == "angstrom"
    col = (
        np.linspace(job.wmin_aa, job.wmax_aa, n)
        if angstrom
        else np.linspace(job.wmin_aa / 10, job.wmax_aa / 10, n)
    )
    wave_aa = col if angstrom else col * 10.0
    to_m, to_nm = (1e-10, 0.1) if angstrom else (1e-9, 1.0)
    uncal = o["fluxcal"] == "UNCALIBRATED"
    n_bad = int(rng.integers(0, 9)) if o["qual"] else 0
    response = throughput(wave_aa, rng) if uncal else None
    noisy = _observe(job, t, wave_aa, rng, n_bad, response=response)
    snr = round(noisy.snr, 2)
    key = job.inst.key
    date_obs = mjd_to_iso(job.mjd)
    arcfile = f"{_ESO_ARC[key]}.{date_obs}.fits"
    mjd_end = job.mjd + job.exptime / 86400.0
    wmin_nm, wmax_nm = float(col[0] * to_nm), float(col[-1] * to_nm)
    release = _release(job, o["release_days"])
    ra, dec = t.written if t.written else (None, None)

    p = fits.Header()
    p["ORIGIN"] = ("ESO", "European Southern Observatory")
    p["DATE"] = (release, "Date the file was written")
    p["TELESCOP"] = (job.inst.telescop, "ESO Telescope Designation")
    p["INSTRUME"] = (job.inst.instrume, "Instrument used")
    p["OBJECT"] = (t.name, "Target designation")
    p["RA"] = (ra, "[deg] Spectroscopic target position (J2000.0)")
    p["DEC"] = (dec, "[deg] Spectroscopic target position (J2000.0)")
    p["EQUINOX"] = (2000.0, "Standard FK5 (years)")
    p["RADESYS"] = ("FK5" if t.style == "fk5-deg" else "ICRS", "Coordinate reference frame")
    p["TIMESYS"] = ("UTC", "Time system")
    p["EXPTIME"] = (job.exptime, "[s] Total integration time per pixel")
    p["TEXPTIME"] = (job.exptime, "[s] Total integration time of all exposures")
    p["MJD-OBS"] = (job.mjd, "[d] Start of observations (days)")
    p["MJD-END"] = (round(mjd_end, 8), "[d] End of observations (days)")
    p["DATE-OBS"] = (date_obs, "Date of observation")
    p["PRODCATG"] = ("SCIENCE.SPECTRUM", "Data product category")
    p["PROG_ID"] = (o["prog_id"], "ESO programme identification")
    p["OBID1"] = (o["obid"], "Observation block ID")
    p["M_EPOCH"] = (False, "TRUE if resulting from multiple epochs")
    p["PROV1"] = (arcfile, "Originating raw science file")
    p["NCOMBINE"] = (1, "No. of combined raw science data files")
    p["OBSTECH"] = ("ECHELLE,SLIT" if key in ("UVES", "XSHOOTER") else "ECHELLE", "Technique")
    p["PROCSOFT"] = (_ESO_SOFT[key], "ESO pipeline version")
    p["FLUXCAL"] = (o["fluxcal"], "Type of flux calibration")
    p["CONTNORM"] = (False, "TRUE if normalised to the continuum")
    p["TOT_FLUX"] = (False, "TRUE if all source flux is captured")
    p["FLUXERR"] = (-2 if uncal else 10.0, "Uncertainty in flux scale (%)")
    p["WAVELMIN"] = (wmin_nm, "[nm] Minimum wavelength")
    p["WAVELMAX"] = (wmax_nm, "[nm] Maximum wavelength")
    p["SPEC_BIN"] = ((wmax_nm - wmin_nm) / (n - 1), "[nm] Wavelength bin size")
    p["SPEC_RES"] = (job.resolving_power, "Reference spectral resolving power")
    p["SPECSYS"] = (o["specsys"], "Frame of reference for spectral coordinates")
    p["SNR"] = (snr, "Median signal to noise ratio per order")
    p["APERTURE"] = (job.inst.aperture_arcsec / 3600.0, "[deg] Aperture diameter")
    p["ARCFILE"] = (arcfile, "Archive file name")
    p["HIERARCH ESO OBS NAME"] = (f"OB_{o['obid']}", "OB name")
    p["HIERARCH ESO OBS PROG ID"] = (o["prog_id"], "ESO program identification")
    p["HIERARCH ESO TEL AIRM START"] = (o["airmass"], "Airmass at start")
    if job.setting.name:
        arm_key = "HIERARCH ESO SEQ ARM" if key == "XSHOOTER" else "HIERARCH ESO INS PATH"
        p[arm_key] = (job.setting.name, "Instrument arm / setting")
    primary = fits.PrimaryHDU(header=p)

    v2 = o["voclass"] == "SPECTRUM V2.0"
    err_name = "ERR_FLUX" if v2 else "ERR"
    flux_unit = "adu" if uncal else ESO_FLUX_UNIT
    dim = f"({n})"
    flux_ucd = "phot.flux.density;em.wl;src.net;meta.main"
    columns = [
        ("WAVE", "D", o["wave_unit"], col, "SpectralAxis.Value", "em.wl;obs.atmos"),
        ("FLUX", "E", flux_unit, noisy.flux, "FluxAxis.Value", flux_ucd),
        (err_name, "E", flux_unit, noisy.error, "FluxAxis.Accuracy.StatError", _ERR_UCD),
    ]
    if o["qual"]:
        qual = np.where(noisy.bad, rng.choice([1, 2, 16384], size=n), 0).astype(np.int32)
        columns.append(("QUAL", "J", None, qual, _QUAL_UTYPE, "meta.code.qual;meta.main"))
    fits_cols = [
        fits.Column(name=name, format=f"{n}{code}", unit=unit, dim=dim, array=arr[None, :])
        for name, code, unit, arr, _, _ in columns
    ]
    ext = fits.BinTableHDU.from_columns(fits_cols, name=o["extname"])
    h = ext.header
    for i, (_, _, _, _, utype, ucd) in enumerate(columns, start=1):
        h.set(f"TUTYP{i}", _UTYPE[o["voclass"]].format(utype), after=f"TDIM{i}")
        h.set(f"TUCD{i}", ucd, after=f"TUTYP{i}")
    h["VOCLASS"] = (o["voclass"], "VO Data Model")
    h["VOPUB"] = ("ESO/SAF", "VO Publishing Authority")
    h["TITLE"] = (f"{t.name} {job.inst.instrume} {date_obs[:10]}", "Dataset title")
    h["OBJECT"] = (t.name, "Target designation")
    h["RA"] = (ra, "[deg] Spectroscopic target position")
    h["DEC"] = (dec, "[deg] Spectroscopic target position")
    h["APERTURE"] = (job.inst.aperture_arcsec / 3600.0, "[deg] Aperture diameter")
    h["TELAPSE"] = (round((mjd_end - job.mjd) * 86400.0, 3), "[s] Total elapsed time")
    h["TMID"] = (round((job.mjd + mjd_end) / 2, 8), "[d] MJD mid exposure")
    h["SPEC_VAL"] = ((wmin_nm + wmax_nm) / 2, "[nm] Mean wavelength")
    h["SPEC_BW"] = (wmax_nm - wmin_nm, "[nm] Bandpass width = Wmax - Wmin")
    h["NELEM"] = (n, "Length of the data arrays")
    h["TDMIN1"] = (float(col[0]), "Start in spectral coordinate")
    h["TDMAX1"] = (float(col[-1]), "Stop in spectral coordinate")
    data = _to_bytes([primary, ext], release)
    return data, [Written(0, float(col[0]) * to_m, float(col[-1]) * to_m, n, snr)]


# --------------------------------------------------------------------------- SDSS / BOSS


def write_sdss(job: FileJob, rng: np.random.Generator) -> tuple[bytes, list[Written]]:
    """spec-PLATE-MJD-FIBER.fits: COADD table (one row per pixel, log-lambda) and SPECOBJ."""
    o, t = job.opts, job.targets[0]
    coeff0 = round(float(np.log10(job.wmin_aa)), 4)
    top = float(np.log10(job.wmax_aa))
    if job.forced_npix:
        n = job.n_pix
        coeff1 = (top - coeff0) / (n - 1)
    else:
        coeff1 = 1e-4
        n = int(np.floor((top - coeff0) / coeff1 + 1e-9)) + 1
    loglam = (coeff0 + coeff1 * np.arange(n)).astype(F32)
    wave = 10.0 ** loglam.astype(np.float64)
    noisy = _observe(job, t, wave, rng, int(rng.integers(0, 9)), scale=1e17)
    snr = round(noisy.snr, 2)
    sky = sky_flux(wave, job.resolving_power) * rng.uniform(20, 60)
    and_mask = np.where(noisy.bad, 1 << rng.choice([16, 18, 19, 22], size=n), 0).astype(np.int32)
    bright = sky > np.percentile(sky, 99)
    or_mask = (and_mask | np.where(bright, 1 << 17, 0)).astype(np.int32)
    ivar = np.where(noisy.bad, 0.0, 1.0 / noisy.error**2).astype(F32)
    flux = np.where(noisy.bad, 0.0, noisy.flux).astype(F32)
    disp_aa = wave * np.log(10) * coeff1
    wdisp = (sigma_inst(wave, job.resolving_power) / disp_aa).astype(F32)
    plate, fiber, mjd = o["plate"], o["fiber"], int(job.mjd)
    boss = job.inst.key == "BOSS"
    ra, dec = t.written
    cls = t.source.obj_class.upper()
    subclass = t.source.subclass.upper() if t.source.obj_class == "galaxy" else t.source.subclass
    if t.source.subclass == "passive":
        subclass = ""
    objtype = {"STAR": "SPECTROPHOTO_STD", "QSO": "QSO", "GALAXY": "GALAXY"}[cls]
    when = mjd_to_datetime(job.mjd)

    p = fits.Header()
    p["TELESCOP"] = ("SDSS 2.5-M", "Sloan Digital Sky Survey")
    p["INSTRUME"] = (job.inst.instrume, "Spectrograph")
    p["FLAVOR"] = ("science", "exposure type, SDSS spectro style")
    p["RUN2D"] = ("v5_13_0" if boss else "26", "Spectro-2D reduction name")
    p["MJD"] = (mjd, "APO fMJD day at start of exposure")
    p["MJDLIST"] = (str(mjd), "")
    p["PLATEID"] = (plate, "SDSS plate ID")
    p["TILEID"] = (int(plate * 3 % 20000) + 1, "Cartridge used in this plugging")
    p["CARTID"] = (int(rng.integers(1, 17)), "Cartridge used in this plugging")
    p["NAME"] = (f"{plate}-{mjd}-01", "Name of plugmap")
    p["FIBERID"] = (fiber, "Fiber number")
    p["OBJTYPE"] = (objtype, "Why this object was targetted")
    p["PLUG_RA"] = (ra, "[deg] RA of object (FK5 J2000)")
    p["PLUG_DEC"] = (dec, "[deg] Dec of object (FK5 J2000)")
    cra = (ra + o["centre_offset"][0]) % 360.0
    cdec = float(np.clip(dec + o["centre_offset"][1], -89.9, 89.9))
    p["RADEG"] = (round(cra, 5), "[deg] RA of telescope (plate centre)")
    p["DECDEG"] = (round(cdec, 5), "[deg] Dec of telescope (plate centre)")
    p["RADECSYS"] = ("FK5", "")
    p["EQUINOX"] = (2000.0, "")
    p["DATE-OBS"] = (when.strftime("%Y-%m-%dT%H:%M:%S"), "TAI date at start of integration")
    p["TAI-BEG"] = (round(job.mjd * 86400.0, 2), "MJD(TAI) seconds at start of integration")
    p["TAI-END"] = (round(job.mjd * 86400.0 + job.exptime, 2), "")
    p["AIRMASS"] = (o["airmass"], "Airmass at mid-exposure")
    p["EXPTIME"] = (job.exptime, "Minimum of exposure times for all cameras")
    p["NEXP"] = (4, "Number of exposures in this file")
    p["BUNIT"] = ("1E-17 erg/cm^2/s/Ang", "")
    p["COEFF0"] = (coeff0, "Central wavelength (log10) of first pixel")
    p["COEFF1"] = (coeff1, "Log10 dispersion per pixel")
    p["DC-FLAG"] = (1, "Log-linear flag")
    p["SPEC_ID"] = (f"{plate:04d}-{mjd:05d}-{fiber:04d}", "")
    primary = fits.PrimaryHDU(header=p)

    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column("flux", "E", array=flux),
            fits.Column("loglam", "E", array=loglam),
            fits.Column("ivar", "E", array=ivar),
            fits.Column("and_mask", "J", array=and_mask),
            fits.Column("or_mask", "J", array=or_mask),
            fits.Column("wdisp", "E", array=wdisp),
            fits.Column("sky", "E", array=sky.astype(F32)),
            fits.Column("model", "E", array=noisy.model.astype(F32)),
        ],
        name="COADD",
    )
    bands = np.array([0.6, 1.0, 1.1, 1.05, 0.8], dtype=F32) * F32(snr)
    z_err = abs(rng.normal(0, 3e-5 if cls != "QSO" else 5e-4))
    specobj = fits.BinTableHDU.from_columns(
        [
            fits.Column("SURVEY", "8A", array=["boss" if boss else "sdss"]),
            fits.Column("INSTRUMENT", "8A", array=[job.inst.instrume]),
            fits.Column("RUN2D", "8A", array=[p["RUN2D"]]),
            fits.Column("PLATE", "J", array=[plate]),
            fits.Column("MJD", "J", array=[mjd]),
            fits.Column("FIBERID", "J", array=[fiber]),
            fits.Column("OBJTYPE", "16A", array=[objtype]),
            fits.Column("PLUG_RA", "D", array=[ra]),
            fits.Column("PLUG_DEC", "D", array=[dec]),
            fits.Column("CLASS", "6A", array=[cls]),
            fits.Column("SUBCLASS", "21A", array=[subclass]),
            fits.Column("Z", "E", array=[t.source.redshift]),
            fits.Column("Z_ERR", "E", array=[z_err]),
            fits.Column("ZWARNING", "J", array=[0]),
            fits.Column("RCHI2", "E", array=[rng.uniform(0.9, 1.3)]),
            fits.Column("SN_MEDIAN_ALL", "E", array=[snr]),
            fits.Column("SN_MEDIAN", "5E", array=bands[None, :]),
            fits.Column("WAVEMIN", "E", array=[float(wave[0])]),
            fits.Column("WAVEMAX", "E", array=[float(wave[-1])]),
            fits.Column("WCOVERAGE", "E", array=[float(loglam[-1] - loglam[0])]),
            fits.Column("SPECPRIMARY", "B", array=[1]),
            fits.Column(
                "SPECOBJID",
                "19A",
                array=[str((plate << 50) + (fiber << 38) + ((mjd - 50000) << 24))],
            ),
        ],
        name="SPECOBJ",
    )
    data = _to_bytes([primary, coadd, specobj], when.strftime("%Y-%m-%dT12:00:00"))
    return data, [Written(0, float(wave[0]) * 1e-10, float(wave[-1]) * 1e-10, n, snr)]


# --------------------------------------------------------------------------- long-slit 1-D


def _linear_axis(job: FileJob, log: bool, centre: bool) -> tuple[float, float, float]:
    """(CRVAL1, CRPIX1, CDELT1) rounded like an old reduction package would write them."""
    n = job.n_pix
    crpix = float((n + 1) // 2) if centre else 1.0
    if log:
        lo, hi = np.log10(job.wmin_aa), np.log10(job.wmax_aa)
        cdelt = round(float(hi - lo) / (n - 1), 8)
        return round(float(lo) + (crpix - 1) * cdelt, 6), crpix, cdelt
    cdelt = round((job.wmax_aa - job.wmin_aa) / (n - 1), 5)
    return round(job.wmin_aa + (crpix - 1) * cdelt, 3), crpix, cdelt


def write_image1d(job: FileJob, rng: np.random.Generator) -> tuple[bytes, list[Written]]:
    """Primary 1-D image with a wavelength WCS, as IRAF/MIDAS long-slit reductions left them."""
    o, t, n = job.opts, job.targets[0], job.n_pix
    wcs = o["wcs"]
    crval, crpix, cdelt = _linear_axis(job, wcs == "log", o["crpix_centre"])
    axis = crval + (np.arange(n) + 1 - crpix) * cdelt
    wave = 10.0**axis if wcs == "log" else axis
    response = None if o["fluxcal"] else throughput(wave, rng)
    noisy = _observe(job, t, wave, rng, 0, response=response)
    when = mjd_to_datetime(job.mjd)
    h = fits.Header()
    h["OBJECT"] = (t.name, "")
    h["TELESCOP"] = (job.inst.telescop, "")
    h["INSTRUME"] = (job.inst.instrume, "")
    h["OBSERVER"] = ("unknown", "")
    h["IMAGETYP"] = ("OBJECT", "")
    h["EXPTIME"] = (job.exptime, "exposure time (s)")
    defects = o["defects"]
    h["DATE-OBS"] = when.strftime("%d/%m/%y") if "ddmmyy" in defects else when.strftime("%Y-%m-%d")
    h["UT"] = (when.strftime("%H:%M:%S"), "UT at start of exposure")
    h["XXLOWKEY" if "lowercase" in defects else "AIRMASS"] = (o["airmass"], "")
    if "illegal" in defects:
        h["XXBADKEY"] = (job.setting.name or "open", "filter wheel position")
    if t.written is not None:
        fk4 = t.style == "fk4-sexa"
        h["RA"] = (t.written[0], "right ascension (hours)")
        h["DEC"] = (t.written[1], "declination (degrees)")
        equinox = 1950.0 if fk4 else 2000.0
        h["EQUINOX"] = str(equinox) if "equinox-str" in defects else equinox
        if fk4:
            h["EPOCH"] = (1950.0, "")
        h["RADECSYS"] = ("FK4" if fk4 else "FK5", "")
    elif o["position"] == "n/a":
        h["RA"], h["DEC"], h["EQUINOX"] = "N/A", "N/A", 2000.0
    h["DISPAXIS"] = 1
    h["CRVAL1"] = crval
    h["CRPIX1"] = crpix
    if wcs == "cd":
        h["CD1_1"] = cdelt
        h["CTYPE1"] = "WAVE"
        h["CUNIT1"] = "Angstrom"
    else:
        h["CDELT1"] = cdelt
        if wcs == "log":
            h["CD1_1"] = cdelt
        h["CTYPE1"] = "LINEAR"
        if wcs != "nocunit":
            h["CUNIT1"] = "Angstrom"
        h["DC-FLAG"] = (1 if wcs == "log" else 0, "log-linear (log10) dispersion if 1")
        h["WCSDIM"] = 1
        h["WAT0_001"] = "system=equispec"
        h["WAT1_001"] = "wtype=linear label=Wavelength units=angstroms"
    h["BUNIT"] = "erg/cm2/s/A" if o["fluxcal"] else "ADU"
    primary = fits.PrimaryHDU(noisy.flux.astype(F32), header=h)
    raw = _to_bytes([primary], None)
    raw = raw.replace(b"XXLOWKEY=", b"airmass =").replace(b"XXBADKEY=", b"FILT#1  =")
    return raw, [
        Written(0, float(wave[0]) * 1e-10, float(wave[-1]) * 1e-10, n, round(noisy.snr, 2))
    ]


# --------------------------------------------------------------------------- 2dF / AAOmega


def write_fibres(job: FileJob, rng: np.random.Generator) -> tuple[bytes, list[Written]]:
    """2dfdr reduced frame: fibre x pixel image, VARIANCE, and the FIBRES table (radians)."""
    o, n = job.opts, job.n_pix
    n_p = len(job.targets)
    n_rows = max(o["n_rows"], n_p + o["n_sky"] + o["n_guide"])
    kinds = np.array(["P"] * n_p + ["S"] * o["n_sky"] + ["F"] * o["n_guide"])
    kinds = np.concatenate([kinds, np.full(n_rows - kinds.size, "N")])[rng.permutation(n_rows)]
    cdelt = round((job.wmax_aa - job.wmin_aa) / (n - 1), 5)
    crpix = (n + 1) / 2.0
    crval = round(job.wmin_aa + (crpix - 1) * cdelt, 4)
    wave = crval + (np.arange(n) + 1 - crpix) * cdelt
    response = throughput(wave, rng)
    image = np.zeros((n_rows, n), dtype=F32)
    var = np.zeros((n_rows, n), dtype=F32)
    ra_c, dec_c = o["field_centre"]
    ra_rad, dec_rad = np.zeros(n_rows), np.zeros(n_rows)
    names = np.full(n_rows, "Parked", dtype=object)
    mags = np.zeros(n_rows)
    written: list[Written] = []
    targets = iter(job.targets)
    sky_level = 10 ** rng.uniform(1.5, 2.5)
    for row, kind in enumerate(kinds):
        if kind == "P":
            t = next(targets)
            fibre_response = response * rng.uniform(0.7, 1.05)
            noisy = _observe(job, t, wave, rng, int(rng.integers(0, 6)), response=fibre_response)
            image[row] = np.where(noisy.bad, np.nan, noisy.flux)
            var[row] = np.where(noisy.bad, np.nan, noisy.error**2)
            ra_rad[row], dec_rad[row] = t.written
            names[row], mags[row] = t.name, t.source.mag
            idx = len(written)
            written.append(Written(idx, wave[0] * 1e-10, wave[-1] * 1e-10, n, round(noisy.snr, 2)))
        elif kind in ("S", "F"):
            (a,), (d,) = scatter_around(rng, ra_c, dec_c, 1.0, 1)
            ra_rad[row], dec_rad[row] = np.radians(a), np.radians(d)
            names[row] = "SKY" if kind == "S" else f"Guide{row:03d}"
            if kind == "S":
                sky = sky_flux(wave, job.resolving_power) * response
                sky *= sky_level / float(np.median(sky))
                err = np.sqrt(np.maximum(sky, 0) + 25.0)
                image[row] = sky + err * rng.standard_normal(n)
                var[row] = err**2
    when = mjd_to_datetime(job.mjd)
    h = fits.Header()
    h["OBJECT"] = (f"field_{job.index:04d}", "Field name")
    h["TELESCOP"] = (job.inst.telescop, "Telescope name")
    h["INSTRUME"] = (job.inst.instrume, "Instrument in use")
    h["GRATID"] = ("580V", "Grating ID")
    h["RADECSYS"] = ("FK5", "Reference frame for RA and Dec")
    h["EQUINOX"] = (2000.0, "Equinox of the field centre")
    h["MEANRA"] = (ra_c, "[deg] Mean RA of the field")
    h["MEANDEC"] = (dec_c, "[deg] Mean Dec of the field")
    h["UTDATE"] = (when.strftime("%Y:%m:%d"), "UT date")
    h["UTSTART"] = (when.strftime("%H:%M:%S"), "UT start")
    h["UTMJD"] = (job.mjd, "Modified Julian Date (UTC)")
    h["EXPOSED"] = (job.exptime, "Exposure time (seconds)")
    h["TOTALEXP"] = (job.exptime, "Total exposure (seconds)")
    h["CRVAL1"] = (crval, "Co-ordinate value of axis 1")
    h["CDELT1"] = (cdelt, "Co-ordinate increment along axis 1")
    h["CRPIX1"] = (crpix, "Reference pixel along axis 1")
    h["CTYPE1"] = ("Wavelength", "Label for axis 1")
    h["CUNIT1"] = ("Angstroms", "Units for axis 1")
    h["BUNIT"] = ("Counts", "")
    primary = fits.PrimaryHDU(image, header=h)
    variance = fits.ImageHDU(var, name="VARIANCE")
    fib = fits.BinTableHDU.from_columns(
        [
            fits.Column("NAME", "80A", array=list(names)),
            fits.Column("RA", "D", array=ra_rad),
            fits.Column("DEC", "D", array=dec_rad),
            fits.Column("X", "J", array=rng.integers(-250000, 250000, n_rows)),
            fits.Column("Y", "J", array=rng.integers(-250000, 250000, n_rows)),
            fits.Column("XERR", "I", array=np.zeros(n_rows, dtype=np.int16)),
            fits.Column("YERR", "I", array=np.zeros(n_rows, dtype=np.int16)),
            fits.Column("THETA", "D", array=rng.uniform(0, 2 * np.pi, n_rows)),
            fits.Column("TYPE", "1A", array=list(kinds)),
            fits.Column("PIVOT", "I", array=np.arange(1, n_rows + 1, dtype=np.int16)),
            fits.Column("MAGNITUDE", "D", array=mags),
            fits.Column("PID", "J", array=np.zeros(n_rows, dtype=np.int32)),
            fits.Column("COMMENT", "80A", array=[""] * n_rows),
        ],
        name="FIBRES",
    )
    fib.header["CENRA"] = (float(np.radians(ra_c)), "Field centre RA (radians)")
    fib.header["CENDEC"] = (float(np.radians(dec_c)), "Field centre Dec (radians)")
    return _to_bytes([primary, variance, fib], None), written


# --------------------------------------------------------------------------- generic tables

_TABLE_COLS = {"ISIS": ("WAVELENGTH", "FLUX", "ERROR"), "GMOS-S": ("LAMBDA", "F_LAMBDA", "SIGMA")}
_WAVE_FACTOR = {"Angstrom": 1.0, "nm": 10.0, "um": 1e4}  # Å per unit
_FLAM = "erg / (Angstrom s cm2)"


def write_table(job: FileJob, rng: np.random.Generator) -> tuple[bytes, list[Written]]:
    """A table with one row per pixel, columns under a common name, position in the header."""
    o, t, n = job.opts, job.targets[0], job.n_pix
    unit = o["wave_unit"]
    col = np.linspace(job.wmin_aa, job.wmax_aa, n) / _WAVE_FACTOR[unit]
    wave = col * _WAVE_FACTOR[unit]
    scale, flux_unit = (1e17, "1e-17 " + _FLAM) if o["scaled_flux"] else (1.0, _FLAM)
    noisy = _observe(job, t, wave, rng, 0, scale=scale)
    w_name, f_name, e_name = _TABLE_COLS[job.inst.key]
    p = fits.Header()
    p["TELESCOP"] = job.inst.telescop
    p["INSTRUME"] = job.inst.instrume
    p["OBJECT"] = t.name
    p["RA"] = (t.written[0], "[deg] ICRS")
    p["DEC"] = (t.written[1], "[deg] ICRS")
    p["RADESYS"] = "ICRS"
    p["DATE-OBS"] = mjd_to_iso(job.mjd)
    p["MJD-OBS"] = job.mjd
    p["EXPTIME"] = job.exptime
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(w_name, "D", unit=unit, array=col),
            fits.Column(f_name, "E", unit=flux_unit, array=noisy.flux.astype(F32)),
            fits.Column(e_name, "E", unit=flux_unit, array=noisy.error.astype(F32)),
        ],
        name="SCI" if job.inst.key == "GMOS-S" else None,
    )
    m = 1e-10 * _WAVE_FACTOR[unit]
    data = _to_bytes([fits.PrimaryHDU(header=p), table], None)
    return data, [Written(0, float(col[0]) * m, float(col[-1]) * m, n, round(noisy.snr, 2))]


def write_table_rows(job: FileJob, rng: np.random.Generator) -> tuple[bytes, list[Written]]:
    """A table of several targets: one row each, array columns, per-row RA/DEC/OBJECT."""
    n, k = job.n_pix, len(job.targets)
    wave = np.linspace(job.wmin_aa, job.wmax_aa, n)
    flux = np.zeros((k, n), dtype=F32)
    err = np.zeros((k, n), dtype=F32)
    written = []
    for i, t in enumerate(job.targets):
        noisy = _observe(job, t, wave, rng, 0, scale=1e17)
        flux[i], err[i] = noisy.flux, noisy.error
        written.append(Written(i, wave[0] * 1e-10, wave[-1] * 1e-10, n, round(noisy.snr, 2)))
    p = fits.Header()
    p["TELESCOP"] = job.inst.telescop
    p["INSTRUME"] = job.inst.instrume
    p["DATE-OBS"] = mjd_to_iso(job.mjd)
    p["MJD-OBS"] = job.mjd
    p["EXPTIME"] = job.exptime
    p["RADESYS"] = "ICRS"
    dim = f"({n})"
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(
                "OBJECT",
                f"{max(len(t.name) for t in job.targets)}A",
                array=[t.name for t in job.targets],
            ),
            fits.Column("RA", "D", unit="deg", array=[t.written[0] for t in job.targets]),
            fits.Column("DEC", "D", unit="deg", array=[t.written[1] for t in job.targets]),
            fits.Column(
                "WAVELENGTH",
                f"{n}D",
                unit="Angstrom",
                dim=dim,
                array=np.repeat(wave[None, :], k, axis=0),
            ),
            fits.Column("FLUX", f"{n}E", unit="1e-17 " + _FLAM, dim=dim, array=flux),
            fits.Column("ERROR", f"{n}E", unit="1e-17 " + _FLAM, dim=dim, array=err),
        ],
        name="SPECTRA",
    )
    return _to_bytes([fits.PrimaryHDU(header=p), table], None), written


WRITERS: dict[str, Writer] = {
    "eso": write_eso,
    "sdss": write_sdss,
    "image1d": write_image1d,
    "fibres": write_fibres,
    "table": write_table,
    "table-rows": write_table_rows,
}
