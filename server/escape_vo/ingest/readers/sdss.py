"""SDSS/BOSS spec files (spec-PLATE-MJD-FIBER.fits, DR8+ and SDSS-V layout).

HDU 'COADD' holds one row per pixel: loglam (log10 of the vacuum wavelength in Angstrom), flux,
ivar (inverse variance; 0 marks a pixel without data), and_mask. The primary header has the
plug-plate position of the fibre (PLUG_RA/PLUG_DEC; RA/DEC there are the telescope pointing),
plate/MJD/fibre numbers and BUNIT with its 1e-17 scale. HDU 'SPECOBJ' carries the pipeline
classification and redshift.
"""

from __future__ import annotations

import numpy as np

from escape_vo.ingest.model import NotASpectrum, SpectrumRecord
from escape_vo.ingest.readers.fitsio import FitsFile, Hdu, Table
from escape_vo.ingest.readers.metadata import (
    Keys,
    base_name,
    clean_text,
    fill_common,
    position_from,
    stem,
    to_float,
)
from escape_vo.ingest.readers.spectrum import BAD_PIXEL, set_arrays
from escape_vo.ingest.readers.units import calib_level, flux_unit_string

DEFAULT_BUNIT = "1E-17 erg/cm^2/s/Ang"
ARCSEC = 1.0 / 3600.0


def _aperture_and_instrument(keys: Keys) -> tuple[float | None, str | None]:
    """Fibre diameter (deg) and spectrograph, only where the header makes them certain.

    Both spectrographs hang on the SDSS 2.5 m telescope: the original SDSS spectrograph
    (SDSS-I/II, 3 arcsec fibres) reduced with numeric RUN2D versions ('26', '103', '104') on
    plates below 3000, BOSS (2 arcsec fibres) reduced with 'v5_...'/'v6_...' on plates from 3600
    on. Anything else, e.g. plates 3000-3599 without RUN2D or another telescope: unknown.
    """
    telescope = (keys.text("TELESCOP") or "").upper()
    if "SDSS" not in telescope or "2.5" not in telescope:
        return None, None
    run2d = (keys.text("RUN2D") or "").lower()
    plate = keys.num("PLATEID")
    if run2d.isdigit() or (not run2d and plate is not None and plate < 3000):
        return 3.0 * ARCSEC, "SDSS"
    if run2d.startswith("v") or (not run2d and plate is not None and plate >= 3600):
        return 2.0 * ARCSEC, "BOSS"
    return None, None


def _specobj(fits: FitsFile) -> dict[str, object]:
    """CLASS, Z, SN_MEDIAN_ALL and OBJTYPE of the first SPECOBJ row (read column by column)."""
    hdu = fits.find("SPECOBJ", kind="BINTABLE")
    if hdu is None or not hdu.is_table:
        return {}
    table = Table(fits, hdu)
    out: dict[str, object] = {}
    for name in ("CLASS", "Z", "SN_MEDIAN_ALL", "OBJTYPE"):
        col = table.column(name)
        if col is None:
            continue
        if col.code == "A":
            out[name] = clean_text(table.strings(col)[0])
        elif not col.is_array:
            out[name] = to_float(table.values(col)[0, 0])
    return out


def is_sdss(fits: FitsFile, coadd: Hdu) -> bool:
    """A COADD table in the SDSS layout (LAMOST, for one, also has a COADD table)."""
    return coadd.is_table and fits.table(coadd).column("LOGLAM") is not None


def obs_id(keys: Keys, name: str) -> str:
    plate, mjd, fiber = keys.num("PLATEID"), keys.num("MJD"), keys.num("FIBERID")
    if plate is not None and mjd is not None and fiber is not None:
        return f"spec-{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}"
    return stem(name)


def read(fits: FitsFile, coadd: Hdu, name: str) -> list[SpectrumRecord]:
    if not coadd.is_table:
        raise NotASpectrum("SDSS COADD table has no rows")
    table = fits.table(coadd)
    loglam, flux, ivar = (table.column(c) for c in ("LOGLAM", "FLUX", "IVAR"))
    if loglam is None or flux is None:
        raise NotASpectrum(
            f"SDSS COADD table without loglam/flux columns (columns: {', '.join(table.names)})"
        )
    keys = Keys(fits.primary)
    rec = SpectrumRecord(file_format="sdss")
    fill_common(rec, keys, rec.warnings)
    rec.position = position_from(keys, rec.warnings, (("PLUG_RA", "PLUG_DEC"),))
    rec.obs_id, rec.origin_id = obs_id(keys, name), base_name(name)
    rec.aperture, spectrograph = _aperture_and_instrument(keys)
    rec.instrument = rec.instrument or spectrograph
    tai_beg, tai_end = keys.num("TAI-BEG"), keys.num("TAI-END")
    if tai_beg is not None:  # TAI seconds since MJD 0: more precise than DATE-OBS
        rec.t_min = tai_beg / 86400.0
        rec.t_max = tai_end / 86400.0 if tai_end is not None and tai_end >= tai_beg else None
    if rec.t_min is None and keys.num("MJD") is not None:
        rec.t_min = keys.num("MJD")
        rec.warnings.append("observing time known only to the night (integer MJD)")
    bunit = keys.text("BUNIT")
    if bunit is None:
        bunit = DEFAULT_BUNIT
        rec.warnings.append(f"no BUNIT; SDSS flux unit {DEFAULT_BUNIT!r} assumed")
    rec.flux_unit, unit_note = flux_unit_string(bunit)
    if unit_note:
        rec.warnings.append(unit_note)
    rec.calib_level = calib_level(bunit)

    specobj = _specobj(fits)
    target_class = specobj.get("CLASS") or specobj.get("OBJTYPE")
    if isinstance(target_class, str) and target_class.upper() != "NA":
        rec.target_class = target_class.lower()
    if specobj.get("Z") is not None:
        rec.redshift = specobj["Z"]
    if specobj.get("SN_MEDIAN_ALL") is not None:
        rec.snr = specobj["SN_MEDIAN_ALL"]

    wave = 10.0 ** table.values(loglam)[:, 0].astype(np.float64) * 1e-10
    values = table.values(flux)[:, 0]
    error = quality = None
    mask = table.column("AND_MASK")
    if mask is not None:
        quality = table.values(mask)[:, 0].astype(np.int32)
    if ivar is not None:
        iv = table.values(ivar)[:, 0]
        bad = ~(iv > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            error = (1.0 / np.sqrt(iv)).astype(values.dtype)
        error[bad] = np.nan
        if bad.any():
            if quality is None:
                quality = np.zeros(iv.size, dtype=np.int32)
            quality[bad] |= BAD_PIXEL
    return [set_arrays(rec, wave, values, error, quality)]
