"""Coverage MOCs: seconds to build the space, time and space-time MOCs of 1,000,000 spectra.

Synthetic spectra spread over the sky and 27 years, half with a 1.5 arcsec aperture, exposures
of up to 2 hours (BENCH_COVERAGE_SPECTRA changes the count). escape_vo.coverage.compute builds
each MOC; the floor is mocpy's cheapest constructor (a point MOC, MOC.from_lonlat), the
reference mocpy's own time constructors (TimeMOC.from_time_ranges,
STMOC.from_time_ranges_positions), timed on REFERENCE_SPECTRA spectra and scaled linearly
(they take minutes on a million). Reading the rows from PostgreSQL is not included.
"""

from __future__ import annotations

import os
import time

import astropy.units as u
import cdshealpix
import numpy as np
from astropy.time import Time
from mocpy import MOC, STMOC, TimeMOC

from escape_vo.coverage.compute import SPACETIME_TIME_ORDER, space_moc, space_time_moc, time_moc

N = int(os.environ.get("BENCH_COVERAGE_SPECTRA", "1000000"))
REFERENCE_SPECTRA = 50_000


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def run() -> dict:
    rng = np.random.default_rng(0)
    ra = rng.uniform(0, 360, N)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, N)))
    hp = cdshealpix.lonlat_to_healpix(ra * u.deg, dec * u.deg, 29).astype(np.int64)
    aperture = np.where(rng.uniform(size=N) < 0.5, 1.5 / 3600, np.nan)
    t_min = rng.uniform(50000, 60000, N)
    t_max = t_min + rng.uniform(0, 2 / 24, N)

    floor, _ = _timed(MOC.from_lonlat, lon=ra * u.deg, lat=dec * u.deg, max_norder=9)
    space_s, _ = _timed(space_moc, hp, ra, dec, aperture, 9)
    time_s, _ = _timed(time_moc, t_min, t_max)
    st_s, _ = _timed(space_time_moc, hp, t_min, t_max, 9)

    m = min(REFERENCE_SPECTRA, N)
    t0, t1 = Time(t_min[:m], format="mjd"), Time(t_max[:m], format="mjd")
    ref_time, _ = _timed(TimeMOC.from_time_ranges, t0, t1, order=31)
    lon, lat = ra[:m] * u.deg, dec[:m] * u.deg
    ref_st, _ = _timed(STMOC.from_time_ranges_positions, t0, t1, lon, lat, SPACETIME_TIME_ORDER, 9)
    scale = N / m
    report = [
        f"{N:,} spectra: space MOC {space_s:.2f} s (point-MOC floor {floor:.2f} s), "
        f"time MOC {time_s:.2f} s, space-time MOC {st_s:.2f} s",
        f"mocpy's own, scaled from {m:,}: time {ref_time * scale:.1f} s, "
        f"space-time {ref_st * scale:.1f} s",
    ]
    return {
        "spectra": N,
        "space_s": space_s,
        "time_s": time_s,
        "space_time_s": st_s,
        "floor_point_moc_s": floor,
        "mocpy_time_s_scaled": ref_time * scale,
        "mocpy_space_time_s_scaled": ref_st * scale,
        "report": report,
    }
