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
  * three statistics are kept: `narrow`, the mean of the three largest squared relative
    residuals (a spike, a deep sky-subtraction residual), `broad`, the largest run of 9 bins
    departing the same way (a trough, a broad absorption the model has no place for), and
    `unexplained`: the spectrum's most prominent feature is hidden from the model (replaced by
    the local continuum) and rebuilt from the rest of the spectrum; how far the feature is from
    that prediction, as |ln| of the flux ratio, is what the rest of the spectrum does not
    imply. A quasar's or galaxy's strongest line is predicted by its other lines; a lone line
    on a featureless continuum is not, even where the full reconstruction copies it (the shift
    search can place a line anywhere, so `narrow` barely sees it);
  * each is turned into a robust z-score (median and MAD over the training spectra, of the
    logarithm for the first two, kept with the model), and the largest, once more, into a
    robust z-score against the training spectra.

A score of 3 means "as far out as three standard deviations of the training spectra". This
is one of the model's two opinions: models.base combines it with the critic's
(embeddings.critic), with the negative-flux significance measured at preprocessing and with
the smoothness flag below (a quarter or more of a spectrum without noise);
docs/operator/embeddings.md has what each catches on the demo archive.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np
from numpy.polynomial import legendre

DEGREE = 4  # of the polynomial response the reconstruction may be multiplied by
FLOOR, RELATIVE = 0.1, 0.2  # relative residual = (flux - model) / (FLOOR + RELATIVE * level)
RUN = 9  # bins of a broad departure (9 bins ~ 9,000 km/s on the default grid)
CLIP = 3.0  # bins this many relative units off do not steer the response fit
HIDE = 1  # bins either side of the most prominent one hidden for the `unexplained` statistic
LOCAL = 15  # bins of the running median a feature's prominence is measured against


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


