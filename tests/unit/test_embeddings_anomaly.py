"""The anomaly score on synthetic spectra whose departures from the model are known."""

from __future__ import annotations

import numpy as np

from escape_vo.embeddings.anomaly import (
    HIDE,
    SMOOTH_QUANTILE,
    STENCILS,
    calibrate,
    calibrate_smoothness,
    deviations,
    hide_strongest,
    response_fit,
    roughness,
    score,
    smoothness_z,
    uses_unexplained,
)

P = 300
T = np.linspace(-1, 1, P)


def _model(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Model spectra (continua with a few absorption lines and one emission line each) and
    their emission lines alone."""
    recon, lines = np.ones((n, P)), np.zeros((n, P))
    pix = np.arange(P)
    for row, line in zip(recon, lines, strict=True):
        for centre in rng.uniform(20, 280, 6):
            row -= 0.3 * np.exp(-0.5 * ((pix - centre) / 1.5) ** 2)
        line += 8 * np.exp(-0.5 * ((pix - rng.uniform(20, 280)) / 1.0) ** 2)
    return recon + lines, lines


def _observed(rng: np.random.Generator, recon: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """What an instrument with a smooth, unknown response and some noise records of objects
    whose emission lines are up to 30 % stronger or weaker than the model has them."""
    n = len(recon)
    true = recon + lines * rng.uniform(-0.3, 0.3, (n, 1))
    tilt = rng.uniform(-0.4, 0.4, (n, 1))
    return true * (1 + tilt * T + 0.1 * T**2) + rng.normal(0, 0.02, recon.shape)


def _normal_set(seed: int = 0, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    recon, lines = _model(rng, n)
    return _observed(rng, recon, lines), recon


def _departures(flux: np.ndarray, recon: np.ndarray, context: np.ndarray | None = None):
    """deviations() for a stand-in model that rebuilds `recon` whatever it is shown, or
    `context` when the strongest feature is hidden."""
    return deviations(flux, recon, hide_strongest(flux)[1], recon if context is None else context)


def test_response_fit_absorbs_a_smooth_instrument_response() -> None:
    flux, recon = _normal_set(n=20)
    mask = np.ones_like(flux, dtype=bool)
    fit = response_fit(flux, recon, mask)
    assert np.median(np.abs(flux - fit)) < 0.025  # the noise (and line strengths) are left
    assert np.median(np.abs(flux - recon)) > 0.05


def test_masked_bins_are_ignored() -> None:
    flux, recon = _normal_set(n=10)
    gapped = flux.copy()
    gapped[:, 100:160] = np.nan
    gapped[:, 130] = np.nan
    narrow, broad, unexplained = _departures(gapped, recon)
    assert np.isfinite(narrow).all() and np.isfinite(broad).all()
    assert np.isfinite(unexplained).all()
    ref_n, ref_b, ref_u = _departures(flux, recon)
    assert np.all(narrow <= ref_n * 3) and np.all(broad <= ref_b * 3)
    assert np.all(unexplained <= ref_u + 0.5)


def test_oddities_score_far_above_normal_spectra() -> None:
    flux, recon = _normal_set()
    calibration = calibrate(*_departures(flux, recon))
    normal = score(*_departures(flux, recon), calibration)
    assert abs(float(np.median(normal))) < 0.3  # a robust z-score against the training set

    rng = np.random.default_rng(1)
    test_recon, lines = _model(rng, 4)
    odd = _observed(rng, test_recon, 0 * lines)
    odd[0] *= 1 - 0.8 * np.exp(-0.5 * ((np.arange(P) - 150) / 6) ** 2)  # a broad trough
    odd[1, 77] += 15  # a spike where the model has nothing
    odd[2, 200:202] -= 2.5  # an over-subtracted sky line: negative flux
    odd[3] = test_recon[3] + 0.25 * lines[3]  # a line 25 % too strong: within the normal range
    scores = score(*_departures(odd, test_recon), calibration)
    assert (scores[:3] > np.quantile(normal, 0.99)).all(), scores
    assert scores[3] < np.quantile(normal, 0.9), scores  # relative: not an oddity


def test_calibration_is_median_and_mad_of_the_logarithms() -> None:
    narrow = np.exp(np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    broad = np.full(5, 2.0)
    unexplained = np.zeros(5)
    cal = calibrate(narrow, broad, unexplained)
    assert np.allclose(cal[:2], [2.0, 1.4826], atol=1e-3)
    assert cal[3] == 1.0 and cal[5] == 1.0  # no spread at all: z-scores stay finite
    larger = np.maximum((np.log(narrow + 1e-6) - 2) / 1.4826, 0.0)  # [0, 0, 0, 0.67, 1.35]
    assert np.allclose(cal[6:], [0.0, 1.0])  # median 0, MAD 0 -> spread 1
    assert np.allclose(score(narrow, broad, unexplained, cal), larger, atol=1e-4)
    # a model calibrated before `unexplained` existed (two statistics) leaves it out
    old = np.concatenate([cal[:4], cal[6:]])
    assert uses_unexplained(cal) and not uses_unexplained(old)
    assert np.allclose(score(narrow, broad, unexplained + 50, old), larger, atol=1e-4)


def test_without_a_context_only_unexplained_is_left_out() -> None:
    flux, recon = _normal_set(n=20)
    flux[:, 150] += 15.0
    window = hide_strongest(flux)[1]
    narrow, broad, unexplained = deviations(flux, recon, window, recon)
    n0, b0, u0 = deviations(flux, recon, window, None)
    np.testing.assert_array_equal(narrow, n0)
    np.testing.assert_array_equal(broad, b0)
    assert (u0 == 0).all() and (unexplained > 1).all()


def test_hide_strongest_replaces_the_most_prominent_feature_by_the_continuum() -> None:
    flux, _ = _normal_set(n=20)
    flux[:, 200] += 12.0  # far stronger than any line the model spectra have
    flux[3, :40] = np.nan  # a gap stays a gap
    hidden, window = hide_strongest(flux)
    assert window[:, 200 - HIDE : 201 + HIDE].all()
    assert window.sum(1).tolist() == [2 * HIDE + 1] * len(flux)
    assert np.isnan(hidden[3, :40]).all() and not window[3, :40].any()
    assert (np.abs(hidden[:, 200] - 1) < 0.5).all()  # the continuum, not the line
    np.testing.assert_array_equal(hidden[~window], flux[~window].astype(np.float32))
    empty = np.full((1, P), np.nan)
    assert np.isnan(hide_strongest(empty)[0]).all() and not hide_strongest(empty)[1].any()


def test_a_line_the_rest_of_the_spectrum_does_not_predict_is_unexplained() -> None:
    """A model may copy a lone line into its reconstruction (nothing left for `narrow`); hidden,
    the line is not predicted by the rest: `unexplained` sees it, and nothing else does."""
    flux, recon = _normal_set()
    calibration = calibrate(*_departures(flux, recon))
    lone = flux[:2].copy()
    lone[:, 150] += 15.0
    copied = recon[:2].copy()
    copied[:, 150] += 15.0  # the full reconstruction has the line...
    narrow, broad, unexplained = _departures(lone, copied, context=recon[:2])  # ...the rest not
    reference = _departures(flux, recon)
    assert (narrow < np.quantile(reference[0], 0.99)).all()
    assert (unexplained > 5 * np.quantile(reference[2], 0.99)).all(), unexplained
    scores = score(narrow, broad, unexplained, calibration)
    assert (scores > np.quantile(score(*reference, calibration), 0.99)).all(), scores


def test_a_spectrum_without_noise_is_flagged_by_its_smoothness() -> None:
    rng = np.random.default_rng(4)
    recon, _ = _model(rng, 400)
    sigma = rng.uniform(0.01, 0.05, (400, 1))
    flux = recon + sigma * rng.standard_normal(recon.shape)
    flux[:, :40] = np.nan  # gaps do not count
    continua = 1 + 0.3 * T + sigma * rng.standard_normal(recon.shape)
    ratio = roughness(continua) / sigma  # the noise, from the quietest ~75 of 300 bins
    assert ratio.shape == (400, 2)  # second and fourth differences
    assert np.all(np.abs(np.median(ratio, 0) - 1) < 0.05) and np.all(np.abs(ratio - 1) < 0.5)
    cal = calibrate_smoothness(flux)
    z = smoothness_z(flux, cal)
    # each stencil flags its smoothest SMOOTH_QUANTILE %, and only slightly
    assert (z > 0).mean() <= len(STENCILS) * SMOOTH_QUANTILE / 100 + 0.005 and z.max() < 1.5
    constant = np.where(np.isfinite(flux[:3]), 1.0, np.nan)
    assert (smoothness_z(constant, cal) > 5).all()  # no noise at all
    noisy = constant + 0.03 * rng.standard_normal(constant.shape)
    assert (smoothness_z(noisy, cal) == 0).all()  # a flat continuum with noise is fine
    # a rising continuum capped at saturation: its brightest 30 % have no noise left
    rising = np.where(np.isfinite(flux[:3]), 1 + T + 0.02 * rng.standard_normal((3, P)), np.nan)
    capped = np.minimum(rising, np.nanpercentile(rising, 70, axis=1, keepdims=True))
    assert (smoothness_z(capped, cal) > 5).all()
    # ... while the brightest 10 % capped leave the quietest quarter noisy: not flagged
    capped = np.minimum(rising, np.nanpercentile(rising, 90, axis=1, keepdims=True))
    assert (smoothness_z(capped, cal) < 1.5).all()
    # smooth noiseless curves: what the fourth difference sees and the second does not
    curves = np.stack([np.exp(3 * T), 1 + 0.5 * np.sin(2 * np.pi * np.arange(P) / 60.0)])
    curves = np.where(np.isfinite(flux[:2]), curves, np.nan)
    assert (smoothness_z(curves, cal) > 5).all()
    assert (smoothness_z(curves, cal[:2]) < 5).any()  # a version with the second alone
    assert (smoothness_z(constant, cal[:2]) > 5).all()  # which still flags a constant
    few = np.full((1, P), np.nan)
    few[0, 100:110] = 1.0  # six bins with both neighbours two away: not measurable
    assert np.isnan(roughness(few)[0]).all() and smoothness_z(few, cal)[0] == 0
