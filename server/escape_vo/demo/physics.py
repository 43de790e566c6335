"""Synthetic spectra of stars, quasars and galaxies, realistic enough to tell the classes apart.

Every model returns F_lambda (erg s-1 cm-2 Å-1, arbitrary scale unless normalised) on the
caller's observed wavelength grid in Å. Lines are drawn in pixel space with a floor of ~2 pixels
FWHM, so the modest default pixel counts still show each line with its true equivalent width
instead of aliasing it away; with fine grids the instrument resolution takes over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_KMS = 299_792.458
_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
_MIN_SIGMA_PIX = 0.85  # a line is never narrower than ~2 pixels FWHM (Nyquist sampling)


@dataclass(frozen=True, slots=True)
class Source:
    """What to synthesise: the physical truth behind one spectrum."""

    obj_class: str  # 'star', 'qso', 'galaxy'
    subclass: str  # 'G2V', 'M3III', 'starburst', 'broadline', 'DA', ...
    redshift: float  # v/c for stars
    mag: float  # AB-like magnitude fixing the flux scale
    anomaly: str | None = None  # 'spike', 'trough', 'white_dwarf', 'sky_residual'


# --------------------------------------------------------------------------- line drawing


def _pixel_frame(wave: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional pixel position and local dispersion (Å/pixel) at each line centre."""
    idx = np.arange(wave.size, dtype=float)
    disp = np.gradient(wave)
    pos = np.interp(centres, wave, idx)
    lo, hi = centres < wave[0], centres > wave[-1]
    pos[lo] = (centres[lo] - wave[0]) / disp[0]
    pos[hi] = wave.size - 1 + (centres[hi] - wave[-1]) / disp[-1]
    return pos, np.interp(centres, wave, disp)


def gauss_lines(
    wave: np.ndarray,
    centres: np.ndarray,
    values: np.ndarray,
    sigma_aa: np.ndarray,
    area: bool = False,
) -> np.ndarray:
    """Sum of Gaussians; values are peak heights, or integrated areas (flux·Å) if area=True."""
    out = np.zeros(wave.size)
    centres, values = np.atleast_1d(centres).astype(float), np.atleast_1d(values).astype(float)
    sigma_aa = np.broadcast_to(np.asarray(sigma_aa, dtype=float), centres.shape)
    if centres.size == 0:
        return out
    pos, disp = _pixel_frame(wave, centres)
    sig = np.maximum(sigma_aa / disp, _MIN_SIGMA_PIX)
    keep = (pos > -6 * sig) & (pos < wave.size - 1 + 6 * sig) & (values != 0)
    pos, sig, disp, values = pos[keep], sig[keep], disp[keep], values[keep]
    if area:
        values = values / (sig * disp * np.sqrt(2 * np.pi))
    narrow = sig <= 12
    if narrow.any():
        half = int(np.ceil(6 * sig[narrow].max()))
        offs = np.arange(-half, half + 1)
        idx = np.round(pos[narrow]).astype(int)[:, None] + offs[None, :]
        x = (idx - pos[narrow][:, None]) / sig[narrow][:, None]
        contrib = values[narrow][:, None] * np.exp(-0.5 * x * x)
        ok = (idx >= 0) & (idx < wave.size)
        out += np.bincount(idx[ok], weights=contrib[ok], minlength=wave.size)
    pix = np.arange(wave.size)
    for p, s, v in zip(pos[~narrow], sig[~narrow], values[~narrow], strict=True):
        lo, hi = max(int(p - 7 * s), 0), min(int(p + 7 * s) + 2, wave.size)
        x = (pix[lo:hi] - p) / s
        out[lo:hi] += v * np.exp(-0.5 * x * x)
    return out


