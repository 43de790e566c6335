"""Unit strings as archives write them -> astropy units, cached because parsing costs ~1 ms.

Real headers spell units loosely ('Angstroms', 'Ang', 'A', '1E-17 erg/cm^2/s/Ang', 'ADU',
'erg.cm**(-2).s**(-1).angstrom**(-1)'); they are normalised before astropy parses them. 'A'
means Angstrom here: ampere never occurs in spectra. Flux units are written back in astropy's
generic format ('1e-17 erg / (Angstrom s cm2)'), which VO clients parse.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import astropy.units as u
import numpy as np

from escape_vo.ingest.model import NotASpectrum

_REPLACEMENTS = (
    (re.compile(r"\b(?:angstroms?|angs?|aa|a)\b|Å", re.I), "Angstrom"),
    (re.compile(r"\bergs\b", re.I), "erg"),
    (re.compile(r"\bsec\b", re.I), "s"),
    (re.compile(r"\b(?:counts?|cts)\b", re.I), "count"),
    (re.compile(r"\badus?\b", re.I), "adu"),
    (re.compile(r"\b(?:electrons?|e-)(?=\W|$)", re.I), "electron"),
    (re.compile(r"\bmicrons?\b", re.I), "um"),
    (re.compile(r"\bjansky\b", re.I), "Jy"),
    (re.compile(r"\bphotons?\b", re.I), "photon"),
)
_ALIASES = {
    "FLAM": "erg / (s cm2 Angstrom)",  # HST/STSDAS shorthand
    "FNU": "erg / (s cm2 Hz)",
}
# Flux units a calibrated spectrum is expressed in (per wavelength, per frequency, integrated,
# photon fluxes, and per solid angle).
_CALIBRATED = tuple(
    u.Unit(s)
    for s in (
        "erg / (s cm2 Angstrom)",
        "erg / (s cm2 Hz)",
        "erg / (s cm2)",
        "photon / (s cm2 Angstrom)",
        "photon / (s cm2 Hz)",
        "photon / (s cm2)",
        "erg / (s cm2 Angstrom sr)",
        "erg / (s cm2 Hz sr)",
    )
)
_LOG_WAVE = re.compile(r"^\s*(?:log(?:10)?\s*\(?\s*(?:angstroms?|a)?\s*\)?|dex)\s*$", re.I)
_UNCALIBRATED_FLAGS = {"UNCALIBRATED", "NONE", "NO", "FALSE", "F", "RELATIVE"}


def _normalise(text: str) -> str:
    text = text.strip().strip("[]").strip()
    alias = _ALIASES.get(text.upper())
    if alias:
        return alias
    for pattern, repl in _REPLACEMENTS:
        text = pattern.sub(repl, text)
    return text


@lru_cache(maxsize=1024)
def parse_unit(text: str | None) -> u.UnitBase | None:
    """The astropy unit for a header unit string, or None when it cannot be understood."""
    if text is None or not text.strip():
        return None
    candidate = _normalise(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in (None, "fits", "cds"):
            try:
                return u.Unit(candidate, format=fmt, parse_strict="raise")
            except (ValueError, TypeError, KeyError):
                continue
    return None


@lru_cache(maxsize=1024)
def flux_unit_string(text: str | None) -> tuple[str | None, str | None]:
    """(unit string for the record, warning or None). Unparsable units are kept as written."""
    if text is None or not str(text).strip():
        return None, "no flux unit in the file"
    unit = parse_unit(text)
    if unit is None:
        return str(text).strip(), f"flux unit {str(text).strip()!r} not understood; kept as written"
    written = unit.to_string()
    if not written:  # dimensionless, e.g. a normalised spectrum
        return str(text).strip(), None
    return written, None


@lru_cache(maxsize=256)
def calib_level(flux_unit: str | None, fluxcal: str | None = None) -> int:
    """ObsCore calibration level of a spectrum from its flux unit and any FLUXCAL keyword.

    Rule: 2 when the flux is in a physical unit (energy or photon flux, per wavelength or per
    frequency, optionally per solid angle) and FLUXCAL does not say UNCALIBRATED; 1 otherwise:
    counts, ADU, electrons, normalised/dimensionless, or a unit that cannot be parsed.
    """
    if fluxcal is not None and str(fluxcal).strip().upper() in _UNCALIBRATED_FLAGS:
        return 1
    unit = parse_unit(flux_unit)
    if unit is None:
        return 1
    return 2 if any(unit.is_equivalent(ref) for ref in _CALIBRATED) else 1


def is_log_wave_unit(text: str | None) -> bool:
    """True for units saying the values are log10 of Angstrom ('log(Angstrom)', 'dex')."""
    return bool(text) and _LOG_WAVE.match(text) is not None


@lru_cache(maxsize=256)
def _to_metres(text: str) -> tuple[float | None, u.UnitBase | None]:
    """(factor to metres for length units, unit for other spectral units) for a unit string."""
    unit = parse_unit(text)
    if unit is None:
        return None, None
    if unit.is_equivalent(u.m):
        return float(unit.to(u.m)), None
    if unit.is_equivalent(u.m, equivalencies=u.spectral()):
        return None, unit
    return None, None


def spectral_to_metres(values: np.ndarray, unit_text: str) -> np.ndarray:
    """Spectral coordinates in the given unit -> float64 wavelengths in metres.

    Frequencies, energies and wavenumbers are converted with astropy's spectral equivalency;
    anything that is not spectral (pixels, unknown strings) means there is no wavelength axis.
    """
    factor, other = _to_metres(unit_text)
    values = np.asarray(values, dtype=np.float64)
    if factor is not None:
        return values * factor
    if other is not None:
        with np.errstate(divide="ignore"):
            return (values * other).to_value(u.m, equivalencies=u.spectral())
    raise NotASpectrum(
        f"spectral axis in {unit_text!r}, which is not a wavelength, frequency or energy unit"
    )


def guess_wave_unit(values: np.ndarray) -> str | None:
    """Angstrom, nm or um judged from the value range of a wavelength axis without a unit.

    Optical/IR spectra span roughly 0.3-5 um: values below 30 are micrometres; values inside
    250-1100 are nanometres (optical in nm; in Angstrom that range would be extreme UV);
    anything larger is Angstrom. Returns None when no value is usable.
    """
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    if high < 30:
        return "um"
    if low >= 250 and high <= 1100:
        return "nm"
    return "Angstrom"


_LENGTH_FACTORS = {"Angstrom": 1e-10, "nm": 1e-9, "um": 1e-6}


def wave_metres(values: np.ndarray, unit_text: str | None, notes: list[str]) -> np.ndarray:
    """Wavelengths in metres from values in unit_text; without a usable unit, judged from values.

    A missing or unparsable unit is inferred with guess_wave_unit() and noted.
    """
    if unit_text and parse_unit(unit_text) is not None:
        return spectral_to_metres(values, unit_text)
    values = np.asarray(values, dtype=np.float64)
    guess = guess_wave_unit(values)
    if guess is None:
        raise NotASpectrum("no valid wavelength values in the spectrum")
    finite = values[np.isfinite(values)]
    span = f"{finite.min():.6g}-{finite.max():.6g}"
    if unit_text:
        notes.append(f"wavelength unit {unit_text!r} not understood; {guess} assumed from {span}")
    else:
        notes.append(f"no wavelength unit; {guess} assumed from the values {span}")
    return values * _LENGTH_FACTORS[guess]
