"""Spectra stored as images: 1-D arrays with a wavelength WCS, and 2dF/AAOmega multi-fibre frames.

A 1-D spectrum is an image with one axis longer than 1 (NAXIS=1, or 2/3 with degenerate axes),
wavelengths from CRVAL/CRPIX/CDELT or CD (IRAF: DC-FLAG=1 means log10 Angstrom; IRAF
multispec 'spec1' dispersions are understood for a single aperture, with the flux in band 1 and
the sigma band as error). Error, variance and quality arrays in other HDUs of the same length
are picked up by EXTNAME/HDUCLAS2. Everything 2-D without a FIBRES table is rejected with the
reason: raw frame, extracted echelle orders, or a long-slit spectrum.
"""

from __future__ import annotations

import re

import numpy as np

from escape_vo.ingest.model import NotASpectrum, SpectrumRecord
from escape_vo.ingest.readers.bintable import clone, error_from
from escape_vo.ingest.readers.fitsio import FitsFile, Hdu
from escape_vo.ingest.readers.metadata import (
    Keys,
    clean_text,
    fill_common,
    frame_from,
    make_position,
    observation_ids,
    position_from,
    stem,
)
from escape_vo.ingest.readers.spectrum import BAD_PIXEL, as_quality, set_arrays
from escape_vo.ingest.readers.units import calib_level, flux_unit_string, parse_unit, wave_metres

ERROR_EXTNAMES = {
    "ERR": "sigma",
    "ERROR": "sigma",
    "ERRORS": "sigma",
    "SIGMA": "sigma",
    "STDDEV": "sigma",
    "NOISE": "sigma",
    "UNCERTAINTY": "sigma",
    "VARIANCE": "var",
    "VAR": "var",
    "IVAR": "ivar",
    "INVVAR": "ivar",
    "INV_VAR": "ivar",
}
_HDUCLAS3_KIND = {
    "RMSE": "sigma",
    "SIGMA": "sigma",
    "MSE": "var",
    "VARIANCE": "var",
    "INVMSE": "ivar",
}
WAVE_EXTNAMES = {"WAVE", "WAVELENGTH", "LAMBDA", "WAVE_AIR", "WAVE_VAC"}
QUALITY_EXTNAMES = {"QUAL", "QUALITY", "MASK", "DQ", "BPM", "FLAGS"}
_SPECTRAL_CTYPES = {"WAVE", "AWAV", "WAVELENGTH", "LAMBDA", "WAVE-LOG", "AWAV-LOG", "FREQ"}
_LOOSE_CTYPES = {"", "LINEAR"}
_SPATIAL_CTYPE = re.compile(r"^(RA--|DEC-|GLON|GLAT|ELON|ELAT|SLIT|ANGLE|POS|OFFSET|DIST|SPAT)")
_SPEC_ENTRY = re.compile(r'spec1\s*=\s*"([^"]*)"')
_WAT_UNITS = re.compile(r"units=(\S+)")
TWODF_FIBRE_DIAMETER = 2.1 / 3600.0  # degrees; 140 um fibres at the 2dF plate scale


def role(hdu: Hdu) -> tuple[str, str | None]:
    """('flux' | 'error' | 'quality' | 'wave', error kind) of an image HDU from
    EXTNAME/HDUCLAS2/3."""
    if hdu.name in WAVE_EXTNAMES:
        return "wave", None
    if hdu.name in ERROR_EXTNAMES:
        return "error", ERROR_EXTNAMES[hdu.name]
    clas2 = str(hdu.quick("HDUCLAS2") or "").strip().upper()
    if clas2 in ("ERROR", "ERR", "SIGMA", "VARIANCE"):
        clas3 = str(hdu.quick("HDUCLAS3") or "").strip().upper()
        default = "var" if clas2 == "VARIANCE" else "sigma"
        return "error", _HDUCLAS3_KIND.get(clas3, default)
    if hdu.name in QUALITY_EXTNAMES or clas2 in ("QUALITY", "DATA_QUALITY"):
        return "quality", None
    return "flux", None


def lone_array_reason(hdu: Hdu) -> str:
    what, kind = role(hdu)
    label = f"EXTNAME={hdu.name!r}" if hdu.name else f"HDUCLAS2={hdu.quick('HDUCLAS2')!r}"
    if what == "error":
        return (
            f"error array ({label}, {kind}) without its flux spectrum: ingest the file holding "
            "the flux"
        )
    what = "wavelength array" if what == "wave" else "quality mask"
    return f"{what} ({label}) without its flux spectrum: ingest the file holding the flux"