def voigt_lines(
    wave: np.ndarray,
    centres: np.ndarray,
    peaks: np.ndarray,
    sigma_aa: np.ndarray,
    lorentz_fwhm_aa: np.ndarray,
) -> np.ndarray:
    """Peak-normalised pseudo-Voigt profiles (Thompson et al. 1987) for pressure-broadened lines."""
    out = np.zeros(wave.size)
    disp = np.gradient(wave)
    for c, a, s, fl in zip(
        np.atleast_1d(centres),
        np.atleast_1d(peaks),
        np.broadcast_to(sigma_aa, np.shape(centres)),
        np.broadcast_to(lorentz_fwhm_aa, np.shape(centres)),
        strict=True,
    ):
        local = float(np.interp(c, wave, disp))
        fg = max(s, _MIN_SIGMA_PIX * local) * _FWHM
        reach = 8 * fg + 40 * fl
        if a == 0 or c + reach < wave[0] or c - reach > wave[-1]:
            continue
        lo, hi = np.searchsorted(wave, [c - reach, c + reach])
        x = wave[lo:hi] - c
        f = (
            fg**5
            + 2.69269 * fg**4 * fl
            + 2.42843 * fg**3 * fl**2
            + 4.47163 * fg**2 * fl**3
            + 0.07842 * fg * fl**4
            + fl**5
        ) ** 0.2
        r = fl / f
        eta = 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3
        gauss = np.exp(-4 * np.log(2) * (x / f) ** 2)
        lorentz = 1.0 / (1.0 + (2 * x / f) ** 2)
        out[lo:hi] += a * (eta * lorentz + (1 - eta) * gauss)
    return out


def _band(wave: np.ndarray, lo: float, hi: float, edge: float) -> np.ndarray:
    """A box from lo to hi with soft edges, the shape of molecular and telluric bands."""
    return 0.5 * (np.tanh((wave - lo) / edge) - np.tanh((wave - hi) / edge))


def _degraded_band(wave: np.ndarray, head: float, scale: float, edge: float) -> np.ndarray:
    """Band with a sharp head that fades redward (TiO, CO): the shape that marks M stars."""
    x = np.clip((wave - head) / scale, 0, 60)
    return 0.5 * (1 + np.tanh((wave - head) / edge)) * np.exp(-x)


def _depth_to_tau(depth: np.ndarray | float) -> np.ndarray:
    return -np.log1p(-np.clip(depth, 0, 0.97))


def sigma_inst(wave_aa: np.ndarray | float, resolving_power: float) -> np.ndarray:
    """Gaussian sigma (Å) of the instrumental profile at resolving power R."""
    return np.asarray(wave_aa) / (resolving_power * _FWHM)


def planck(wave_aa: np.ndarray, teff: float) -> np.ndarray:
    """B_lambda(T) up to a constant: the continuum shape of a star."""
    x = 1.4387769e8 / (wave_aa * teff)  # hc/(λkT) with λ in Å
    return wave_aa**-5 / np.expm1(np.minimum(x, 700))


# --------------------------------------------------------------------------- stars

# Dwarf (V) and giant (III) effective temperatures by spectral subtype.
_TEFF = {
    "O5V": 41000, "O7V": 36500, "O9V": 33000, "B0V": 30000, "B2V": 21000, "B3V": 18000,
    "B5V": 15200, "B8V": 12000, "B2III": 20000, "B5III": 14500, "A0V": 9600, "A2V": 8900,
    "A5V": 8100, "A0III": 9500, "A7III": 7700, "F0V": 7200, "F2V": 6900, "F5V": 6500,
    "F8V": 6200, "F5III": 6400, "G0V": 5950, "G2V": 5780, "G5V": 5650, "G8V": 5450,
    "G5III": 5050, "G8III": 4900, "K0V": 5250, "K2V": 4950, "K5V": 4400, "K7V": 4050,
    "K0III": 4750, "K2III": 4500, "K5III": 3950, "M0V": 3850, "M2V": 3550, "M3V": 3400,
    "M4V": 3200, "M5V": 3050, "M0III": 3800, "M3III": 3500, "M5III": 3300,
}  # fmt: skip
STELLAR_TYPES: tuple[str, ...] = tuple(_TEFF)
# How common each type is among targets of spectroscopic archives (bright-ish, F-K heavy).
_TYPE_WEIGHT = {"O": 0.03, "B": 0.08, "A": 0.12, "F": 0.18, "G": 0.22, "K": 0.22, "M": 0.15}


def draw_stellar_type(rng: np.random.Generator) -> str:
    letters = list(_TYPE_WEIGHT)
    p = np.array(list(_TYPE_WEIGHT.values()))
    letter = letters[rng.choice(len(letters), p=p / p.sum())]
    options = [t for t in STELLAR_TYPES if t[0] == letter]
    return options[int(rng.integers(len(options)))]


def stellar_teff(subclass: str) -> float:
    return float(_TEFF[subclass])


