"""A spectrum as arrays with units, read from what VO services deliver.

Spectrum Data Model VOTables (what SSA services, SODA cutouts and our DataLink `#derivation`
links return) are read by utype, then UCD, then column name; FITS files by the usual layouts
(binary table with wavelength/flux columns, one row of arrays or one row per pixel; SDSS
`loglam`; 1-D image with a linear or log-linear wavelength WCS). specutils is optional.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.io import fits, votable

_SPECTRAL_NAMES = ("wave", "wavelength", "lambda", "wavelen", "spectral_axis", "loglam", "freq")
_FLUX_NAMES = ("flux", "flux_density", "fluxdensity", "spec", "counts", "data")
_ERROR_NAMES = ("error", "err", "err_flux", "flux_error", "sigma", "stat_error", "ivar")
_QUALITY_NAMES = ("quality", "qual", "mask", "and_mask", "flags", "flag")


@dataclass
class Spectrum:
    """One spectrum: wavelength (or frequency) and flux as astropy Quantities."""

    id: str
    wavelength: u.Quantity
    flux: u.Quantity
    error: u.Quantity | None = None
    quality: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.wavelength.size)

    def to_specutils(self):
        """A specutils Spectrum (Spectrum1D in specutils < 2); needs `pip install specutils`."""
        try:
            import specutils
            from astropy.nddata import StdDevUncertainty
        except ImportError as exc:
            raise ImportError("to_specutils() needs specutils: pip install specutils") from exc
        cls = getattr(specutils, "Spectrum", None) or specutils.Spectrum1D
        uncertainty = StdDevUncertainty(self.error) if self.error is not None else None
        mask = (self.quality != 0) if self.quality is not None else None
        return cls(
            flux=self.flux,
            spectral_axis=self.wavelength,
            uncertainty=uncertainty,
            mask=mask,
            meta=dict(self.meta),
        )


def _unit(text: object) -> u.UnitBase:
    if text is None or str(text).strip() == "":
        return u.dimensionless_unscaled
    if isinstance(text, u.UnitBase):
        return text
    for fmt in ("vounit", "fits", None):
        try:
            return u.Unit(str(text), format=fmt, parse_strict="raise")
        except ValueError:
            continue
    return u.Unit(str(text), parse_strict="silent")


def _pick(
    names: dict[str, str],
    attrs: dict[str, tuple[str, str]],
    wanted_utype: str,
    wanted_ucds: tuple[str, ...],
    wanted_names: tuple[str, ...],
) -> str | None:
    """A column by utype suffix, then UCD prefix, then name. attrs: name -> (utype, ucd)."""
    for name, (utype, _) in attrs.items():
        if utype and utype.lower().endswith(wanted_utype):
            return name
    for prefix in wanted_ucds:
        for name, (_, ucd) in attrs.items():
            if ucd and ucd.lower().split(";")[0] == prefix:
                return name
    for candidate in wanted_names:
        if candidate in names:
            return names[candidate]
    return None


def parse_spectrum(data: bytes, content_type: str | None = None, id_: str = "") -> Spectrum:
    """A Spectrum from a VOTable or FITS document; ValueError if no spectrum is recognised."""
    head = data[:512].lstrip()
    if head.startswith(b"<") or "xml" in (content_type or ""):
        return _from_votable(data, id_)
    if head.startswith(b"SIMPLE") or head.startswith(b"\x1f\x8b"):
        return _from_fits(data, id_)
    raise ValueError(f"not a spectrum document (content type {content_type!r})")


def _from_votable(data: bytes, id_: str) -> Spectrum:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = votable.parse(io.BytesIO(data), verify="ignore")
    table = document.get_first_table()
    fields = {f.name: f for f in table.fields}
    attrs = {f.name: (f.utype or "", f.ucd or "") for f in table.fields}
    names = {n.lower(): n for n in fields}
    spec = _pick(
        names, attrs, "spectralaxis.value", ("em.wl", "em.freq", "em.energy"), _SPECTRAL_NAMES
    )
    flux = _pick(
        names,
        attrs,
        "fluxaxis.value",
        ("phot.flux.density", "phot.flux", "phot.count", "phot.fluence"),
        _FLUX_NAMES,
    )
    if spec is None or flux is None:
        raise ValueError(f"no spectral and flux columns in the VOTable (columns: {list(fields)})")
    err = _pick(names, attrs, "fluxaxis.accuracy.staterror", ("stat.error",), _ERROR_NAMES)
    qual = _pick(names, attrs, "fluxaxis.quality", ("meta.code.qual",), _QUALITY_NAMES)
    arr = table.array
    # PARAMs anywhere in the document (Spectrum DM puts them on the resource or in groups)
    meta = {
        p.name: _param_value(p)
        for p in document.iter_fields_and_params()
        if isinstance(p, votable.tree.Param)
    }
    meta.update({i.name: i.value for i in table.infos})
    return Spectrum(
        id=id_,
        wavelength=np.asarray(arr[spec], dtype=float) * _unit(fields[spec].unit),
        flux=np.asarray(arr[flux], dtype=float) * _unit(fields[flux].unit),
        error=(
            np.asarray(arr[err], dtype=float) * _unit(fields[err].unit or fields[flux].unit)
            if err and err != flux
            else None
        ),
        quality=np.asarray(arr[qual]) if qual else None,
        meta=meta,
    )


def _param_value(param) -> object:
    """A PARAM's value as a plain Python value (a string, a number, a tuple for an array)."""
    value = param.value
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    return value.item() if isinstance(value, np.generic) else value