def _wat(keys: Keys, axis: int) -> str:
    """The concatenated IRAF WATn_nnn strings (each 68 characters, trailing blanks matter)."""
    parts = []
    for i in range(1, 1000):
        value = keys.get(f"WAT{axis}_{i:03d}")
        if value is None:
            break
        parts.append(str(value).ljust(68))
    return "".join(parts)


def is_multispec(keys: Keys) -> bool:
    ctype = (keys.text("CTYPE1") or "").upper()
    return ctype.startswith("MULTISPE") or "multispec" in str(keys.get("WAT0_001") or "")


def _is_spectral_axis(keys: Keys, axis: int, strict: bool) -> bool:
    ctype = (keys.text(f"CTYPE{axis}") or "").upper()
    if ctype in _SPECTRAL_CTYPES or ctype.startswith(("WAVE", "AWAV")):
        return True
    if ctype not in _LOOSE_CTYPES or keys.num(f"CRVAL{axis}") is None:
        return False
    if not strict:
        return True
    unit = parse_unit(keys.text(f"CUNIT{axis}"))
    wat_label = "label=wavelength" in _wat(keys, axis).lower()
    return bool(
        (unit is not None and unit.physical_type == "length")
        or keys.get("DC-FLAG") is not None
        or wat_label
    )


def _is_spatial_axis(keys: Keys, axis: int) -> bool:
    ctype = (keys.text(f"CTYPE{axis}") or "").upper()
    if _SPATIAL_CTYPE.match(ctype):
        return True
    unit = parse_unit(keys.text(f"CUNIT{axis}"))
    return unit is not None and unit.physical_type == "angle"


def reject_2d(keys: Keys, n1: int, n2: int) -> NotASpectrum:
    """Why a 2-D image without a FIBRES table is not a 1-D spectrum."""
    if is_multispec(keys):
        return NotASpectrum(
            f"2-d echelle spectrum ({n1} pixels x {n2} orders, IRAF multispec): merge the orders "
            "into a 1-D spectrum before ingest"
        )
    if _is_spectral_axis(keys, 1, strict=True):
        if _is_spatial_axis(keys, 2):
            return NotASpectrum(
                f"2-d long-slit spectrum ({n1} x {n2} pixels, spatial axis 2): extract a 1-D "
                "spectrum before ingest"
            )
        return NotASpectrum(
            f"2-d echelle spectrum ({n1} pixels x {n2} orders, one order per row): merge the "
            "orders into a 1-D spectrum before ingest"
        )
    hint = ""
    if 2 <= n2 <= 200 and n1 >= 8 * n2:
        hint = ": rows may be echelle orders; merge them into a 1-D spectrum before ingest"
    return NotASpectrum(f"2-d image ({n1} x {n2} pixels) without a spectral axis{hint}")


def _multispec_wave(keys: Keys, n: int, notes: list[str]) -> np.ndarray:
    wat = _wat(keys, 2)
    m = _SPEC_ENTRY.search(wat)
    if not m:
        raise NotASpectrum("IRAF multispec image without a 'spec1' dispersion in WAT2 keywords")
    fields = m.group(1).split()
    try:
        dtype, w1, dw, z = (
            int(float(fields[2])),
            float(fields[3]),
            float(fields[4]),
            float(fields[6]),
        )
    except (IndexError, ValueError):
        raise NotASpectrum(f"IRAF multispec dispersion not understood: {m.group(1)!r}") from None
    if dtype not in (0, 1):
        raise NotASpectrum(
            f"IRAF multispec non-linear dispersion (type {dtype}) not supported: resample to a "
            "linear wavelength grid before ingest"
        )
    x = w1 + dw * np.arange(n, dtype=np.float64)
    lam = (10.0**x if dtype == 1 else x) / (1.0 + z)
    units = _WAT_UNITS.search(_wat(keys, 1))
    return wave_metres(lam, units.group(1) if units else None, notes)


