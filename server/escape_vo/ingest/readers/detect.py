"""Which reader a FITS file needs, and the contract around them (two exception classes only).

Dispatch order, most specific first: ESO Phase 3 / IVOA Spectrum table (EXTNAME SPECTRUM or
PHASE3SPECTRA, or VOCLASS SPECTRUM*), SDSS (COADD table with loglam; other archives' COADD
tables go the generic way), 2dF/AAOmega (2-D image plus FIBRES table), an image HDU with data
(a 1-D spectrum, or the reason it is not one), then any table with wavelength and flux columns.
"""

from __future__ import annotations

import numpy as np

from escape_vo.ingest.model import NotASpectrum, SpectrumRecord, UnreadableFile
from escape_vo.ingest.readers import bintable, eso_phase3, image1d, sdss
from escape_vo.ingest.readers.fitsio import MAX_INFLATED, FitsFile, open_fits

_MAX_REASON = 300


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _dispatch(fits: FitsFile, name: str) -> list[SpectrumRecord]:
    for hdu in fits.hdus:
        if eso_phase3.is_phase3(hdu):
            return eso_phase3.read(fits, hdu, name)
    coadd = fits.find("COADD", kind="BINTABLE")
    if coadd is not None and sdss.is_sdss(fits, coadd):
        return sdss.read(fits, coadd, name)
    images = [h for h in fits.hdus if h.is_image]
    fibres = fits.find("FIBRES", "FIBRES_IFU", kind="BINTABLE")
    if fibres is not None:
        frames = [h for h in images if len(h.axes) == 2 and image1d.role(h)[0] == "flux"]
        if frames:
            return image1d.read_multifibre(fits, frames[0], fibres, name)
    if any(h.kind == "BINTABLE" and h.quick("ZIMAGE") is True for h in fits.hdus):
        raise UnreadableFile("tile-compressed image (fpack, ZIMAGE = T): decompress it first")
    flux_images = [h for h in images if image1d.role(h)[0] == "flux"]
    found = bintable.spectrum_tables(fits)
    if flux_images:
        try:
            return image1d.read(fits, flux_images[0], name)
        except NotASpectrum:
            if found:
                return bintable.read(fits, name, found)
            raise
    if found:
        return bintable.read(fits, name, found)
    if images:
        raise NotASpectrum(image1d.lone_array_reason(images[0]))
    if any(h.is_table for h in fits.hdus):
        return bintable.read(fits, name, found)
    raise NotASpectrum(f"no data: header-only FITS file ({len(fits.hdus)} HDU(s))")


def read_spectra(data: bytes, name: str, max_inflated: int = MAX_INFLATED) -> list[SpectrumRecord]:
    """Every 1-D spectrum in a FITS file (plain or gzip, inflating to at most `max_inflated`
    bytes), in file order.

    Raises UnreadableFile when the bytes cannot be parsed (not FITS, truncated, corrupt gzip)
    and NotASpectrum when the file is FITS but holds no 1-D spectrum. Nothing else escapes:
    unexpected errors inside a reader become UnreadableFile with a one-line reason.
    Tolerated header defects are listed in every record's warnings.
    """
    try:
        with np.errstate(all="ignore"):
            fits = open_fits(bytes(data), max_inflated)
            records = _dispatch(fits, name)
    except (UnreadableFile, NotASpectrum) as exc:
        raise type(exc)(_one_line(str(exc))) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise UnreadableFile(
            _one_line(f"cannot read FITS content ({type(exc).__name__}: {exc})")
        ) from exc
    for index, rec in enumerate(records):
        rec.file_index = index
        rec.warnings = list(dict.fromkeys([*fits.notes, *rec.warnings]))
    return records
