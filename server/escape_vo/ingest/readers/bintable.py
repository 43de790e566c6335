"""Spectra stored as binary-table columns: one row per pixel, or array cells one row per spectrum.

Columns are found by name (case-insensitive, in the priority order of the lists below), then by
IVOA Spectrum utype (TUTYPn) or UCD (TUCDn). The ESO Phase 3 reader uses the same machinery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from escape_vo.ingest.model import NotASpectrum, SpectrumRecord
from escape_vo.ingest.readers.fitsio import Column, FitsFile, Hdu, Table
from escape_vo.ingest.readers.metadata import (
    Keys,
    clean_text,
    fill_common,
    frame_from,
    make_position,
    observation_ids,
    position_from,
    to_float,
)
from escape_vo.ingest.readers.spectrum import BAD_PIXEL, as_quality, set_arrays
from escape_vo.ingest.readers.units import calib_level, flux_unit_string, wave_metres

WAVE_NAMES = ("WAVE", "WAVELENGTH", "LAMBDA", "WAVE_AIR", "WAVE_VAC", "LAM", "LOGLAM")
LOG_WAVE_NAMES = {"LOGLAM", "LOGLAMBDA", "LOG_WAVE", "LOGWAVE"}
FLUX_NAMES = ("FLUX", "F_LAMBDA", "FLAM", "FLUX_DENSITY", "SPEC", "SPECTRUM", "FLUX_REDUCED")
# (name, kind): kind says how the column relates to a 1-sigma error.
ERROR_NAMES = (
    ("ERR", "sigma"),
    ("ERROR", "sigma"),
    ("SIGMA", "sigma"),
    ("FLUX_ERR", "sigma"),
    ("ERR_FLUX", "sigma"),
    ("FLUX_ERROR", "sigma"),
    ("E_FLUX", "sigma"),
    ("ERR_REDUCED", "sigma"),
    ("IVAR", "ivar"),
    ("INVVAR", "ivar"),
    ("VARIANCE", "var"),
    ("VAR", "var"),
)
QUALITY_NAMES = ("QUAL", "QUALITY", "MASK", "FLAG", "FLAGS", "DQ", "AND_MASK")
ROW_POSITION_COLUMNS = (("RA", "DEC"), ("RA_OBJ", "DEC_OBJ"), ("PLUG_RA", "PLUG_DEC"))
ORDER_NAMES = ("ORDER", "SPORDER", "ECHORDER", "ORDERS")
ROW_NAME_COLUMNS = ("OBJECT", "NAME", "TARGET", "OBJNAME", "TARGNAME")


@dataclass(slots=True)
class SpectrumColumns:
    """Which columns of a table hold the spectrum."""

    wave: Column
    flux: Column
    error: Column | None = None
    error_kind: str = "sigma"
    quality: Column | None = None
    log_wave: bool = False


def _by_meta(table: Table, utype_end: str, ucd_start: str | None = None) -> Column | None:
    for col in table.columns:
        utype = (col.utype or "").lower()
        if utype.endswith(utype_end):
            return col
    if ucd_start:
        for col in table.columns:
            ucd = (col.ucd or "").lower()
            if ucd.startswith(ucd_start) and "stat." not in ucd.split(";")[0]:
                return col
    return None


def match_columns(table: Table) -> SpectrumColumns | None:
    """The spectrum columns of a table, None when there is no wavelength or no flux column."""
    wave = table.column(*WAVE_NAMES) or _by_meta(table, "data.spectralaxis.value", "em.wl")
    flux = table.column(*FLUX_NAMES) or _by_meta(table, "data.fluxaxis.value", "phot.flux")
    if wave is None or flux is None or wave is flux:
        return None
    cols = SpectrumColumns(wave, flux, log_wave=wave.name.upper() in LOG_WAVE_NAMES)
    names = ERROR_NAMES
    if flux.name.upper() == "FLUX_REDUCED":
        names = (("ERR_REDUCED", "sigma"), *ERROR_NAMES)
    for name, kind in names:
        col = table.column(name)
        if col is not None:
            cols.error, cols.error_kind = col, kind
            break
    else:
        cols.error = _by_meta(table, "data.fluxaxis.accuracy.staterror")
        if cols.error is None:
            for col in table.columns:
                if (col.ucd or "").lower().startswith("stat.error"):
                    cols.error = col
                    break
    cols.quality = table.column(*QUALITY_NAMES) or _by_meta(table, "data.fluxaxis.quality")
    return cols


def no_spectrum_reason(table: Table) -> str:
    """One-line reason for a table without spectrum columns, listing what it has."""
    names = table.names
    shown = ", ".join(names[:15]) + (f", ... ({len(names)} in all)" if len(names) > 15 else "")
    wave = table.column(*WAVE_NAMES) or _by_meta(table, "data.spectralaxis.value", "em.wl")
    if wave is None:
        return f"table without a spectrum: no wavelength column (columns: {shown})"
    return (
        f"table without a spectrum: no flux column next to wavelength column "
        f"{wave.name!r} (columns: {shown})"
    )


def error_from(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(1-sigma error, mask of pixels whose error says 'no data' or None) from an error column."""
    if kind == "sigma":
        return values, None
    values = values.astype(np.float64, copy=False)
    unusable = ~(values > 0)
    if kind == "ivar":
        with np.errstate(divide="ignore", invalid="ignore"):
            error = 1.0 / np.sqrt(values)
    else:
        with np.errstate(invalid="ignore"):
            error = np.sqrt(values)
    error[unusable] = np.nan
    return error, unusable