# Line lists: (rest wavelength Å, peak depth for a star where the group is at full strength).
_BALMER = np.array([
    (6562.80, 0.70), (4861.33, 0.68), (4340.47, 0.64), (4101.74, 0.60), (3970.07, 0.55),
    (3889.05, 0.50), (3835.38, 0.45), (3797.90, 0.40), (3770.63, 0.35), (3750.15, 0.30),
    (10049.4, 0.30), (10938.1, 0.35), (12818.1, 0.40), (18751.0, 0.40), (21655.3, 0.35),
    (17362.1, 0.25), (16806.5, 0.25), (16407.2, 0.20), (16109.3, 0.20),
])  # fmt: skip
_CAHK = np.array([(3933.66, 0.92), (3968.47, 0.88)])
_NAD = np.array([(5889.95, 0.75), (5895.92, 0.65)])
_MGB = np.array([(5167.32, 0.50), (5172.68, 0.60), (5183.60, 0.65)])
_CAT = np.array([(8498.02, 0.45), (8542.09, 0.62), (8662.14, 0.55)])
_METAL = np.array([
    (3820.43, 0.60), (3838.29, 0.50), (3859.91, 0.60), (4045.81, 0.60), (4063.59, 0.50),
    (4071.74, 0.50), (4143.87, 0.40), (4202.03, 0.40), (4226.73, 0.75), (4250.79, 0.40),
    (4260.47, 0.50), (4271.76, 0.50), (4325.76, 0.50), (4383.54, 0.60), (4404.75, 0.50),
    (4415.12, 0.45), (4528.61, 0.35), (4702.99, 0.30), (4890.76, 0.35), (4920.50, 0.45),
    (4957.60, 0.45), (5227.19, 0.40), (5269.54, 0.55), (5328.04, 0.50), (5371.49, 0.45),
    (5397.13, 0.45), (5405.77, 0.45), (5429.70, 0.45), (5446.92, 0.45), (5615.64, 0.35),
    (6122.22, 0.40), (6137.69, 0.30), (6162.17, 0.45), (6191.56, 0.30), (6230.72, 0.30),
    (6252.56, 0.30), (6393.60, 0.30), (6400.00, 0.30), (6439.07, 0.35), (6494.98, 0.30),
    (6677.99, 0.25), (8327.05, 0.20), (8688.62, 0.30), (8806.76, 0.30), (8824.22, 0.20),
    (9675.5, 0.20), (10827.1, 0.25), (11882.8, 0.20), (11973.0, 0.20), (13123.4, 0.30),
    (13150.7, 0.25), (15740.7, 0.25), (15749.0, 0.25), (15765.8, 0.30), (15888.4, 0.20),
    (16380.0, 0.20), (17108.6, 0.30), (19853.1, 0.20), (22062.4, 0.30), (22089.7, 0.25),
    (22614.0, 0.25),
])  # fmt: skip
_KI = np.array([(7664.90, 0.5), (7698.96, 0.45), (11690.2, 0.3), (11769.6, 0.35),
                (12432.3, 0.35), (12522.1, 0.35)])  # fmt: skip
_HEI = np.array([(4026.19, 0.20), (4471.48, 0.30), (4921.93, 0.20), (5875.62, 0.30),
                 (6678.15, 0.20), (10830.3, 0.30)])  # fmt: skip
_HEII = np.array([(4199.83, 0.10), (4541.59, 0.15), (4685.70, 0.25), (5411.52, 0.20)])
_TIO = np.array([(4761, 0.25), (4954, 0.30), (5167, 0.35), (5448, 0.30), (5847, 0.30),
                 (6159, 0.45), (6651, 0.40), (7054, 0.55), (7589, 0.45), (8432, 0.35),
                 (8859, 0.30)])  # fmt: skip
_CO = np.array([(22935, 0.30), (23227, 0.30), (23535, 0.25), (23829, 0.25), (15978, 0.10),
                (16189, 0.10)])  # fmt: skip


def _weak_line_forest() -> np.ndarray:
    """A fixed list of weak metal lines, the 'texture' of every late-type spectrum."""
    rng = np.random.default_rng(20240611)
    lam = np.exp(rng.uniform(np.log(3000), np.log(25000), 900))
    depth = 0.02 + 0.2 * rng.power(0.35, lam.size)
    return np.column_stack([np.sort(lam), depth])