def axis_wave(keys: Keys, axis: int, n: int, notes: list[str]) -> np.ndarray:
    """Wavelengths (metres) of the n pixel centres along a WCS axis."""
    if axis == 1 and is_multispec(keys):
        return _multispec_wave(keys, n, notes)
    ctype = (keys.text(f"CTYPE{axis}") or "").upper()
    crval = keys.num(f"CRVAL{axis}")
    step = keys.num(f"CD{axis}_{axis}")
    if step is None and keys.num(f"CDELT{axis}") is not None:
        step = keys.num(f"CDELT{axis}") * (keys.num(f"PC{axis}_{axis}") or 1.0)
    if crval is not None and step == 0:
        raise NotASpectrum(
            f"1-d array of {n} pixels whose wavelength axis has a step of 0 (CDELT{axis} or "
            f"CD{axis}_{axis} is 0): every pixel would have the same wavelength"
        )
    if crval is None or not step:
        raise NotASpectrum(
            f"1-d array of {n} pixels without a wavelength axis (no CRVAL{axis} and "
            f"CDELT{axis}/CD{axis}_{axis})"
        )
    if not _is_spectral_axis(keys, axis, strict=False):
        raise NotASpectrum(f"1-d array whose axis is CTYPE{axis}={ctype!r}, not a spectral axis")
    crpix = keys.num(f"CRPIX{axis}")
    pixels = np.arange(1, n + 1, dtype=np.float64) - (1.0 if crpix is None else crpix)
    x = crval + pixels * step
    unit = keys.text(f"CUNIT{axis}")
    if unit is None:
        wat_units = _WAT_UNITS.search(_wat(keys, axis))
        unit = wat_units.group(1) if wat_units else None
    if unit is None and ctype == "FREQ":
        unit = "Hz"
    if keys.num("DC-FLAG") == 1:
        x = 10.0**x
    elif ctype.endswith("-LOG"):
        if crval < 10:
            notes.append(
                f"CTYPE{axis}={ctype!r} with CRVAL{axis}={crval} read as log10(wavelength)"
            )
            x = 10.0**x
        else:
            x = crval * np.exp(pixels * step / crval)
    return wave_metres(x, unit, notes)


def _companion(fits: FitsFile, hdu: Hdu, wanted: str, n: int) -> tuple[Hdu, np.ndarray] | None:
    """The HDU and data of an error, quality or wavelength array of n samples elsewhere."""
    for other in fits.hdus:
        if other is hdu or not other.is_image or np.prod(other.axes) != n:
            continue
        if role(other)[0] == wanted:
            return other, fits.image(other).ravel()
    return None


def _flux_unit(rec: SpectrumRecord, keys: Keys) -> None:
    bunit = keys.text("BUNIT")
    rec.flux_unit, note = flux_unit_string(bunit)
    if note:
        rec.warnings.append(note)
    rec.calib_level = calib_level(bunit, keys.text("FLUXCAL"))


def read(fits: FitsFile, hdu: Hdu, name: str) -> list[SpectrumRecord]:
    """A 1-D spectrum in an image HDU (or the reason it is not one)."""
    keys = Keys(hdu.header, fits.primary if hdu.index else None)
    axes = hdu.axes
    long_axes = [i for i, n in enumerate(axes) if n > 1]
    bands = None
    if len(long_axes) == 1:
        axis = long_axes[0] + 1
        flux = fits.image(hdu).ravel()
    elif is_multispec(keys) and len(axes) >= 2 and axes[1] > 1:
        raise reject_2d(keys, axes[0], axes[1])
    elif len(axes) == 3 and long_axes == [0, 2] and (keys.get("BANDID1") or is_multispec(keys)):
        axis = 1
        bands = fits.image(hdu)[:, 0, :]
        flux = bands[0]
    elif len(long_axes) == 2:
        raise reject_2d(keys, axes[long_axes[0]], axes[long_axes[1]])
    elif not long_axes:
        raise NotASpectrum(f"image of a single pixel ({hdu.shape_text()}) is not a spectrum")
    else:
        raise NotASpectrum(
            f"{len(long_axes)}-d cube ({hdu.shape_text()} pixels), not a 1-d spectrum: extract "
            "a spectrum before ingest"
        )
    rec = SpectrumRecord(file_format="image1d")
    fill_common(rec, keys, rec.warnings)
    rec.position = position_from(keys, rec.warnings)
    rec.obs_id, rec.origin_id = observation_ids(keys, name)
    _flux_unit(rec, keys)
    wave_array = _companion(fits, hdu, "wave", flux.size) if bands is None else None
    if wave_array is not None:  # wavelength of every pixel in its own HDU
        wave_keys = Keys(wave_array[0].header)
        unit = wave_keys.text("BUNIT") or wave_keys.text("CUNIT1")
        wave = wave_metres(wave_array[1], unit, rec.warnings)
    else:
        wave = axis_wave(keys, axis, flux.size, rec.warnings)

    error = quality = None
    unusable = None
    if bands is not None:
        for b in range(1, bands.shape[0]):
            band_id = str(keys.get(f"BANDID{b + 1}") or "").lower()
            if "sigma" in band_id or "error" in band_id:
                error = bands[b]
                break
    else:
        found = _companion(fits, hdu, "error", flux.size)
        if found is not None:
            error, unusable = error_from(found[1], role(found[0])[1] or "sigma")
        found = _companion(fits, hdu, "quality", flux.size)
        if found is not None:
            quality = as_quality(found[1])
    if unusable is not None and unusable.any():
        quality = np.zeros(flux.size, dtype=np.int32) if quality is None else quality
        quality[unusable] |= BAD_PIXEL
    return [set_arrays(rec, wave, flux, error, quality)]


