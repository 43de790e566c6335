"""The anomaly score: how far a spectrum departs from its model reconstruction, compared with
how far the training spectra depart from theirs.

The plain mean squared residual ranks spectra mostly by how strong their emission lines are
(a quasar's broad lines are never rebuilt exactly, and one mis-scaled line outweighs a whole
odd feature elsewhere) and by uncalibrated instrument responses the latent space is trained to
ignore. So the residual is measured differently:

  * the reconstruction is first multiplied by a smooth polynomial (Legendre, degree 4 over the
    covered span) fitted robustly, so a spectrum left in detector counts is not odd for that;
  * each residual is relative: divided by (0.1 + 0.2 * max(|flux|, |model|)), so a line that
    is 20 % too strong counts like 0.1 of continuum where nothing was expected;
  * two statistics are kept: `narrow`, the mean of the three largest squared relative residuals
    (a spike, a deep sky-subtraction residual), and `broad`, the largest run of 9 bins
    departing the same way (a trough, a broad absorption the model has no place for);
  * each is turned into a robust z-score (median and MAD of its logarithm over the training
    spectra, kept with the model), and the larger of the two, once more, into a robust
    z-score against the training spectra.

A score of 3 means "as far out as three standard deviations of the training spectra". This
is one of the model's two opinions: models.base combines it with the critic's
(embeddings.critic) and with the negative-flux significance measured at preprocessing;
docs/operator/embeddings.md has what each catches on the demo archive.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre

DEGREE = 4  # of the polynomial response the reconstruction may be multiplied by
FLOOR, RELATIVE = 0.1, 0.2  # relative residual = (flux - model) / (FLOOR + RELATIVE * level)
RUN = 9  # bins of a broad departure (9 bins ~ 9,000 km/s on the default grid)
CLIP = 3.0  # bins this many relative units off do not steer the response fit


def response_fit(flux: np.ndarray, recon: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """recon times the smooth polynomial that best matches flux over each covered span,
    fitted by iteratively down-weighting outlying bins (all spectra at once)."""
    p = flux.shape[1]
    idx = np.arange(p)
    first = np.where(mask, idx, p).min(1)
    last = np.where(mask, idx, -1).max(1)
    t = np.clip(2 * (idx[None] - first[:, None]) / np.maximum(last - first, 1)[:, None] - 1, -1, 1)
    basis = legendre.legvander(t, DEGREE) * recon[..., None]  # (n, p, DEGREE + 1)
    x = np.where(mask, flux, 0.0)
    # least squares on the relative residuals: weights 1 / (FLOOR + RELATIVE * level)^2, so
    # strong lines (whose strength is uncertain anyway) do not steer the continuum
    weight = mask / (FLOOR + RELATIVE * np.abs(recon)) ** 2
    ridge = 1e-9 * np.eye(DEGREE + 1)
    for _ in range(4):
        a = np.einsum("npk,np,npl->nkl", basis, weight, basis) + ridge
        b = np.einsum("npk,np,np->nk", basis, weight, x)
        coeffs = np.linalg.solve(a, b[..., None])[..., 0]
        fit = np.einsum("npk,nk->np", basis, coeffs)
        den = FLOOR + RELATIVE * np.abs(fit)
        weight = mask * ((np.abs(x - fit) < CLIP * den) + 1e-3) / den**2
    return fit


def _running_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Mean over a centred window of odd `width` along axis 1, zeros beyond the ends."""
    half = width // 2
    total = np.cumsum(np.pad(x, ((0, 0), (half + 1, half))), axis=1)
    return (total[:, width:] - total[:, :-width]) / width


def deviations(
    flux: np.ndarray, recon: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(narrow, broad) departure of each spectrum from its reconstruction; NaN = masked."""
    narrow = np.empty(len(flux))
    broad = np.empty(len(flux))
    for i in range(0, len(flux), chunk):
        f = flux[i : i + chunk].astype(np.float64)
        r = recon[i : i + chunk].astype(np.float64)
        mask = np.isfinite(f)
        f = np.where(mask, f, 0.0)
        fit = response_fit(f, r, mask)
        rel = np.where(mask, (f - fit) / (FLOOR + RELATIVE * np.maximum(np.abs(f), np.abs(fit))), 0)
        top = -np.sort(-(rel**2), axis=1)[:, :3]
        narrow[i : i + chunk] = top.mean(1)
        whole = _running_mean(mask.astype(np.float64), RUN) > 0.999
        run = np.where(whole, _running_mean(rel, RUN), 0.0)
        broad[i : i + chunk] = np.abs(run).max(1) * np.sqrt(RUN)
    return narrow, broad


def _centre_spread(values: np.ndarray) -> list[float]:
    median = float(np.median(values))
    return [median, float(1.4826 * np.median(np.abs(values - median))) or 1.0]


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(values + 1e-6)  # a perfect fit (0) stays finite


def _larger_z(narrow: np.ndarray, broad: np.ndarray, cal: np.ndarray) -> np.ndarray:
    return np.maximum((_log(narrow) - cal[0]) / cal[1], (_log(broad) - cal[2]) / cal[3])


def calibrate(narrow: np.ndarray, broad: np.ndarray) -> np.ndarray:
    """Median and MAD over the training spectra of log(narrow), of log(broad), and of the
    larger of their z-scores (so that the final score is itself centred on 0)."""
    cal = np.array(_centre_spread(_log(narrow)) + _centre_spread(_log(broad)))
    return np.concatenate([cal, _centre_spread(_larger_z(narrow, broad, cal))])


def score(narrow: np.ndarray, broad: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """The larger robust z-score of the two departures, as a robust z-score against the
    training spectra: 0 is typical, 3 is as odd as three standard deviations."""
    larger = _larger_z(narrow, broad, calibration)
    return ((larger - calibration[4]) / calibration[5]).astype(np.float32)