_WEAK = _weak_line_forest()


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def stellar_strengths(teff: float, giant: bool) -> dict[str, float]:
    """Relative strength (0-1) of each line group at this temperature and gravity."""
    logt = np.log10(teff)
    cool = float(np.clip((teff - 2800) / 1400, 0.15, 1))
    return {
        "balmer": (0.08 + 0.92 * float(np.exp(-0.5 * ((logt - 3.98) / 0.09) ** 2))) * cool,
        "metal": _sigmoid(-(teff - 6000) / 450) + 0.05,
        "cahk": _sigmoid(-(teff - 8000) / 700) + 0.1 * (teff < 11000),
        "hei": float(np.exp(-0.5 * ((logt - 4.32) / 0.07) ** 2)),
        "heii": float(np.clip((teff - 28000) / 12000, 0, 1)),
        "tio": float(np.clip((4100 - teff) / 900, 0, 1)),
        "co": float(np.clip((5200 - teff) / 1500, 0, 1)) * (1.0 if giant else 0.5),
        "gravity": 0.35 if giant else 1.0,
        "cat": float(np.clip((7500 - teff) / 2500, 0, 1)) * (1.0 if giant else 0.65),
    }


def stellar_flux(
    wave: np.ndarray,
    teff: float,
    giant: bool,
    z: float,
    sigma_v: float,
    resolving_power: float,
    metallicity: float = 0.0,
    balmer_boost: float = 1.0,
) -> np.ndarray:
    """Planck continuum times absorption lines whose strengths follow the spectral type.

    z is the Doppler shift (v/c for a star, the redshift for a galaxy's stars); sigma_v the
    Gaussian line-of-sight broadening (rotation or a galaxy's velocity dispersion) in km/s.
    """
    s = stellar_strengths(teff, giant)
    rest = wave / (1 + z)
    metal = s["metal"] * 10 ** (0.4 * metallicity)
    cont = planck(rest, teff)
    # Balmer jump in hot stars and UV line blanketing in cool ones.
    cont *= 1 - 0.45 * s["balmer"] * s["gravity"] * (1 - _sigmoid_arr(rest, 3646, 15))
    cont *= 1 - 0.5 * min(metal, 1.2) * (1 - _sigmoid_arr(rest, 4000, 120)) / 1.2
    tau = np.zeros(wave.size)

    def sig(lam_obs: np.ndarray, extra_kms: float = 3.0) -> np.ndarray:
        v = np.hypot(sigma_v, extra_kms)
        return np.hypot(lam_obs * v / C_KMS, sigma_inst(lam_obs, resolving_power))

    def add(lines: np.ndarray, strength: float, lorentz: float = 0.0) -> None:
        nonlocal tau
        if strength <= 0.005:
            return
        lam = lines[:, 0] * (1 + z)
        t = _depth_to_tau(lines[:, 1] * min(strength, 1.3))
        if lorentz > 0:
            tau += voigt_lines(wave, lam, t, sig(lam), lorentz * lam / 5000.0)
        else:
            tau += gauss_lines(wave, lam, t, sig(lam))

    b = s["balmer"] * balmer_boost
    add(_BALMER, b, lorentz=28.0 * b**2 * s["gravity"] * balmer_boost + 0.3)
    add(_CAHK, s["cahk"] * min(metal, 1.0), lorentz=9.0 * s["metal"] * s["gravity"])
    add(_NAD, metal * (0.6 + 0.4 * s["gravity"]) + 0.4 * s["tio"], lorentz=1.5 * s["gravity"])
    add(_MGB, metal * (0.7 + 0.3 * s["gravity"]), lorentz=1.2 * s["gravity"])
    add(_CAT, s["cat"] * 10 ** (0.2 * metallicity), lorentz=1.5)
    add(_METAL, metal)
    add(_WEAK, metal)
    add(_KI, s["tio"] * s["gravity"])
    add(_HEI, s["hei"])
    add(_HEII, s["heii"])
    gband = metal * float(np.clip((teff - 3600) / 1200, 0, 1))
    tau += _depth_to_tau(0.35 * min(gband, 1.0)) * _band(rest, 4290, 4315, 4)
    if s["tio"] > 0:
        for head, depth in _TIO:
            tau += _depth_to_tau(depth * s["tio"]) * _degraded_band(rest, head, 140, 1.5)
        for centre, width in ((13800, 700), (18700, 900)):  # H2O in M-star atmospheres
            tau += 0.35 * s["tio"] * np.exp(-0.5 * ((rest - centre) / width) ** 2)
    if s["co"] > 0:
        for head, depth in _CO:
            tau += _depth_to_tau(depth * s["co"]) * _degraded_band(rest, head, 90, 2)
    return cont * np.exp(-tau)