def _wave_metres(values: np.ndarray, col: Column, log_wave: bool, notes: list[str]) -> np.ndarray:
    if log_wave or (col.unit or "").lower().startswith(("log", "dex")):
        return 10.0 ** np.asarray(values, dtype=np.float64) * 1e-10
    return wave_metres(values, col.unit, notes)


def _check_dims(col: Column) -> None:
    if col.dims and sum(1 for d in col.dims if d > 1) > 1:
        shape = " x ".join(str(d) for d in col.dims)
        raise NotASpectrum(
            f"echelle spectrum in a table (cells of {shape} values, one order per row of the "
            "cell): merge the orders into a 1-D spectrum before ingest"
        )


def _row_positions(table: Table, keys: Keys, notes: list[str]) -> list | None:
    for ra_name, dec_name in ROW_POSITION_COLUMNS:
        ra_col, dec_col = table.column(ra_name), table.column(dec_name)
        if ra_col is None or dec_col is None or ra_col.is_array or dec_col.is_array:
            continue
        frame = frame_from(keys, notes)
        ras, decs = _angles(table, ra_col), _angles(table, dec_col)
        return [make_position(r, d, frame, notes) for r, d in zip(ras, decs, strict=True)]
    return None


def _angles(table: Table, col: Column) -> list:
    if col.code == "A":
        return table.strings(col)
    values = table.values(col)[:, 0].astype(np.float64)
    unit = (col.unit or "deg").lower()
    if unit.startswith("rad"):
        values = np.degrees(values)
    elif unit in ("h", "hour", "hours", "hourangle"):
        values = values * 15.0
    return values.tolist()


def _row_scalars(table: Table, *names: str) -> list | None:
    col = table.column(*names)
    if col is None or col.is_array:
        return None
    if col.code == "A":
        return table.strings(col)
    return table.values(col)[:, 0].tolist()


def clone(base: SpectrumRecord) -> SpectrumRecord:
    return dataclasses.replace(base, warnings=list(base.warnings))


def table_spectra(
    fits: FitsFile,
    hdu: Hdu,
    table: Table,
    cols: SpectrumColumns,
    base: SpectrumRecord,
    keys: Keys,
) -> list[SpectrumRecord]:
    """Records for the spectra in a table whose columns are known.

    base carries the header metadata; per-row RA/DEC, OBJECT/NAME, Z and SNR columns override
    it for multi-row tables.
    """
    _check_dims(cols.wave)
    order = table.column(*ORDER_NAMES)
    if table.nrows > 1 and cols.wave.is_array and order is not None and not order.is_array:
        raise NotASpectrum(
            f"echelle spectrum in a table ({table.nrows} rows, one order per row, column "
            f"{order.name!r}): merge the orders into a 1-D spectrum before ingest"
        )
    flux_unit = cols.flux.unit or keys.text("BUNIT")
    base.flux_unit, unit_note = flux_unit_string(flux_unit)
    if unit_note:
        base.warnings.append(unit_note)
    base.calib_level = calib_level(flux_unit, keys.text("FLUXCAL"))
    if not cols.wave.is_array:
        return [_pixel_table(table, cols, base)]
    return _row_table(table, cols, base, keys)


def _pixel_table(table: Table, cols: SpectrumColumns, rec: SpectrumRecord) -> SpectrumRecord:
    """A table with one row per pixel: the whole table is one spectrum."""
    if cols.flux.is_array:
        raise NotASpectrum(
            f"wavelength column {cols.wave.name!r} has one value per row but flux column "
            f"{cols.flux.name!r} holds arrays"
        )
    wave = _wave_metres(table.values(cols.wave)[:, 0], cols.wave, cols.log_wave, rec.warnings)
    flux = table.values(cols.flux)[:, 0]
    error, quality = _error_quality(table.values, cols, slice(None))
    return set_arrays(rec, wave, flux, error, quality)


