"""The 3x3 block of HEALPix cells around a position: the index side of a positional cross-match.

A cross-match of an uploaded table with a table indexed by its order-29 HEALPix column (the
spectra) was a declination band join: PostgreSQL scanned the whole indexed table and looked
each row up in the upload, ~16 s for 100,000 uploaded rows against 10,000,000 spectra. When
the upload is loaded, each position also gets the nine cells at order CELL_ORDER (~26") around
it (its own and its neighbours); any point within CELL_RADIUS_DEG of it lies in one of them, so
the join becomes, per uploaded row, nine B-tree range scans of the order-29 index, which
PostgreSQL runs as a BitmapOr in a nested loop: the work grows with the upload and the pairs,
not with the indexed table.

CELL_RADIUS_DEG is 0.4 of a cell's nominal side. Measured with cdshealpix's (conservative) cone
coverage on 33,000 positions, including the poles and the corners of the base cells, no circle
left its block below 0.6 of a side; 600 did at 0.7. Larger radii keep the declination band.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
from cdshealpix import nested

from escape_vo.geometry.ranges import HEALPIX_DEPTH

CELL_ORDER = 13
CELL_SHIFT = 2 * (HEALPIX_DEPTH - CELL_ORDER)  # order-29 index >> CELL_SHIFT = its cell
CELL_RADIUS_DEG = 0.4 * math.degrees(math.sqrt(4 * math.pi / (12 * 4**CELL_ORDER)))


def cell_blocks(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 9) int64: the cell at CELL_ORDER of each position and its neighbours (the cell itself
    again where a corner of the base cells leaves only seven)."""
    if len(ra_deg) == 0:
        return np.zeros((0, 9), dtype=np.int64)
    lon = np.mod(np.asarray(ra_deg, dtype=float), 360.0) * u.deg
    lat = np.asarray(dec_deg, dtype=float) * u.deg
    own = nested.lonlat_to_healpix(lon, lat, depth=CELL_ORDER).astype(np.int64)
    block = nested.neighbours(own, CELL_ORDER).astype(np.int64)
    return np.where(block < 0, own[:, None], block)
