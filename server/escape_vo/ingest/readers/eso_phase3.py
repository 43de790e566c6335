"""ESO Phase 3 science data products: 1-D spectra as one table row of array columns.

The IVOA Spectrum-DM serialisation ESO uses: extension SPECTRUM or PHASE3SPECTRA with
VOCLASS 'SPECTRUM V1.0'/'V2.0', columns WAVE, FLUX and ERR (V1) or ERR_FLUX (V2), optional
QUAL, sometimes FLUX_REDUCED/ERR_REDUCED; TUTYPn utypes identify renamed columns. Several rows
are several spectra. Keywords may sit in the primary or the extension header; the extension
wins.
"""

from __future__ import annotations

from escape_vo.ingest.model import NotASpectrum, SpectrumRecord
from escape_vo.ingest.readers.bintable import (
    base_record,
    match_columns,
    no_spectrum_reason,
    table_spectra,
)
from escape_vo.ingest.readers.fitsio import FitsFile, Hdu
from escape_vo.ingest.readers.metadata import Keys, position_from

EXTNAMES = ("SPECTRUM", "PHASE3SPECTRA")


def is_phase3(hdu: Hdu) -> bool:
    """A table HDU in the ESO Phase 3 / IVOA Spectrum layout."""
    if hdu.kind != "BINTABLE":
        return False
    if hdu.name in EXTNAMES:
        return True
    voclass = hdu.quick("VOCLASS")
    return isinstance(voclass, str) and voclass.strip().upper().startswith("SPECTRUM")


def read(fits: FitsFile, hdu: Hdu, name: str) -> list[SpectrumRecord]:
    if not hdu.is_table:
        raise NotASpectrum(f"ESO Phase 3 extension {hdu.name or hdu.index} has no rows")
    table = fits.table(hdu)
    cols = match_columns(table)
    if cols is None:
        raise NotASpectrum(no_spectrum_reason(table))
    keys = Keys(hdu.header, fits.primary)
    base = base_record("eso-phase3", keys, name)
    base.position = position_from(keys, base.warnings)
    aperture = keys.num("APERTURE")
    base.aperture = aperture if aperture and aperture > 0 else None
    return table_spectra(fits, hdu, table, cols, base, keys)