def hide_strongest(flux: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(copy, window): `flux` (NaN where masked) with its most prominent feature replaced by
    the local continuum, and where. The feature is the bin departing most from the running
    median of its neighbourhood (gaps count as the spectrum's median, 1 after normalisation),
    relative to its level, with HIDE bins either side. Replaced rather than masked: in a gap
    the model could put a line at no cost (its shift search would); on the continuum it must
    be predicted by the rest of the spectrum to be rebuilt."""
    out = np.array(flux, dtype=np.float32, copy=True)
    window = np.zeros(out.shape, dtype=bool)
    half = LOCAL // 2
    pix = np.arange(out.shape[1])
    for i in range(0, len(out), chunk):
        f = out[i : i + chunk]
        covered = np.isfinite(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a spectrum with no pixel at all
            filled = np.where(covered, f, np.nan_to_num(np.nanmedian(f, axis=1, keepdims=True)))
        padded = np.pad(filled, ((0, 0), (half, half)), mode="edge")
        local = np.median(np.lib.stride_tricks.sliding_window_view(padded, LOCAL, axis=1), axis=2)
        level = FLOOR + RELATIVE * np.maximum(np.abs(filled), np.abs(local))
        prominence = np.where(covered, np.abs(filled - local) / level, -1.0)
        peak = prominence.argmax(1)
        w = (np.abs(pix[None] - peak[:, None]) <= HIDE) & covered
        f[w] = local[w]
        window[i : i + chunk] = w
    return out, window


def deviations(
    flux: np.ndarray,
    recon: np.ndarray,
    window: np.ndarray,
    context: np.ndarray | None,
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(narrow, broad, unexplained) departure of each spectrum (NaN = masked) from its
    reconstruction `recon`, and of its strongest feature (bins `window`) from `context`: the
    rebuild of the spectrum with that feature hidden (hide_strongest). Without a context
    (a model calibrated before `unexplained`, see uses_unexplained) that one is 0."""
    narrow = np.empty(len(flux))
    broad = np.empty(len(flux))
    unexplained = np.empty(len(flux))
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
        if context is None:
            unexplained[i : i + chunk] = 0.0
            continue
        h = window[i : i + chunk]
        seen = mask & ~h
        predicted = response_fit(
            np.where(seen, f, 0.0), context[i : i + chunk].astype(np.float64), seen
        )
        ratio = (np.maximum(f, 0) + FLOOR) / (np.maximum(predicted, 0) + FLOOR)
        unexplained[i : i + chunk] = np.where(h, np.abs(np.log(ratio)), 0.0).max(1)
    return narrow, broad, unexplained


def _centre_spread(values: np.ndarray) -> list[float]:
    median = float(np.median(values))
    return [median, float(1.4826 * np.median(np.abs(values - median))) or 1.0]


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(values + 1e-6)  # a perfect fit (0) stays finite


def _larger_z(stats: tuple[np.ndarray, ...], cal: np.ndarray) -> np.ndarray:
    """The largest robust z-score of the statistics (the first two taken as logarithms); `cal`
    holds a median and a spread per statistic. A model calibrated before `unexplained` existed
    has two pairs, and that statistic is left out of its score."""
    n = len(cal) // 2
    values = [_log(stats[0]), _log(stats[1]), stats[2]][:n]
    return np.max([(v - cal[2 * k]) / cal[2 * k + 1] for k, v in enumerate(values)], axis=0)


def uses_unexplained(calibration: np.ndarray) -> bool:
    """Whether a model's calibration has the `unexplained` statistic (three pairs + one)."""
    return len(calibration) >= 8


def calibrate(narrow: np.ndarray, broad: np.ndarray, unexplained: np.ndarray) -> np.ndarray:
    """Median and MAD over the training spectra of log(narrow), of log(broad), of unexplained,
    and of the largest of their z-scores (so that the final score is itself centred on 0)."""
    stats = (narrow, broad, unexplained)
    cal = np.array(
        _centre_spread(_log(narrow)) + _centre_spread(_log(broad)) + _centre_spread(unexplained)
    )
    return np.concatenate([cal, _centre_spread(_larger_z(stats, cal))])


def score(
    narrow: np.ndarray, broad: np.ndarray, unexplained: np.ndarray, calibration: np.ndarray
) -> np.ndarray:
    """The largest robust z-score of the departures, as a robust z-score against the training
    spectra: 0 is typical, 3 is as odd as three standard deviations."""
    larger = _larger_z((narrow, broad, unexplained), calibration[:-2])
    return ((larger - calibration[-2]) / calibration[-1]).astype(np.float32)


SMOOTH_QUANTILE = 1  # percent: training spectra at least this rough never get a smoothness flag
# The noise is measured on the quietest quarter of a spectrum's bins rather than on the median
# one (DER_SNR): a quarter without any noise (flux capped at saturation, a stretch of fill
# values, a noiseless model pasted in) is as odd as a spectrum without any.
ROUGH_QUANTILE = 25
# Two differences over neighbours two bins apart (as DER_SNR): the second, 2 f_i - f_i-2 -
# f_i+2, sees a plateau of 5 bins as noiseless; the fourth, f_i-4 - 4 f_i-2 + 6 f_i - 4 f_i+2 +
# f_i+4, cancels a cubic too, so a smooth noiseless curve (a power law, a sine, a model) has
# almost none left where the second keeps its curvature. Each is divided by what Gaussian
# noise of sigma 1 gives: the root of the sum of its squared coefficients times the
# ROUGH_QUANTILE-th percentile of |N(0, 1)|.
STENCILS = (np.array([-1.0, 2.0, -1.0]), np.array([1.0, -4.0, 6.0, -4.0, 1.0]))
_HALF_NORMAL = NormalDist().inv_cdf(0.5 + ROUGH_QUANTILE / 200)


def roughness(flux: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """(n, len(STENCILS)): the noise of each spectrum (NaN = masked) on the grid, from the flux
    alone, in the manner of DER_SNR (Stoehr et al. 2008) but from the ROUGH_QUANTILE-th
    percentile of each of the STENCILS' differences, over the bins whose neighbours it takes
    are covered too. NaN with fewer than 8 such bins. Every observed spectrum has some noise;
    a constant has none."""
    out = np.full((len(flux), len(STENCILS)), np.nan)
    for i in range(0, len(flux), chunk):
        f = np.asarray(flux[i : i + chunk], dtype=np.float64)
        for k, stencil in enumerate(STENCILS):
            reach = 2 * (len(stencil) - 1)  # bins spanned, neighbours two apart
            diff = sum(c * f[:, 2 * j : f.shape[1] - reach + 2 * j] for j, c in enumerate(stencil))
            diff = np.abs(diff)  # NaN where any bin it takes is
            enough = np.isfinite(diff).sum(1) >= 8
            if enough.any():
                quiet = np.nanpercentile(diff[enough], ROUGH_QUANTILE, axis=1)
                out[i : i + chunk, k][enough] = quiet / (_HALF_NORMAL * np.linalg.norm(stencil))
    return out


def calibrate_smoothness(flux: np.ndarray) -> np.ndarray:
    """Per stencil, [SMOOTH_QUANTILE-th percentile, MAD] of log roughness over the training
    spectra, flattened."""
    cal = []
    for r in _log(roughness(flux)).T:
        r = r[np.isfinite(r)]
        if r.size == 0:
            cal += [np.nan, 1.0]
            continue
        spread = float(1.4826 * np.median(np.abs(r - np.median(r)))) or 1.0
        cal += [float(np.percentile(r, SMOOTH_QUANTILE)), spread]
    return np.array(cal)


def smoothness_z(flux: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """How many spreads (MAD of log roughness) a spectrum is smoother than the smoothest
    SMOOTH_QUANTILE % of the training spectra, by whichever stencil says more; 0 when it is
    not (or cannot be measured). A spectrum a quarter or more of which has no noise at all (a
    constant, fill values, flux capped at saturation, a noiseless model) is odd whatever the
    model rebuilds; like negative flux, this only ever raises a score. A calibration of one
    pair (a version trained before the fourth difference) uses the second alone."""
    logs = _log(roughness(flux))
    pairs = calibration.reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        z = np.stack([(floor - logs[:, k]) / spread for k, (floor, spread) in enumerate(pairs)])
    z = np.where(np.isfinite(z) & (z > 0), z, 0.0).max(0)
    return z.astype(np.float32)
