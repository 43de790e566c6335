"""The anomaly critic on synthetic spectra: what damage does, and that training separates
damaged spectra from clean ones it has never seen."""

from __future__ import annotations

import numpy as np

from escape_vo.embeddings.critic import DEFECTS, SPREAD_FLOOR, Critic, damage, defect

P = 256
PIX = np.arange(P)


def _spectra(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tilted continua with five absorption lines each, noisy, the first 0-60 bins uncovered,
    normalised by their median; NaN where not covered."""
    flux = 1 + rng.uniform(-0.3, 0.3, (n, 1)) * (PIX / P - 0.5)
    for row in flux:
        for centre in rng.uniform(10, P - 10, 5):
            row -= 0.4 * np.exp(-0.5 * ((PIX - centre) / 2.0) ** 2)
    flux += rng.normal(0, 0.02, flux.shape)
    flux = np.where(PIX[None] >= rng.integers(0, 60, (n, 1)), flux, np.nan)
    return (flux / np.nanmedian(flux, axis=1)[:, None]).astype(np.float32)


def _continuum(flux: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """A stand-in model that rebuilds each spectrum's continuum (a straight line) only."""
    out = np.empty(flux.shape, np.float32)
    for i, row in enumerate(flux):
        good = np.isfinite(row)
        out[i] = np.polyval(np.polyfit(PIX[good], row[good], 1), PIX)
    return out


def test_damage_touches_only_covered_bins_and_is_reproducible() -> None:
    flux = _spectra(np.random.default_rng(0), 80)
    mask = np.isfinite(flux)
    clean = np.where(mask, flux, 0)
    first = damage(clean, mask, np.random.default_rng(1))
    np.testing.assert_array_equal(first, damage(clean, mask, np.random.default_rng(1)))
    assert (first[~mask] == 0).all()
    assert (np.abs(first - clean).max(1) > 0.05).mean() > 0.9  # nearly every copy is damaged


def test_the_plausible_defects_do_what_they_are_named_for() -> None:
    """Saturation caps the brightest bins at one level; a mirrored stretch holds the same
    values in reverse order; an inverted one turns its dips into peaks."""
    row = _spectra(np.random.default_rng(6), 1)[0]
    covered = np.flatnonzero(np.isfinite(row))
    assert {"saturate", "mirror", "invert"} <= set(DEFECTS)
    x = row.astype(np.float64)
    defect("saturate", x, covered, np.random.default_rng(0))
    top = x[covered].max()
    assert (x[covered] == top).mean() >= 0.05 and top < row[covered].max()
    np.testing.assert_array_equal(x[covered][row[covered] < top], row[covered][row[covered] < top])
    for seed in range(5):
        x = row.astype(np.float64)
        defect("mirror", x, covered, np.random.default_rng(seed))
        changed = covered[x[covered] != row[covered]]
        assert changed.size > 0.1 * covered.size
        stretch = slice(changed[0], changed[-1] + 1)
        np.testing.assert_array_equal(x[stretch], row[stretch][::-1])
        x = row.astype(np.float64)
        defect("invert", x, covered, np.random.default_rng(seed))
        changed = covered[x[covered] != row[covered]]
        deepest = changed[np.argmin(row[changed])]
        assert x[deepest] == x[changed].max()  # the deepest dip is now the highest peak


def test_a_trained_critic_ranks_unseen_damaged_spectra_above_clean_ones() -> None:
    train = _spectra(np.random.default_rng(2), 400)
    rest = np.zeros(len(train), bool)
    critic = Critic(channels=16)
    history = critic.fit(train, rest, _continuum(train, rest), _continuum, seed=0, epochs=8)
    assert len(history) == 8 and history[-1] < history[0]
    # what it keeps of its training spectra is what score() gives them
    np.testing.assert_array_equal(
        critic.training_scores, critic.score(train, _continuum(train, rest))
    )
    test = _spectra(np.random.default_rng(3), 200)
    mask = np.isfinite(test)
    bad = np.where(mask, damage(np.where(mask, test, 0), mask, np.random.default_rng(4)), np.nan)
    clean_z = critic.score(test, _continuum(test, rest[:200]))
    bad_z = critic.score(bad, _continuum(bad, rest[:200]))
    assert abs(float(np.median(clean_z))) < 1.0  # calibrated: a clean spectrum scores ~0
    auc = (bad_z[:, None] > clean_z[None, :]).mean()
    assert auc > 0.8, auc  # some defects are too faint to see (a step of a few per cent)


def test_a_critic_round_trips_through_its_arrays() -> None:
    train = _spectra(np.random.default_rng(5), 64)
    rest = np.zeros(len(train), bool)
    critic = Critic(channels=4)
    critic.fit(train, rest, _continuum(train, rest), _continuum, seed=0, epochs=1)
    state = critic.state()
    again = Critic.from_state(state)
    assert again is not None and state == {}  # everything it saved was taken back
    recon = _continuum(train, rest)
    np.testing.assert_array_equal(critic.score(train, recon), again.score(train, recon))
    assert Critic.from_state({"mean": np.zeros(3)}) is None


def test_the_same_seed_trains_the_same_critic() -> None:
    import torch

    train = _spectra(np.random.default_rng(6), 64)
    rest = np.zeros(len(train), bool)
    runs = []
    for _ in range(2):
        torch.rand(7)  # whatever ran before must not matter
        critic = Critic(channels=4)
        history = critic.fit(train, rest, _continuum(train, rest), _continuum, seed=3, epochs=2)
        runs.append((history, critic.score(train, _continuum(train, rest))))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_barely_trained_critic_does_not_shout() -> None:
    """One epoch on a few spectra: logits nearly equal, so the spread floor keeps z modest."""
    train = _spectra(np.random.default_rng(8), 32)
    rest = np.zeros(len(train), bool)
    critic = Critic(channels=4)
    critic.fit(train, rest, _continuum(train, rest), _continuum, seed=0, epochs=1)
    assert critic.calibration[1] >= SPREAD_FLOOR
    assert np.abs(critic.score(train, _continuum(train, rest))).max() < 10
