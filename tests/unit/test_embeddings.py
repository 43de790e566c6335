"""Embeddings without a database: resampling, the models' mathematics, the ADQL function."""

from __future__ import annotations

import numpy as np
import pytest

from escape_vo.adql import AdqlError, Catalog, translate
from escape_vo.embeddings.grid import (
    CLIP,
    DEFAULT_GRID,
    Grid,
    NoCoverage,
    negative_flux_z,
    resample,
)
from escape_vo.embeddings.models import MODELS
from escape_vo.embeddings.models.base import MIN_UNSEEN, TAIL, _rescale
from escape_vo.embeddings.models.shiftnet import nt_xent, random_views, shift_losses
from escape_vo.embeddings.preprocess import Dataset
from escape_vo.embeddings.store import sky_position
from escape_vo.schema.model import published_tables

GRID = Grid("test", 4.0e-7, 8.0e-7, 200)


def _line_spectrum(centre_m: float, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    wave = np.linspace(4.2e-7, 7.8e-7, n)
    flux = 2.0 + 10.0 * np.exp(-0.5 * ((wave - centre_m) / 1e-9) ** 2)
    return wave, flux


def test_resample_normalises_and_masks_missing_coverage_and_bad_pixels() -> None:
    wave, flux = _line_spectrum(6.0e-7)
    quality = np.zeros(wave.size, dtype=np.int32)
    quality[(wave > 5.0e-7) & (wave < 5.2e-7)] = 4  # a flagged stretch
    r = resample(GRID, wave, flux, np.full(wave.size, 0.1), quality, None)
    centres = GRID.centres
    assert r.flux.dtype == np.float32 and r.flux.shape == (GRID.n_pix,)
    assert np.isnan(r.flux[centres < 4.15e-7]).all()  # below the spectrum: no coverage
    assert np.isnan(r.flux[(centres > 5.02e-7) & (centres < 5.18e-7)]).all()  # flagged
    assert np.nanmedian(r.flux) == pytest.approx(1.0)
    assert r.scale == pytest.approx(2.0, rel=1e-3)
    assert not r.rest_frame
    assert 0.6 < r.coverage < 0.9
    assert r.noise is not None and r.noise < 0.1


def test_resample_moves_a_spectrum_with_redshift_to_its_rest_frame() -> None:
    z = 0.2
    wave, flux = _line_spectrum(5.0e-7 * (1 + z))
    wave_rest, flux_rest = _line_spectrum(5.0e-7)
    shifted = resample(GRID, wave, flux, None, None, z)
    rest = resample(GRID, wave_rest, flux_rest, None, None, None)
    assert shifted.rest_frame
    assert np.nanargmax(shifted.flux) == np.nanargmax(rest.flux)
    assert GRID.centres[np.nanargmax(shifted.flux)] == pytest.approx(5.0e-7, rel=GRID.step)


def test_resample_interpolates_input_coarser_than_the_grid() -> None:
    wave = np.linspace(4.0e-7, 8.0e-7, 20)  # 20 pixels for 200 bins
    r = resample(GRID, wave, np.linspace(1, 2, 20), None, None, None)
    assert np.isfinite(r.flux[5:-5]).all()


def _sky_spectrum(depth: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A noisy continuum at 1.0 with an unresolved dip `depth` times the continuum deep."""
    wave = np.linspace(4.2e-7, 7.8e-7, 40_000)  # R ~ 50,000 sampling: 2-pixel lines
    flux = 1.0 + rng.normal(0, 0.05, wave.size)
    flux -= depth * np.exp(-0.5 * ((wave - 6.3e-7) / 1.2e-11) ** 2)
    return wave, flux


def test_negative_flux_is_found_at_native_sampling_where_the_grid_dilutes_it() -> None:
    rng = np.random.default_rng(1)
    wave, flux = _sky_spectrum(4.0, rng)
    with_errors = resample(GRID, wave, flux, np.full(wave.size, 0.05), None, None)
    without = resample(GRID, wave, flux, None, None, None)  # noise estimated from the flux
    assert with_errors.negative_z > 30 and without.negative_z > 30
    assert np.nanmin(with_errors.flux) > 0.8  # the grid bin hardly sees it
    wave, flux = _sky_spectrum(0.0, rng)
    assert resample(GRID, wave, flux, np.full(wave.size, 0.05), None, None).negative_z == 0.0


def test_noise_around_zero_flux_is_not_negative_flux() -> None:
    """Deep absorption reaching zero, at low and at high signal-to-noise: noise explains it."""
    rng = np.random.default_rng(2)
    level = np.where(np.arange(50_000) % 5000 < 500, 0.0, 1.0)  # saturated troughs
    for sigma in (0.3, 0.001):
        flux = level + rng.normal(0, sigma, level.size)
        assert negative_flux_z(flux, np.full(level.size, sigma), 1.0) == 0.0
        assert negative_flux_z(flux, None, 1.0) == 0.0
    assert negative_flux_z(np.zeros(0), None, 1.0) == 0.0
    assert negative_flux_z(np.array([1.0, -50.0, 1.0]), None, 1.0) > 10


def test_resample_refuses_spectra_off_the_grid() -> None:
    with pytest.raises(NoCoverage):
        resample(GRID, np.linspace(1e-6, 2e-6, 100), np.ones(100), None, None, None)
    with pytest.raises(NoCoverage):
        resample(GRID, np.linspace(5e-7, 6e-7, 100), np.full(100, np.nan), None, None, None)


def _low_rank_dataset(n: int = 300, seed: int = 1) -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, GRID.n_pix))
    coeffs = rng.normal(size=(n, 3))
    flux = (1.0 + 0.1 * coeffs @ basis).astype(np.float32)
    truth = flux.copy()
    for i in range(n):  # each spectrum covers a random window of the grid
        lo = rng.integers(0, GRID.n_pix // 2)
        flux[i, :lo] = np.nan
        flux[i, lo + GRID.n_pix // 2 :] = np.nan
    data = Dataset(np.arange(n), flux, np.zeros(n, bool), np.full(n, np.nan, np.float32))
    return data, truth


def test_masked_pca_fits_spectra_with_gaps() -> None:
    data, _ = _low_rank_dataset()
    model = MODELS["pca"](GRID, latent_dim=4, iterations=15, critic_epochs=0)
    report = model.fit(data, seed=0)
    emb = model.embed(data)
    assert emb.vectors.shape == (len(data), 4)
    assert report.history[-1] < report.history[0]
    assert float(np.mean(emb.error)) < 1e-3  # three components explain the data
    # the anomaly score is a robust z-score against the training spectra: centred on 0
    assert abs(float(np.median(emb.anomaly))) < 0.5


def test_models_round_trip_through_bytes() -> None:
    data, _ = _low_rank_dataset(n=80)
    for name, params in (
        ("pca", {"latent_dim": 3, "critic_epochs": 2}),
        ("spherical", {"epochs": 1, "critic_epochs": 1}),
    ):
        grid = GRID if name == "pca" else DEFAULT_GRID
        if name != "pca":
            flux = np.full((80, grid.n_pix), np.nan, np.float32)
            flux[:, 400:600] = data.flux[:, :200]
            data = Dataset(data.spectrum_id, flux, data.rest_frame, data.noise)
        model = MODELS[name](grid, **params)
        model.fit(data, seed=3)
        again = type(model).from_bytes(model.to_bytes(), grid)
        first, second = model.embed(data), again.embed(data)
        np.testing.assert_array_equal(first.vectors, second.vectors)
        np.testing.assert_array_equal(model.calibration, again.calibration)
        assert again.critic is not None
        np.testing.assert_array_equal(model.critic.calibration, again.critic.calibration)
        np.testing.assert_array_equal(first.anomaly, second.anomaly)
        np.testing.assert_array_equal(model.errors(data), first.error)  # what training reports
        assert np.isfinite(first.anomaly).all() and np.isfinite(first.error).all()


def test_a_model_saved_without_anomaly_calibration_scores_by_its_error() -> None:
    """Versions trained before the anomaly score existed still load and serve."""
    data, _ = _low_rank_dataset(n=80)
    model = MODELS["pca"](GRID, latent_dim=3, critic_epochs=0)
    model.fit(data, seed=0)
    model.calibration = None
    old = type(model).from_bytes(model.to_bytes(), GRID)
    assert old.calibration is None
    emb = old.embed(data)
    np.testing.assert_array_equal(emb.anomaly, emb.error)


def test_new_spectra_are_scored_on_the_training_spectra_scale() -> None:
    """A model knows its training spectra better than new ones, so held-out spectra set how
    much further new spectra depart; apply maps them onto the training spectra's scale and
    leaves the training spectra's own scores alone."""
    data, _ = _low_rank_dataset(n=300)
    rng = np.random.default_rng(5)
    flux = data.flux.copy()
    flux[200:] += rng.normal(0, 0.03, flux[200:].shape).astype(np.float32)  # new: noisier
    data = Dataset(data.spectrum_id, flux, data.rest_frame, data.noise)
    train, held = data.subset(np.arange(200)), data.subset(np.arange(200, 300))
    model = MODELS["pca"](GRID, latent_dim=3, critic_epochs=2)
    model.fit(train, seed=0)
    before = model.embed(data).anomaly
    assert model.calibrate_unseen(held.subset(np.arange(MIN_UNSEEN - 1))) == {}
    assert model.unseen is None  # too few held-out spectra to measure a tail

    tails = model.calibrate_unseen(held)["anomaly_tails"]
    assert set(tails) == {"departure", "critic"}
    assert tails["departure"]["unseen"][1] > tails["departure"]["seen"][1]  # further out
    after = model.embed(data).anomaly
    np.testing.assert_array_equal(after[:200], before[:200])
    assert np.median(after[200:]) < np.median(before[200:])
    # each part of the held-out spectra's score now has the training spectra's median and tail
    clipped = np.clip(held.flux, *CLIP)
    for part, row in zip(
        model._parts(clipped, model.reconstruct(held), held.rest_frame), model.unseen, strict=True
    ):
        mapped = _rescale(part, row, np.ones(len(held), bool))
        assert np.median(mapped) == pytest.approx(row[0], abs=1e-4)
        assert np.percentile(mapped, TAIL) == pytest.approx(row[1], abs=1e-4)
    again = type(model).from_bytes(model.to_bytes(), GRID)
    np.testing.assert_array_equal(again.embed(data).anomaly, after)
    # a degenerate tail (no spread) changes nothing
    flat = np.array([1.0, 1.0, 2.0, 2.0])
    np.testing.assert_array_equal(_rescale(flat, flat, np.ones(4, bool)), flat)


def test_negative_flux_raises_the_anomaly_score_of_any_model() -> None:
    data, _ = _low_rank_dataset(n=80)
    model = MODELS["pca"](GRID, latent_dim=3, critic_epochs=1)
    model.fit(data, seed=0)
    before = model.embed(data).anomaly
    assert np.median(before) == pytest.approx(0, abs=0.5) and (before < 0).any()  # not clipped
    negative = np.zeros(len(data), np.float32)
    negative[7] = 40.0
    data = Dataset(data.spectrum_id, data.flux, data.rest_frame, data.noise, negative)
    after = model.embed(data).anomaly
    assert after[7] == 40.0 and np.argmax(after) == 7
    np.testing.assert_array_equal(np.delete(after, 7), np.delete(before, 7))
    assert len(data.subset(np.array([7]))) == 1 and data.subset(np.array([7])).negative_z[0] == 40


def test_a_spectrum_without_noise_gets_a_high_score_from_any_model() -> None:
    """A constant (a fill value, a noiseless template) is odd even where the model rebuilds it
    well; the smoothness flag raises only its score, and survives the round trip."""
    data, _ = _low_rank_dataset(n=80)
    rng = np.random.default_rng(2)
    noisy = data.flux + rng.normal(0, 0.02, data.flux.shape).astype(np.float32)
    data = Dataset(data.spectrum_id, noisy, data.rest_frame, data.noise)
    model = MODELS["pca"](GRID, latent_dim=3, critic_epochs=1)
    model.fit(data, seed=0)
    before = model.embed(data).anomaly
    flux = data.flux.copy()
    flux[7] = np.where(np.isfinite(flux[7]), 1.0, np.nan)
    after = model.embed(Dataset(data.spectrum_id, flux, data.rest_frame, data.noise)).anomaly
    assert after[7] > 5 and np.argmax(after) == 7
    np.testing.assert_array_equal(np.delete(after, 7), np.delete(before, 7))
    again = type(model).from_bytes(model.to_bytes(), GRID)
    np.testing.assert_array_equal(again.smooth, model.smooth)
    model.smooth = None  # a version trained before the flag: scores as it did
    old = type(model).from_bytes(model.to_bytes(), GRID)
    assert old.smooth is None
    assert old.embed(Dataset(data.spectrum_id, flux, data.rest_frame, data.noise)).anomaly[7] < 5


def test_spherical_vectors_lie_on_the_unit_sphere() -> None:
    data, _ = _low_rank_dataset(n=64)
    flux = np.full((64, DEFAULT_GRID.n_pix), np.nan, np.float32)
    flux[:, 300:500] = data.flux[:, :200]
    data = Dataset(data.spectrum_id, flux, np.ones(64, bool), data.noise)
    model = MODELS["spherical"](DEFAULT_GRID, epochs=1, critic_epochs=0)
    model.fit(data, seed=0)
    v = model.embed(data).vectors
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)


def test_shift_search_finds_the_redshift_of_a_template() -> None:
    torch = pytest.importorskip("torch")
    n_pix, n_shift = 64, 20
    template = torch.zeros(n_pix + n_shift)
    template[30] = 5.0
    template[45] = 3.0
    template += 1.0
    shift = 7  # observed x[j] = template[n_shift + j - shift]
    x = template[n_shift - shift : n_shift - shift + n_pix].clone()[None]
    m = torch.ones_like(x)
    loss, best = shift_losses(x, m, template[None], torch.tensor([False]), n_shift)
    assert int(best[0]) == shift and float(loss[0]) < 1e-10
    _, rest_best = shift_losses(x, m, template[None], torch.tensor([True]), n_shift)
    assert int(rest_best[0]) == 0  # a spectrum in its rest frame is not shifted


def test_random_views_are_windows_of_the_covered_span() -> None:
    """A view keeps a window of at least crop_min of each spectrum's coverage and nothing
    outside it, renormalised to median 1; the same generator seed gives the same views."""
    torch = pytest.importorskip("torch")
    x = torch.ones(4, 300) * torch.linspace(1, 3, 300)
    m = torch.zeros(4, 300)
    m[0, 50:250] = 1
    m[1, :] = 1
    m[2, 100:140] = 1
    m[3, 10:200] = 1
    views = [random_views(x, m, torch.Generator().manual_seed(3), 0.5, 0.0, 0.3) for _ in "ab"]
    xv, mv = views[0]
    assert torch.equal(xv, views[1][0]) and torch.equal(mv, views[1][1])
    assert bool((mv <= m).all())  # never outside the coverage
    for i in range(4):
        assert int(mv[i].sum()) >= min(16, int(m[i].sum())) - 1
        assert int(mv[i].sum()) >= 0.5 * int(m[i].sum()) - 1
        kept = xv[i][mv[i] > 0]
        assert float(kept.median()) == pytest.approx(1.0, abs=0.02)


def test_contrastive_loss_prefers_matching_views() -> None:
    torch = pytest.importorskip("torch")
    z = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    near = z + 0.01 * torch.randn(32, 16, generator=torch.Generator().manual_seed(1))
    matched = float(nt_xent(z, near, 0.1))
    shuffled = float(nt_xent(z, near[torch.randperm(32)], 0.1))
    assert matched < 0.1 < shuffled


def test_sky_position_of_latent_vectors() -> None:
    lon, lat = sky_position(np.array([[1, 0, 0, 5], [0, 1, 0, 0], [0, 0, -2, 0]], float))
    np.testing.assert_allclose(lon[:2], [0, 90])
    np.testing.assert_allclose(lat, [0, 0, -90])


def test_model_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown parameters"):
        MODELS["pca"](GRID, latent_dims=3)
    with pytest.raises(ValueError, match="between 1 and 16"):
        MODELS["autoencoder"](DEFAULT_GRID, latent_dim=32)


CATALOG = Catalog.from_tables(published_tables())


def test_adql_embedding_distance_translates_to_the_hnsw_shape() -> None:
    t = translate(
        "SELECT TOP 5 publisher_did, ivo_embedding_distance(vector, 'pca', 'ivo://a/b?1') AS d "
        "FROM embeddings.spectrum_embeddings WHERE model = 'pca' ORDER BY d",
        CATALOG,
    )
    assert 'CAST("embeddings"."spectrum_embeddings"."vector" AS public.vector(16)) ' in t.sql
    assert "OPERATOR(public.<=>) (SELECT CAST(emb_q__.vector AS public.vector(16))" in t.sql
    assert "publisher_did = CAST('ivo://a/b?1' AS text)" in t.sql
    assert t.sql.endswith("ORDER BY 2 LIMIT 5")
    assert t.columns[1].datatype == "double"


def test_adql_embedding_distance_checks_its_arguments() -> None:
    with pytest.raises(AdqlError, match="takes 3 argument"):
        translate(
            "SELECT ivo_embedding_distance(vector, 'pca') FROM embeddings.spectrum_embeddings",
            CATALOG,
        )


def test_the_seed_initialises_the_decoder_first_as_it_always_has() -> None:
    """The same seed must keep giving the same autoencoder across refactors of the networks:
    the decoder's first layer takes the seed's first draws, the encoder the ones after."""
    import torch

    from escape_vo.embeddings.models.shiftnet import _build

    torch.manual_seed(0)
    _encoder, decoder = _build(64, 8, 16, 4)
    torch.manual_seed(0)
    first = torch.nn.Linear(16, 128)
    assert torch.equal(decoder[0].weight, first.weight)