def _sigmoid_arr(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    return 0.5 * (1 + np.tanh((x - centre) / width))


def white_dwarf_flux(wave: np.ndarray, teff: float, z: float, resolving_power: float) -> np.ndarray:
    """A DA white dwarf: hot continuum, nothing but enormously pressure-broadened Balmer lines."""
    rest = wave / (1 + z)
    lam = _BALMER[:10, 0] * (1 + z)
    depth = _depth_to_tau(np.linspace(0.6, 0.35, lam.size))
    tau = voigt_lines(wave, lam, depth, sigma_inst(lam, resolving_power), 0.025 * lam)
    return planck(rest, teff) * np.exp(-tau)


# --------------------------------------------------------------------------- quasars

# (rest Å, rest equivalent width Å, broad?) of the lines in a composite quasar spectrum.
_QSO_LINES = np.array([
    (1215.67, 85.0, 1), (1240.14, 15.0, 1), (1399.80, 8.0, 1), (1549.06, 35.0, 1),
    (1640.42, 3.0, 1), (1908.73, 20.0, 1), (2798.75, 35.0, 1), (3426.84, 1.0, 0),
    (3727.42, 2.0, 0), (4101.74, 8.0, 1), (4340.47, 15.0, 1), (4861.33, 60.0, 1),
    (4958.91, 8.0, 0), (5006.84, 25.0, 0), (5875.62, 5.0, 1), (6562.80, 250.0, 1),
    (10938.1, 15.0, 1), (12818.1, 40.0, 1), (18751.0, 60.0, 1),
])  # fmt: skip


def qso_flux(
    wave: np.ndarray, z: float, resolving_power: float, rng: np.random.Generator
) -> np.ndarray:
    """Power law, broad emission lines, a Lyα forest and sometimes a Lyman-limit break."""
    rest = wave / (1 + z)
    alpha_nu = rng.normal(-0.5, 0.3)
    cont = (rest / 3000.0) ** (-2 - alpha_nu)
    cont *= 1 + rng.uniform(0.05, 0.3) * np.exp(-0.5 * ((rest - 3000) / 450) ** 2)
    fwhm_broad = rng.uniform(2000, 8000)
    fwhm_narrow = rng.uniform(350, 800)
    ew_scale = 10 ** rng.normal(0, 0.2, len(_QSO_LINES))
    flux = cont.copy()
    for (lam0, ew, broad), scale in zip(_QSO_LINES, ew_scale, strict=True):
        lam = lam0 * (1 + z)
        if lam0 == 1549.06:
            lam *= 1 - rng.uniform(0, 1500) / C_KMS  # C IV is usually blueshifted
        c_line = (lam0 / 3000.0) ** (-2 - alpha_nu)
        area = ew * scale * (1 + z) * c_line
        if broad:
            for frac, width in ((0.55, fwhm_broad), (0.45, 0.4 * fwhm_broad)):
                s = np.hypot(lam * width / C_KMS / _FWHM, sigma_inst(lam, resolving_power))
                flux += gauss_lines(wave, np.array([lam]), np.array([frac * area]), s, area=True)
        else:
            s = np.hypot(lam * fwhm_narrow / C_KMS / _FWHM, sigma_inst(lam, resolving_power))
            flux += gauss_lines(wave, np.array([lam]), np.array([area]), s, area=True)
    return flux * np.exp(-_lyman_absorption(wave, z, resolving_power, rng))


def _lyman_absorption(
    wave: np.ndarray, z: float, resolving_power: float, rng: np.random.Generator
) -> np.ndarray:
    """Optical depth of the intergalactic Lyα forest (and a Lyman limit) blueward of Lyα."""
    tau = np.zeros(wave.size)
    lya = 1215.67 * (1 + z)
    lo = max(wave[0], 912.0 * (1 + z))
    z_lo, z_hi = lo / 1215.67 - 1, z - 0.002  # absorbers stay 600 km/s clear of the quasar
    if lya <= wave[0] + 1 or z_lo >= z_hi:
        return tau
    span = lya - lo
    density = 0.5 * ((1 + z) / 3.0) ** 2.5  # absorbers per Å, growing steeply with redshift
    n = int(rng.poisson(max(density * span, 1)))
    z_abs = rng.uniform(z_lo, z_hi, n)
    lam = 1215.67 * (1 + z_abs)
    peak = np.clip(0.08 * rng.pareto(1.2, n) + 0.05, 0, 6)
    b = rng.uniform(18, 45, n)
    s = np.hypot(lam * b / C_KMS / np.sqrt(2), sigma_inst(lam, resolving_power))
    tau += gauss_lines(wave, lam, peak, s)
    # The mean Lyα opacity of unresolved absorbers (Becker et al. style scaling).
    zz = np.clip(wave / 1215.67 - 1, 0, None)
    tau += np.where(wave < lya, 0.0036 * (1 + zz) ** 3.7 * 0.5, 0.0)
    z_min = max(wave[0] / 912.0 - 1, 0.0)
    if rng.random() < 0.3 and z_min < z:  # a Lyman-limit system with its break in range
        z_ll = rng.uniform(z_min, z)
        tau += np.where(wave < 912.0 * (1 + z_ll), rng.uniform(1, 5), 0.0)
    return tau


# --------------------------------------------------------------------------- galaxies

# (rest Å, flux relative to Hβ) for star-forming H II regions, and for AGN-excited gas.
_GAL_LINES = {
    "starforming": [
        (3726.03, 0.9), (3728.82, 1.2), (3868.76, 0.25), (4101.74, 0.26), (4340.47, 0.47),
        (4861.33, 1.0), (4958.91, 0.25), (5006.84, 0.75), (5875.62, 0.11), (6300.30, 0.05),
        (6548.05, 0.14), (6562.80, 2.86), (6583.45, 0.42), (6716.44, 0.30), (6730.82, 0.22),
        (9068.6, 0.25), (9530.6, 0.6), (10830.3, 0.3), (12818.1, 0.16), (18751.0, 0.33),
    ],
    "agn": [
        (3426.84, 0.5), (3726.03, 1.4), (3728.82, 1.8), (3868.76, 1.0), (4340.47, 0.47),
        (4685.70, 0.3), (4861.33, 1.0), (4958.91, 3.3), (5006.84, 10.0), (6300.30, 0.6),
        (6548.05, 1.0), (6562.80, 3.1), (6583.45, 3.0), (6716.44, 1.1), (6730.82, 1.0),
        (9068.6, 0.5), (9530.6, 1.2), (10830.3, 0.8), (12818.1, 0.17), (18751.0, 0.35),
    ],
}  # fmt: skip
GALAXY_SUBCLASSES = ("starforming", "starburst", "agn", "passive")


def galaxy_flux(
    wave: np.ndarray, z: float, subclass: str, resolving_power: float, rng: np.random.Generator
) -> np.ndarray:
    """Old plus young stars (with a 4000 Å break), then narrow emission lines from gas."""
    young = {"starburst": 0.7, "starforming": 0.35, "agn": 0.15, "passive": 0.03}[subclass]
    young = float(np.clip(young * rng.uniform(0.6, 1.4), 0.01, 0.95))
    sigma_v = rng.uniform(60, 250) if subclass in ("passive", "agn") else rng.uniform(40, 120)
    rest = wave / (1 + z)
    old_flux = stellar_flux(wave, 4750, True, z, sigma_v, resolving_power, rng.normal(0, 0.15))
    young_flux = stellar_flux(wave, 9500, False, z, sigma_v, resolving_power)
    cont = (1 - young) * _at_5500(rest, old_flux) + young * _at_5500(rest, young_flux)
    break_amp = 0.45 * (1 - young)  # D4000 from ~1.1 (starburst) to ~1.8 (passive)
    cont *= 1 - break_amp * (1 - _sigmoid_arr(rest, 4000, 30))
    if subclass == "passive":
        ew_ha, table = rng.uniform(0, 2), _GAL_LINES["starforming"]
    elif subclass == "starburst":
        ew_ha, table = 10 ** rng.uniform(np.log10(80), np.log10(400)), _GAL_LINES["starforming"]
    elif subclass == "agn":
        ew_ha, table = rng.uniform(8, 50), _GAL_LINES["agn"]
    else:
        ew_ha, table = 10 ** rng.uniform(1, np.log10(80)), _GAL_LINES["starforming"]
    lines = np.array(table)
    rel = lines[:, 1] * 10 ** rng.normal(0, 0.08, len(lines))
    if subclass == "starburst":  # high excitation, low metallicity
        rel[np.isin(lines[:, 0], [4958.91, 5006.84])] *= rng.uniform(3, 6)
        rel[np.isin(lines[:, 0], [6548.05, 6583.45])] *= 0.4
    ha = 6562.80
    cont_ha = float(np.interp(ha, rest, cont, left=cont[0], right=cont[-1]))
    f_ha = ew_ha * (1 + z) * cont_ha
    ratio_ha = float(rel[lines[:, 0] == ha][0])
    lam = lines[:, 0] * (1 + z)
    gas_v = rng.uniform(200, 400) if subclass == "agn" else rng.uniform(30, 110)
    s = np.hypot(lam * gas_v / C_KMS, sigma_inst(lam, resolving_power))
    # Dust reddening weakens blue lines relative to Hα.
    redden = (lines[:, 0] / ha) ** rng.uniform(0.3, 1.5)
    areas = f_ha * rel / ratio_ha * np.minimum(redden, 1.0)
    return cont + gauss_lines(wave, lam, areas, s, area=True)


def _at_5500(rest: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Normalise to rest 5500 Å (clamped to the grid edge when 5500 Å is not covered)."""
    return flux / np.interp(5500.0, rest, flux)


# --------------------------------------------------------------------------- sky and Earth

_SKY_LINES = np.array([
    (4358.34, 0.6), (5460.74, 0.5), (5577.34, 6.0), (5889.95, 1.0), (5895.92, 0.8),
    (6300.30, 3.0), (6363.78, 1.0), (6863.96, 1.2), (7316.28, 2.0), (7340.88, 2.0),
    (7750.64, 2.5), (7794.11, 2.5), (7821.50, 2.0), (7913.71, 3.0), (7964.65, 3.0),
    (8344.60, 4.0), (8399.17, 4.0), (8430.17, 3.0), (8465.36, 3.5), (8827.10, 5.0),
    (8885.85, 5.0), (8919.61, 4.0), (8943.39, 4.0), (8988.38, 5.0), (9375.98, 4.0),
    (9439.67, 5.0), (9476.92, 5.0), (9502.83, 4.0),
])  # fmt: skip


def _oh_forest() -> np.ndarray:
    rng = np.random.default_rng(5577)
    lam = np.sort(rng.uniform(6800, 24000, 500))
    return np.column_stack([lam, rng.uniform(0.2, 1.0, lam.size) * (lam / 7000) ** 1.5])


_OH = _oh_forest()


def sky_lines(wave: np.ndarray, resolving_power: float) -> np.ndarray:
    """Night-sky airglow and light-pollution lines (arbitrary units, ~1 per Å of line area)."""
    lines = np.vstack([_SKY_LINES, _OH])
    s = sigma_inst(lines[:, 0], resolving_power)
    return gauss_lines(wave, lines[:, 0], lines[:, 1], s, area=True)


def sky_flux(wave: np.ndarray, resolving_power: float) -> np.ndarray:
    """Night-sky emission: a faint continuum plus the lines."""
    return 0.05 * (wave / 5500) ** 0.5 + sky_lines(wave, resolving_power)


_TELLURIC = (  # (from Å, to Å, depth at airmass 1, edge softness Å)
    (6867, 6884, 0.5, 2), (7160, 7330, 0.12, 25), (7594, 7621, 0.75, 2), (8120, 8350, 0.12, 30),
    (8950, 9800, 0.3, 60), (11100, 11600, 0.5, 60), (12600, 12700, 0.3, 10),
    (13500, 14500, 0.85, 80), (18000, 19500, 0.85, 100), (20000, 20100, 0.4, 10),
    (20500, 20650, 0.4, 10),
)  # fmt: skip


def telluric(wave: np.ndarray, airmass: float) -> np.ndarray:
    """Transmission of the atmosphere: O2 and H2O bands that every ground spectrum carries."""
    trans = np.ones(wave.size)
    for lo, hi, depth, edge in _TELLURIC:
        if hi < wave[0] - 3 * edge or lo > wave[-1] + 3 * edge:
            continue
        trans *= 1 - min(depth * airmass**0.6, 0.97) * _band(wave, lo, hi, edge)
    return trans


# --------------------------------------------------------------------------- full sources


def source_flux(
    wave: np.ndarray,
    src: Source,
    resolving_power: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Noiseless observed F_lambda (erg/s/cm²/Å) of a source, including anomalies."""
    if src.anomaly == "spike":
        flux = np.full(wave.size, 1.0)
        where = wave[0] + (wave[-1] - wave[0]) * rng.uniform(0.05, 0.95)
        flux += gauss_lines(wave, np.array([where]), np.array([rng.uniform(80, 300)]), 0.0)
    elif src.anomaly == "white_dwarf":
        teff = float(rng.uniform(12000, 30000))
        flux = white_dwarf_flux(wave, teff, src.redshift, resolving_power)
    elif src.obj_class == "star":
        teff = stellar_teff(src.subclass) * rng.uniform(0.97, 1.03)
        giant = src.subclass.endswith("III")
        hot = teff > 7000
        vsini = (
            rng.uniform(40, 250) if hot else (rng.uniform(2, 10) if giant else rng.uniform(1, 15))
        )
        flux = stellar_flux(
            wave, teff, giant, src.redshift, vsini / 1.5, resolving_power, rng.normal(0, 0.25)
        )
    elif src.obj_class == "qso":
        flux = qso_flux(wave, src.redshift, resolving_power, rng)
    else:
        flux = galaxy_flux(wave, src.redshift, src.subclass, resolving_power, rng)
    if src.anomaly == "trough":
        centre = wave[0] + (wave[-1] - wave[0]) * rng.uniform(0.1, 0.9)
        width = (wave[-1] - wave[0]) * rng.uniform(0.005, 0.03)
        flux = flux * (1 - rng.uniform(0.7, 0.95) * np.exp(-0.5 * ((wave - centre) / width) ** 2))
    flux = flux * telluric(wave, rng.uniform(1.0, 2.0))
    flux = normalise(wave, flux, src.mag)
    if src.anomaly == "sky_residual":
        lines = sky_lines(wave, resolving_power)
        # Without airglow lines in range the residual is an over-subtracted sky continuum.
        shape = lines / lines.max() if lines.max() > 0 else np.full(wave.size, 0.1)
        flux = flux - rng.uniform(3, 10) * float(np.median(flux)) * shape
    return flux


def normalise(wave: np.ndarray, flux: np.ndarray, mag: float) -> np.ndarray:
    """Scale so the median flux density matches an AB magnitude at the median wavelength."""
    med_w = float(np.median(wave))
    target = 3.631e-20 * 10 ** (-0.4 * mag) * 2.998e18 / med_w**2
    med = float(np.median(flux[flux > 0])) if np.any(flux > 0) else 1.0
    return flux * (target / med)


def throughput(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth instrument response, for spectra left in ADU / counts."""
    centre = wave[0] + (wave[-1] - wave[0]) * rng.uniform(0.35, 0.65)
    width = (wave[-1] - wave[0]) * rng.uniform(0.3, 0.6)
    return 0.15 + np.exp(-0.5 * ((wave - centre) / width) ** 2)


@dataclass(frozen=True, slots=True)
class Noisy:
    """A noisy spectrum with its noise model; bad marks pixels corrupted and flagged."""

    model: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    bad: np.ndarray
    snr: float


def add_noise(model: np.ndarray, snr: float, rng: np.random.Generator, n_bad: int = 0) -> Noisy:
    """Gaussian noise with a photon + background error model whose median S/N is ~snr."""
    positive = np.maximum(model, 0)
    level = float(np.median(positive[positive > 0])) if np.any(positive > 0) else 1.0
    sigma0 = level / snr
    beta = rng.uniform(0.2, 0.6)  # share of the variance from sky and read noise at the median
    err = sigma0 * np.sqrt(beta + (1 - beta) * positive / level)
    flux = model + err * rng.standard_normal(model.size)
    bad = np.zeros(model.size, dtype=bool)
    if n_bad:
        idx = rng.choice(model.size, size=min(n_bad, model.size // 10 or 1), replace=False)
        bad[idx] = True
        flux[idx] = np.where(rng.random(idx.size) < 0.5, 0.0, flux[idx] + 50 * err[idx])
    good = ~bad
    median_snr = float(np.median(model[good] / err[good])) if good.any() else 0.0
    return Noisy(model, flux, err, bad, median_snr)