def _from_fits(data: bytes, id_: str) -> Spectrum:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(io.BytesIO(data))
        for hdu in hdul:
            if isinstance(hdu, fits.BinTableHDU) and hdu.data is not None and len(hdu.data):
                found = _from_bintable(hdu, id_)
                if found is not None:
                    return found
        for hdu in hdul:
            if hdu.is_image and hdu.data is not None and hdu.data.ndim == 1:
                return _from_image(hdu, id_)
    raise ValueError("no 1-D spectrum found in the FITS file")


def _from_bintable(hdu: fits.BinTableHDU, id_: str) -> Spectrum | None:
    cols = hdu.columns
    header = hdu.header
    attrs = {}
    for i, c in enumerate(cols, start=1):
        attrs[c.name] = (header.get(f"TUTYPE{i}", ""), header.get(f"TUCD{i}", ""))
    names = {c.name.lower(): c.name for c in cols}
    spec = _pick(names, attrs, "spectralaxis.value", ("em.wl", "em.freq"), _SPECTRAL_NAMES)
    flux = _pick(names, attrs, "fluxaxis.value", ("phot.flux.density", "phot.flux"), _FLUX_NAMES)
    if spec is None or flux is None:
        return None
    err = _pick(names, attrs, "fluxaxis.accuracy.staterror", ("stat.error",), _ERROR_NAMES)
    qual = _pick(names, attrs, "fluxaxis.quality", ("meta.code.qual",), _QUALITY_NAMES)
    rows = hdu.data

    def column(name: str) -> np.ndarray:
        values = rows[name]
        return np.asarray(values[0] if len(rows) == 1 and np.ndim(values) == 2 else values)

    units = {c.name: c.unit for c in cols}
    wave = column(spec).astype(float)
    wave_unit = _unit(units.get(spec))
    if spec.lower() == "loglam":
        wave, wave_unit = 10.0**wave, u.AA
    elif wave_unit == u.dimensionless_unscaled:
        wave_unit = u.AA
    flux_unit = _unit(units.get(flux))
    error = None
    if err:
        e = column(err).astype(float)
        if err.lower() == "ivar":
            with np.errstate(divide="ignore", invalid="ignore"):
                e = np.where(e > 0, 1.0 / np.sqrt(e), np.nan)
        error = e * flux_unit
    return Spectrum(
        id=id_,
        wavelength=wave * wave_unit,
        flux=column(flux).astype(float) * flux_unit,
        error=error,
        quality=column(qual) if qual else None,
        meta={k: hdu.header[k] for k in ("OBJECT", "INSTRUME", "TELESCOP") if k in hdu.header},
    )


def _from_image(hdu: fits.ImageHDU, id_: str) -> Spectrum:
    h = hdu.header
    n = hdu.data.size
    step = h.get("CDELT1", h.get("CD1_1"))
    if step is None or "CRVAL1" not in h:
        raise ValueError("1-D image without a wavelength WCS (CRVAL1/CDELT1)")
    pix = np.arange(1, n + 1, dtype=float)
    wave = h["CRVAL1"] + (pix - h.get("CRPIX1", 1.0)) * step
    if h.get("DC-FLAG") == 1:
        wave = 10.0**wave
    unit = _unit(h.get("CUNIT1")) if h.get("CUNIT1") else u.AA
    return Spectrum(
        id=id_,
        wavelength=wave * unit,
        flux=np.asarray(hdu.data, dtype=float) * _unit(h.get("BUNIT")),
        meta={k: h[k] for k in ("OBJECT", "INSTRUME", "TELESCOP") if k in h},
    )
