"""Put the sampled arrays into a record and derive what follows from them (n_pix, range, SNR)."""

from __future__ import annotations

import numpy as np

from escape_vo.ingest.model import NotASpectrum, SpectrumRecord

#: Quality bit set by the readers on pixels without a usable value (non-finite flux, zero inverse
#: variance). Archive flags keep their own bits; 0 always means good.
BAD_PIXEL = 1 << 30


def _native_float(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return values.astype(values.dtype.newbyteorder("="), copy=False)
    return values.astype(np.float64)


def as_quality(flags: np.ndarray) -> np.ndarray:
    """Native int32 flags (int64 when stored that wide), a fresh copy safe to modify."""
    flags = np.asarray(flags)
    return flags.astype(np.int64 if flags.dtype.itemsize > 4 else np.int32)


def set_arrays(
    rec: SpectrumRecord,
    wave: np.ndarray,
    flux: np.ndarray,
    error: np.ndarray | None = None,
    quality: np.ndarray | None = None,
) -> SpectrumRecord:
    """Attach wave (metres), flux, error and quality, then fill n_pix, wave_min/max and snr.

    Samples without a finite positive wavelength (padding in fixed-width table cells) are
    dropped; n_pix counts the rest. Pixels with non-finite flux stay but get BAD_PIXEL.
    error is NaN where unknown. snr, unless the header gave one, is the median of flux/error
    over good pixels (quality 0, finite, error > 0).
    """
    wave = np.asarray(wave, dtype=np.float64).ravel()
    flux = _native_float(flux).ravel()
    n = wave.size
    if flux.size != n:
        raise NotASpectrum(f"wavelength and flux arrays differ in length ({n} vs {flux.size})")
    if error is None:
        error = np.full(n, np.nan, dtype=flux.dtype)
    else:
        error = _native_float(error).ravel()
        if error.size != n:
            rec.warnings.append(f"error array length {error.size} != {n}; errors left out")
            error = np.full(n, np.nan, dtype=flux.dtype)
    if quality is None:
        quality = np.zeros(n, dtype=np.int32)
    else:
        quality = as_quality(quality).ravel()
        if quality.size != n:
            rec.warnings.append(f"quality array length {quality.size} != {n}; flags left out")
            quality = np.zeros(n, dtype=np.int32)
    bad_flux = ~np.isfinite(flux)
    if bad_flux.any():
        quality[bad_flux] |= BAD_PIXEL
    usable = np.isfinite(wave) & (wave > 0)
    kept = int(np.count_nonzero(usable))
    if kept == 0:
        raise NotASpectrum("no valid wavelength values in the spectrum")
    if kept < n:
        wave, flux, error, quality = wave[usable], flux[usable], error[usable], quality[usable]
        rec.warnings.append(f"{n - kept} samples without a valid wavelength dropped")
    rec.wave, rec.flux, rec.error, rec.quality = wave, flux, error, quality
    rec.n_pix = kept
    rec.wave_min = float(wave.min())
    rec.wave_max = float(wave.max())
    if rec.snr is None:
        rec.snr = median_snr(flux, error, quality)
    return rec


def median_snr(flux: np.ndarray, error: np.ndarray, quality: np.ndarray) -> float | None:
    """Median of flux/error over good pixels, None when no pixel has both."""
    good = (quality == 0) & np.isfinite(flux) & (error > 0) & np.isfinite(error)
    if not good.any():
        return None
    value = float(np.median(flux[good] / error[good]))
    return value if np.isfinite(value) else None