def read_multifibre(fits: FitsFile, hdu: Hdu, fibres: Hdu, name: str) -> list[SpectrumRecord]:
    """2dF/AAOmega frames: one row per fibre, a VARIANCE image and a FIBRES table.

    Only program fibres (TYPE 'P') are spectra; sky, guide, parked and broken fibres are
    skipped. FIBRES RA/DEC are radians (2dF convention) unless TUNIT says degrees.
    """
    npix, nfib = hdu.axes
    table = fits.table(fibres)
    if table.nrows != nfib:
        raise NotASpectrum(
            f"multi-fibre image with {nfib} rows but a FIBRES table of {table.nrows} rows"
        )
    keys = Keys(hdu.header, fits.primary if hdu.index else None)
    type_col, name_col = table.column("TYPE"), table.column("NAME")
    if type_col is None:
        raise NotASpectrum("multi-fibre FIBRES table without a TYPE column")
    types = [t.upper() for t in table.strings(type_col)]
    rows = [i for i, t in enumerate(types) if t == "P"]
    if not rows:
        raise NotASpectrum(f"multi-fibre image without program fibres (TYPE 'P') among {nfib}")
    base = SpectrumRecord(file_format="image1d")
    fill_common(base, keys, base.warnings)
    base.target_name = None  # OBJECT names the field, not a fibre's target
    if base.t_min is None and keys.num("UTMJD") is not None:
        base.t_min = keys.num("UTMJD")
        if base.exptime is not None:
            base.t_max = base.t_min + base.exptime / 86400.0
    base_obs_id, base.origin_id = observation_ids(keys, name)
    instrument = (base.instrument or "").upper()
    if "2DF" in instrument or "AAOMEGA" in instrument:
        base.aperture = TWODF_FIBRE_DIAMETER
    _flux_unit(base, keys)
    wave = axis_wave(keys, 1, npix, base.warnings)

    flux = fits.image(hdu)
    variance_hdu = fits.find("VARIANCE")
    error = unusable = None
    if variance_hdu is not None and variance_hdu.axes == hdu.axes:
        error, unusable = error_from(fits.image(variance_hdu), "var")
    else:
        base.warnings.append("no VARIANCE image of the same shape; errors unknown")
    names = table.strings(name_col) if name_col is not None else [""] * nfib
    positions = _fibre_positions(table, Keys(fibres.header, hdu.header, fits.primary), base)
    pivot_col = table.column("PIVOT")
    pivots = table.values(pivot_col)[:, 0].tolist() if pivot_col is not None else None
    records: list[SpectrumRecord] = []
    skipped: list[str] = []
    for row in rows:
        rec = clone(base)
        rec.target_name = clean_text(names[row])
        rec.position = positions[row] if positions is not None else None
        if positions is None:
            rec.warnings.append("no position in header")
        fibre = int(pivots[row]) if pivots is not None else row + 1
        rec.obs_id = f"{base_obs_id or stem(name)}#fibre{fibre:03d}"
        quality = None
        if unusable is not None and unusable[row].any():
            quality = np.where(unusable[row], BAD_PIXEL, 0).astype(np.int32)
        try:
            set_arrays(rec, wave, flux[row], None if error is None else error[row], quality)
        except NotASpectrum as exc:
            skipped.append(f"fibre {fibre} skipped: {exc}")
            continue
        records.append(rec)
    if not records:
        raise NotASpectrum("no program fibre holds a usable spectrum")
    for rec in records:
        rec.warnings.extend(skipped)
    return records


def _fibre_positions(table, keys: Keys, base: SpectrumRecord) -> list | None:
    ra_col, dec_col = table.column("RA"), table.column("DEC")
    if ra_col is None or dec_col is None:
        return None
    frame = frame_from(keys, base.warnings)
    ra = table.values(ra_col)[:, 0].astype(np.float64)
    dec = table.values(dec_col)[:, 0].astype(np.float64)
    unit = (ra_col.unit or "rad").lower()
    if unit.startswith("rad"):
        if np.nanmax(np.abs(ra)) > 2 * np.pi + 1e-6:
            base.warnings.append("FIBRES RA exceeds 2 pi; read as degrees, not radians")
        else:
            ra, dec = np.degrees(ra), np.degrees(dec)
    return [make_position(r, d, frame, base.warnings) for r, d in zip(ra, dec, strict=True)]