def _error_quality(reader, cols: SpectrumColumns, row) -> tuple:
    error = quality = None
    unusable = None
    if cols.error is not None and cols.error.code not in "AL":
        error, unusable = error_from(np.asarray(reader(cols.error)[row]).ravel(), cols.error_kind)
    if cols.quality is not None and cols.quality.code not in "AEDCM":
        quality = as_quality(np.asarray(reader(cols.quality)[row]).ravel())
    if unusable is not None and unusable.any():
        if quality is None or quality.size != unusable.size:
            quality = np.zeros(unusable.size, dtype=np.int32)
        quality[unusable] |= BAD_PIXEL
    return error, quality


def _row_table(
    table: Table, cols: SpectrumColumns, base: SpectrumRecord, keys: Keys
) -> list[SpectrumRecord]:
    """A table whose cells hold arrays: every row is one spectrum."""
    nrows = table.nrows
    waves = table.cells(cols.wave)
    fluxes = table.cells(cols.flux)
    cache: dict[str, list[np.ndarray]] = {}

    def cells(col: Column) -> list[np.ndarray]:
        if col.name not in cache:
            cache[col.name] = table.cells(col)
        return cache[col.name]

    nelem_col = _row_scalars(table, "NELEM")
    nelem_key = to_float(keys.get("NELEM"))
    positions = _row_positions(table, keys, base.warnings) if nrows > 1 else None
    names = _row_scalars(table, *ROW_NAME_COLUMNS)
    redshifts = _row_scalars(table, "Z", "REDSHIFT")
    snrs = _row_scalars(table, "SNR")
    records: list[SpectrumRecord] = []
    skipped: list[str] = []
    for i in range(nrows):
        rec = clone(base)
        n = int(nelem_col[i]) if nelem_col else int(nelem_key) if nelem_key else None
        cut = slice(0, n) if n is not None and n > 0 else slice(None)
        if nrows > 1:
            rec.obs_id = f"{base.obs_id}#{i}"
        if positions is not None:
            rec.position = positions[i]
        if names is not None and clean_text(names[i]):
            rec.target_name = clean_text(names[i])
        if redshifts is not None and to_float(redshifts[i]) is not None:
            rec.redshift = to_float(redshifts[i])
        if snrs is not None and to_float(snrs[i]) is not None:
            rec.snr = to_float(snrs[i])
        try:
            wave = _wave_metres(waves[i][cut], cols.wave, cols.log_wave, rec.warnings)
            error, quality = _error_quality(cells, cols, i)
            set_arrays(
                rec,
                wave,
                fluxes[i][cut],
                None if error is None else error[cut],
                None if quality is None else quality[cut],
            )
        except NotASpectrum as exc:
            if nrows == 1:
                raise
            skipped.append(f"row {i} skipped: {exc}")
            continue
        records.append(rec)
    if not records:
        raise NotASpectrum(f"none of the {nrows} table rows holds a usable spectrum")
    for rec in records:
        rec.warnings.extend(skipped)
    return records


def base_record(fmt: str, keys: Keys, name: str) -> SpectrumRecord:
    """A record with the header metadata every table spectrum shares."""
    rec = SpectrumRecord(file_format=fmt)
    fill_common(rec, keys, rec.warnings)
    rec.obs_id, rec.origin_id = observation_ids(keys, name)
    return rec


def spectrum_tables(fits: FitsFile) -> list[tuple[Hdu, Table, SpectrumColumns]]:
    """Every table HDU with recognisable spectrum columns, in file order."""
    found = []
    for hdu in fits.hdus:
        if hdu.is_table:
            table = fits.table(hdu)
            cols = match_columns(table)
            if cols is not None:
                found.append((hdu, table, cols))
    return found


def read(
    fits: FitsFile, name: str, found: list[tuple[Hdu, Table, SpectrumColumns]] | None = None
) -> list[SpectrumRecord]:
    """Generic tables: the first table with wavelength and flux columns."""
    found = spectrum_tables(fits) if found is None else found
    if not found:
        first = next(h for h in fits.hdus if h.is_table)
        raise NotASpectrum(no_spectrum_reason(fits.table(first)))
    hdu, table, cols = found[0]
    keys = Keys(hdu.header, fits.primary)
    base = base_record("bintable", keys, name)
    base.position = None
    has_row_positions = (
        table.nrows > 1
        and cols.wave.is_array
        and any(
            table.column(ra) is not None and table.column(dec) is not None
            for ra, dec in ROW_POSITION_COLUMNS
        )
    )
    if not has_row_positions:
        base.position = position_from(keys, base.warnings)
    return table_spectra(fits, hdu, table, cols, base, keys)
