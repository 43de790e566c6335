"""The 3x3 block of HEALPix cells around a position: the index side of a positional cross-match.

A cross-match of an uploaded table with a table indexed by its order-29 HEALPix column (the
spectra) was a declination band join: PostgreSQL scanned the whole indexed table and looked
each row up in the upload, ~16 s for 100,000 uploaded rows against 10,000,000 spectra. When
the upload is loaded for a query that cross-matches it, each position also gets, at the order
of CELL_ORDERS the radius needs, the nine cells around it (its own and its neighbours); any
point within cell_radius_deg(order) of it lies in one of them, so the join becomes, per
uploaded row, nine B-tree lookups in the index of the indexed table's cells at that order,
which PostgreSQL runs in a nested loop: the work grows with the upload and the pairs, not with
the indexed table.

The radius is 0.4 of a cell's nominal side. Measured with cdshealpix's (conservative) cone
coverage on 12,000-33,000 positions, including the poles and the corners of the base cells, no
circle left its block below 0.6 of a side, at each of orders 13, 12, 11 and 10; 2-5 % did at
0.7. The finest order that serves a radius is used: order 13 (~26" cells) up to ~10", 12 up to
~21", 11 up to ~41", 10 (~3.4') up to ~82". Larger radii keep the declination band. A cell's
side halves from one order to the next, so a radius just above an order's limit reads blocks a
quarter the area (a quarter of the candidate rows) of those of the next coarser order, for one
more index per order (43 MB per 2,000,000 spectra). Expanding coarse cells into their finer
children at query time instead (one index, 144-2,304 keys per row) cost 3-27 s per 100,000
rows against 2,000,000 spectra, nearly all in the SQL that built the arrays.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
from cdshealpix import nested

from escape_vo.geometry.ranges import HEALPIX_DEPTH

CELL_ORDERS = (13, 12, 11, 10)  # finest first: each has a block per uploaded position and an index


def cell_shift(order: int) -> int:
    """The order-29 index >> cell_shift(order) is its cell at `order`."""
    return 2 * (HEALPIX_DEPTH - order)


def cell_radius_deg(order: int) -> float:
    """The largest radius the block of cells at `order` serves (see above)."""
    return 0.4 * math.degrees(math.sqrt(4 * math.pi / (12 * 4**order)))


def order_for_radius(radius_deg: float) -> int | None:
    """The finest order of CELL_ORDERS whose blocks serve `radius_deg`, None if none does."""
    return next((o for o in CELL_ORDERS if radius_deg <= cell_radius_deg(o)), None)


def cell_blocks(ra_deg: np.ndarray, dec_deg: np.ndarray, order: int) -> np.ndarray:
    """(n, 9) int64: the cell at `order` of each position and its neighbours (the cell itself
    again where a corner of the base cells leaves only seven)."""
    if len(ra_deg) == 0:
        return np.zeros((0, 9), dtype=np.int64)
    lon = np.mod(np.asarray(ra_deg, dtype=float), 360.0) * u.deg
    lat = np.asarray(dec_deg, dtype=float) * u.deg
    own = nested.lonlat_to_healpix(lon, lat, depth=order).astype(np.int64)
    block = nested.neighbours(own, order).astype(np.int64)
    return np.where(block < 0, own[:, None], block)
