"""MOCs (IVOA MOC 2.0) of where and when spectra were taken, from plain numpy arrays.

- Space (S-MOC): aperture-aware. A spectrum with an aperture covers the disc of that diameter
  (the circle around a slit's length), so every cell the fibre or slit touches is in the MOC;
  one without an aperture covers the cell of its position.
- Time (T-MOC): the exposure intervals [t_min, t_max] (MJD UTC, converted to TCB as MOC 2.0
  wants), at TIME_ORDER.
- Space-time (ST-MOC): the cell of each position during its exposure, at SPACETIME_TIME_ORDER
  in time (about a night) and the spatial order, coarser in time when exposures are so long
  that the expansion would exceed MAX_ST_PAIRS cells.

mocpy's own constructors from times (`TimeMOC.from_time_ranges`, `STMOC.from_times_positions`)
take 20-200 s for a million spectra here (the UTC->TCB conversion of every time and a per-point
insertion), so times are converted once per distinct day and the cells are computed with numpy,
then handed to mocpy's range and ASCII constructors: about 2 s for a million spectra, and the
same MOCs (checked in tests/integration/test_coverage.py).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.time import Time
from mocpy import MOC, STMOC, TimeMOC

TIME_ORDER = 31  # 2**30 us: about 18 minutes
SPACETIME_TIME_ORDER = 25  # 2**36 us: about 19 hours, one night
MAX_ST_PAIRS = 5_000_000
_DAY_US = 86_400_000_000
_MJD0_US = 207_360_043_200_000_000  # MJD 0 = JD 2400000.5, in microseconds since JD 0


def space_moc(
    healpix29: np.ndarray, ra: np.ndarray, dec: np.ndarray, aperture: np.ndarray, order: int
) -> MOC:
    """Aperture-aware MOC: discs of the apertures (degrees, diameter) plus the cells of the
    positions (the order-29 HEALPix index of archive.spectra)."""
    if len(healpix29) == 0:
        return MOC.new_empty(order)
    cells = np.unique(healpix29.astype(np.int64) >> (2 * (29 - order))).astype(np.uint64)
    moc = MOC.from_healpix_cells(cells, np.full(len(cells), order, dtype=np.uint8), order)
    with_aperture = np.isfinite(aperture) & (aperture > 0)
    if with_aperture.any():
        discs = MOC.from_cones(
            lon=ra[with_aperture] * u.deg,
            lat=dec[with_aperture] * u.deg,
            radius=aperture[with_aperture] / 2 * u.deg,
            max_depth=order,
            union_strategy="small_cones",
        )
        moc = moc.union(discs)
    return moc


def mjd_to_moc_us(mjd: np.ndarray) -> np.ndarray:
    """MJD (UTC) to MOC time: TCB microseconds since JD 0, as int64.

    The offset TCB-UTC is taken per distinct day: within a day it drifts by 1.3 ms, far below
    the cells used here.
    """
    day = np.floor(mjd)
    days, index = np.unique(day, return_inverse=True)
    tcb = Time(days, format="mjd", scale="utc").tcb
    offset = (tcb.jd1 - 2400000.5 - days) + tcb.jd2  # days, TCB - UTC at 0h
    return _MJD0_US + np.round((mjd + offset[index]) * _DAY_US).astype(np.int64)


def _time_cells(t_min: np.ndarray, t_max: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    shift = 61 - order
    lo = mjd_to_moc_us(t_min) >> shift
    hi = mjd_to_moc_us(np.fmax(t_max, t_min)) >> shift
    return lo, hi


def time_moc(t_min: np.ndarray, t_max: np.ndarray, order: int = TIME_ORDER) -> TimeMOC:
    """T-MOC of the exposures; a missing t_max counts as an instant at t_min."""
    keep = np.isfinite(t_min)
    if not keep.any():
        return TimeMOC.new_empty(order)
    lo, hi = _time_cells(t_min[keep], t_max[keep], order)
    shift = 61 - order
    ranges = np.stack([lo << shift, (hi + 1) << shift], axis=1).astype(np.uint64)
    return TimeMOC.from_depth61_ranges(order, ranges)


def space_time_moc(
    healpix29: np.ndarray,
    t_min: np.ndarray,
    t_max: np.ndarray,
    space_order: int,
    time_order: int = SPACETIME_TIME_ORDER,
) -> STMOC:
    """ST-MOC: each position's cell during its exposure (spectra without a time are left out)."""
    keep = np.isfinite(t_min)
    if not keep.any():
        return STMOC.new_empty(time_order, space_order)
    cells = healpix29[keep].astype(np.int64) >> (2 * (29 - space_order))
    while True:
        lo, hi = _time_cells(t_min[keep], t_max[keep], time_order)
        counts = hi - lo + 1
        if counts.sum() <= MAX_ST_PAIRS or time_order == 0:
            break
        time_order -= 1
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    times = np.repeat(lo, counts) + offsets  # every time cell of every exposure
    pairs = np.unique(np.stack([times, np.repeat(cells, counts)], axis=1), axis=0)
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    ends = np.r_[starts[1:], len(pairs)]
    text = " ".join(
        f"t{time_order}/{pairs[s, 0]} s{space_order}/" + " ".join(map(str, pairs[s:e, 1]))
        for s, e in zip(starts, ends, strict=True)
    )
    return STMOC.from_string(text, format="ascii")
