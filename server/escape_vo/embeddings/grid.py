"""The common wavelength grid every spectrum is resampled onto before a model sees it.

Natural-log spacing makes a redshift a plain shift along the grid, which is what lets the
autoencoders search over redshift for spectra whose redshift is not known. The default grid
spans 70 nm to 2.5 um so that quasars up to z ~ 3.5 seen from 300 nm still fall on it in their
rest frame, and the near infrared of X-shooter fits in the observed frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


class NoCoverage(ValueError):
    """The spectrum has no good pixel on the grid."""


@dataclass(frozen=True)
class Grid:
    name: str
    wave_min: float  # metres, first bin's lower edge
    wave_max: float  # metres, last bin's upper edge
    n_pix: int

    @cached_property
    def edges(self) -> np.ndarray:
        return np.exp(np.linspace(np.log(self.wave_min), np.log(self.wave_max), self.n_pix + 1))

    @cached_property
    def centres(self) -> np.ndarray:
        e = self.edges
        return np.sqrt(e[1:] * e[:-1])

    @property
    def step(self) -> float:
        """Width of a bin in ln(wavelength): a shift of s bins is a redshift exp(s*step)-1."""
        return float(np.log(self.wave_max / self.wave_min) / self.n_pix)


CLIP = (-5.0, 20.0)  # normalised flux beyond this is a glitch, not a feature to fit or judge

GRIDS = {g.name: g for g in (Grid("loglam1024", 7.0e-8, 2.5e-6, 1024),)}
DEFAULT_GRID = GRIDS["loglam1024"]


@dataclass(frozen=True, slots=True)
class Resampled:
    flux: np.ndarray  # float32, NaN where masked
    rest_frame: bool
    scale: float
    noise: float | None
    coverage: float
    negative_z: float  # significance of the most negative native pixel (negative_flux_z)


def resample(
    grid: Grid,
    wave: np.ndarray,
    flux: np.ndarray,
    error: np.ndarray | None,
    quality: np.ndarray | None,
    redshift: float | None,
) -> Resampled:
    """Average the good pixels falling in each bin (interpolating where the input is coarser
    than the grid), divide by the median, NaN where there is nothing.

    Good pixels: finite flux, quality 0, and a positive error where errors are given. The
    spectrum moves to its rest frame when `redshift` is known (and > -1).
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    rest = redshift is not None and np.isfinite(redshift) and redshift > -0.99
    w = wave / (1.0 + redshift) if rest else wave
    good = np.isfinite(flux) & np.isfinite(w)
    if quality is not None:
        good &= np.asarray(quality) == 0
    err = None
    if error is not None:
        err = np.asarray(error, dtype=np.float64)
        known = np.isfinite(err)
        good &= ~known | (err > 0)
    if not good.any():
        raise NoCoverage("no good pixel in the spectrum")
    idx = np.searchsorted(grid.edges, w) - 1
    inside = good & (idx >= 0) & (idx < grid.n_pix)
    n = grid.n_pix
    counts = np.bincount(idx[inside], minlength=n)
    sums = np.bincount(idx[inside], weights=flux[inside], minlength=n)
    out = np.full(n, np.nan)
    has = counts > 0
    out[has] = sums[has] / counts[has]
    wg = w[good]
    order = np.argsort(wg)
    wg, fg = wg[order], flux[good][order]
    covered = (grid.centres >= wg[0]) & (grid.centres <= wg[-1])
    fill = covered & ~has
    if fill.any() and wg.size > 1:
        # Input coarser than the grid: interpolate between neighbouring good pixels, but not
        # across a gap (bad pixels, a chip gap) wider than the spectrum's own sampling.
        lw = np.log(wg)
        where = np.clip(np.searchsorted(lw, np.log(grid.centres[fill])), 1, lw.size - 1)
        gap = lw[where] - lw[where - 1]
        typical = float(np.median(np.diff(lw)))
        bridge = gap <= max(2.0 * typical, 1.5 * grid.step)
        targets = np.flatnonzero(fill)[bridge]
        out[targets] = np.interp(grid.centres[targets], wg, fg)
    valid = np.isfinite(out)
    if not valid.any():
        raise NoCoverage("the spectrum does not overlap the grid")
    median = float(np.median(out[valid]))
    scale = median if median > 0 else float(np.mean(np.abs(out[valid])))
    if not np.isfinite(scale) or scale <= 0:
        raise NoCoverage("the flux is zero everywhere")
    noise = None
    if err is not None:
        ok = inside & np.isfinite(err)
        if ok.any():
            var = np.bincount(idx[ok], weights=err[ok] ** 2, minlength=n)
            cnt = np.bincount(idx[ok], minlength=n)
            per_bin = np.sqrt(var[cnt > 0]) / cnt[cnt > 0]
            noise = float(np.median(per_bin) / scale)
    return Resampled(
        flux=(out / scale).astype(np.float32),
        rest_frame=bool(rest),
        scale=scale,
        noise=noise,
        coverage=float(valid.mean()),
        negative_z=negative_flux_z(flux[good], None if err is None else err[good], scale),
    )


SYSTEMATIC = 0.05  # of the median flux: sky subtraction and flux zero points are never better


def negative_flux_z(flux: np.ndarray, error: np.ndarray | None, scale: float) -> float:
    """How many sigmas the most negative pixel lies below zero, as a Gaussian z-score after
    allowing for the number of pixels looked at; 0 when noise explains it.

    Flux cannot be negative beyond its noise, so a deep negative feature is an artefact (an
    over-subtracted sky line, a bad zero level) whatever the object. It is measured on the
    native pixels because a grid bin of ~1,000 km/s averages an unresolved residual away. The
    noise is the error array where given, else the DER_SNR estimate from the flux itself, plus
    SYSTEMATIC * scale. The lowest of n pure-noise pixels lies ~sqrt(2 ln n) sigmas down, so
    z = sqrt(m^2 - 2 ln n) for a pixel m sigmas below zero (0 when negative).
    """
    if flux.size == 0:
        return 0.0
    sigma = np.full(flux.size, _der_snr_noise(flux))
    if error is not None:
        known = np.isfinite(error) & (error > 0)
        sigma[known] = error[known]
    m = float(np.max(-flux / np.sqrt(sigma**2 + (SYSTEMATIC * scale) ** 2)))
    return float(np.sqrt(max(0.0, m * m - 2.0 * np.log(flux.size)))) if m > 0 else 0.0


def _der_snr_noise(flux: np.ndarray) -> float:
    """Per-pixel noise from the flux alone (Stoehr et al. 2008, DER_SNR): robust to lines."""
    if flux.size < 5:
        return 0.0
    return 1.482602 / np.sqrt(6.0) * float(np.median(np.abs(2 * flux[2:-2] - flux[:-4] - flux[4:])))
