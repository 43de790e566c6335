"""HEALPix range covering: a constant sky region -> a few B-tree ranges of order-29 indexes.

Every position column carries its nested HEALPix index at order 29 (a bigint with a B-tree), so
a cone or polygon with constant parameters becomes `(healpix BETWEEN a AND b OR ...)` plus the
exact SQL test. The ranges must cover the region completely (a missed cell would lose rows);
extra cells only cost a few more exact tests.

cdshealpix does the cell geometry. We choose a depth whose cells are a few times smaller than the
region, turn the returned cells into order-29 ranges, merge touching ones, and then close the
smallest gaps until at most `max_ranges` remain: among all coverings by k intervals of a fixed
set of cells this adds the least area (every order-29 index has the same area).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import astropy.units as u
import numpy as np
from astropy.coordinates import Latitude, Longitude
from cdshealpix import nested

HEALPIX_DEPTH = 29
NPIX_29 = 12 * 4**HEALPIX_DEPTH
WHOLE_SKY: list[tuple[int, int]] = [(0, NPIX_29 - 1)]

# Side of a depth-0 cell in degrees: sqrt(4 pi / 12) rad. Cells at depth d are 2**-d of it.
_CELL0_DEG = math.degrees(math.sqrt(4 * math.pi / 12))
# Cells about this many times smaller than the region's radius: with 24 ranges the covering is
# then ~1.25x the cone's area at ~0.13 ms (3x: ~1.5x area; finer gains little and costs time).
_CELLS_PER_RADIUS = 6.0
_MAX_SEARCH_DEPTH = 27  # cone_search refines 2 levels deeper internally; 29 is the limit
# cdshealpix's cone coverage is an approximation that can miss a thin sliver of a cell at the
# cone's edge (seen up to 3 % of a cell's side inside the cone), so the radius is widened by a
# quarter of a cell (the size of the cells it refines to), plus a hair for rounding.
_PAD_CELLS = 0.25
_PAD_REL = 1e-9
_PAD_ABS_DEG = 1e-9


def healpix_ranges(
    kind: str, params: Sequence[float], max_ranges: int = 24
) -> list[tuple[int, int]]:
    """Sorted, disjoint, inclusive order-29 index ranges covering a circle or polygon.

    kind 'circle': params [ra, dec, radius]; kind 'polygon': [ra1, dec1, ra2, dec2, ...], the
    smaller of the two regions its great-circle edges bound (the rule of the SQL functions).
    All in ICRS degrees. At most `max_ranges` ranges are returned.
    """
    if max_ranges < 1:
        raise ValueError(f"max_ranges must be >= 1, got {max_ranges}")
    values = [float(v) for v in params]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{kind} parameters must be finite numbers, got {list(params)}")
    if kind == "circle":
        if len(values) != 3:
            raise ValueError(f"a circle needs [ra, dec, radius], got {len(values)} numbers")
        cells = _circle_cells(*values)
    elif kind == "polygon":
        if len(values) < 6 or len(values) % 2:
            raise ValueError(f"a polygon needs >= 3 (ra, dec) pairs, got {len(values)} numbers")
        cells = _polygon_cells(np.array(values[0::2]), np.array(values[1::2]))
    else:
        raise ValueError(f"kind must be 'circle' or 'polygon', got {kind!r}")
    if cells is None:
        return list(WHOLE_SKY)
    return _merge(*cells, max_ranges)


def _depth_for(radius_deg: float) -> int:
    """Depth whose cells are about `_CELLS_PER_RADIUS` times smaller than the radius."""
    if radius_deg <= 0:
        return _MAX_SEARCH_DEPTH
    depth = math.ceil(math.log2(_CELL0_DEG * _CELLS_PER_RADIUS / radius_deg))
    return max(0, min(_MAX_SEARCH_DEPTH, depth))


def _check_lat(lat: float) -> None:
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90]")


def _circle_cells(ra: float, dec: float, radius: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Order-29 (starts, ends) of the cells meeting the cone; None for the whole sky."""
    _check_lat(dec)
    if radius < 0:
        raise ValueError(f"circle radius must not be negative, got {radius}")
    if radius >= 90.0:
        return None  # half the sky or more: an index does not help
    depth = _depth_for(radius)
    padded = radius * (1 + _PAD_REL) + _PAD_ABS_DEG + _PAD_CELLS * _CELL0_DEG / 2**depth
    ipix, depths, _ = nested.cone_search(
        Longitude(ra % 360.0, u.deg), Latitude(dec, u.deg), min(padded, 180.0) * u.deg, depth
    )
    return _to_order29(ipix, depths)


def _polygon_cells(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Order-29 (starts, ends) of the cells meeting the polygon; None for the whole sky."""
    for d in dec:
        _check_lat(float(d))
    poly = _Polygon(ra, dec)
    if poly.vectors.shape[0] < 3:
        raise ValueError("polygon needs at least 3 distinct vertices")
    # cdshealpix picks the side containing the south pole by its own rule (vertex gravity
    # centre); use it only when it picks our side (the smaller region), else the whole sky.
    if not poly.cds_agrees():
        return None
    lon, lat = poly.lonlat_deg()
    try:
        ipix, depth, _ = nested.polygon_search(
            Longitude(lon, u.deg), Latitude(lat, u.deg), _depth_for(poly.radius_deg)
        )
    except (ValueError, IndexError, OverflowError):
        return None
    if len(ipix) == 0:
        return None
    return _to_order29(ipix, depth)


def _to_order29(ipix: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shift = (2 * (HEALPIX_DEPTH - np.asarray(depth, dtype=np.int64))).astype(np.int64)
    cells = np.asarray(ipix, dtype=np.int64)
    starts = np.left_shift(cells, shift)
    ends = np.left_shift(cells + 1, shift) - 1
    return starts, ends


def _merge(starts: np.ndarray, ends: np.ndarray, max_ranges: int) -> list[tuple[int, int]]:
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    ends = np.maximum.accumulate(ends)
    # a new range starts where a cell does not touch or overlap everything before it
    new = np.empty(len(starts), dtype=bool)
    new[0] = True
    new[1:] = starts[1:] > ends[:-1] + 1
    group_starts = starts[new]
    idx = np.flatnonzero(new)
    group_ends = np.append(ends[idx[1:] - 1], ends[-1])
    if len(group_starts) > max_ranges:
        gaps = group_starts[1:] - group_ends[:-1]
        # keep the (max_ranges - 1) widest gaps as breaks, close the others
        keep = np.sort(np.argsort(gaps, kind="stable")[len(gaps) - (max_ranges - 1) :])
        group_starts = np.concatenate(([group_starts[0]], group_starts[keep + 1]))
        group_ends = np.concatenate((group_ends[keep], [group_ends[-1]]))
    return [(int(a), int(b)) for a, b in zip(group_starts, group_ends, strict=True)]


class _Polygon:
    """A spherical polygon under the 'smaller region' rule, as the SQL functions read it."""

    def __init__(self, ra: np.ndarray, dec: np.ndarray) -> None:
        vec = _unit(ra, dec)
        keep = [0]
        for i in range(1, len(vec)):
            if np.sum((vec[i] - vec[keep[-1]]) ** 2) >= 1e-28:
                keep.append(i)
        while len(keep) > 1 and np.sum((vec[keep[-1]] - vec[keep[0]]) ** 2) < 1e-28:
            keep.pop()
        self.vectors = vec[keep]
        if len(self.vectors) < 3:
            return
        normals = np.cross(self.vectors, np.roll(self.vectors, -1, axis=0))
        norms = np.linalg.norm(normals, axis=1)
        if np.any(norms < 1e-14):
            raise ValueError("polygon edge between antipodal vertices is undefined")
        unit_normals = normals / norms[:, None]
        prev = np.roll(unit_normals, 1, axis=0)
        turns = np.arctan2(
            np.einsum("ij,ij->i", np.cross(prev, unit_normals), self.vectors),
            np.einsum("ij,ij->i", prev, unit_normals),
        )
        # interior on the left of the edges when the total turn is positive (area <= 2 pi)
        self.left_is_inside = bool(turns.sum() >= 0)
        mean = self.vectors.sum(axis=0)
        norm = np.linalg.norm(mean)
        if norm < 1e-9:
            self.radius_deg = 180.0
        else:
            mean /= norm
            cosines = np.clip(self.vectors @ mean, -1.0, 1.0)
            self.radius_deg = float(np.degrees(np.arccos(cosines.min())))

    def lonlat_deg(self) -> tuple[np.ndarray, np.ndarray]:
        v = self.vectors
        lon = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
        lat = np.degrees(np.arctan2(v[:, 2], np.hypot(v[:, 0], v[:, 1])))
        return lon, lat

    def contains(self, p: np.ndarray) -> bool:
        """Winding number of the boundary seen from p (+2 pi: left side, -2 pi: right side)."""
        a = self.vectors
        b = np.roll(a, -1, axis=0)
        winding = np.arctan2(np.cross(a, b) @ p, np.einsum("ij,ij->i", a, b) - (a @ p) * (b @ p))
        total = float(winding.sum())
        return total > math.pi if self.left_is_inside else total < -math.pi

    def boundary_distance(self, p: np.ndarray) -> float:
        """Smallest angle (radians) from p to the polygon's vertices or edges."""
        a = self.vectors
        b = np.roll(a, -1, axis=0)
        best = float(np.min(np.arctan2(np.linalg.norm(np.cross(a, p), axis=1), a @ p)))
        n = np.cross(a, b)
        n /= np.linalg.norm(n, axis=1)[:, None]
        within = (np.cross(n, a) @ p >= 0) & (np.cross(b, n) @ p >= 0)
        if within.any():
            best = min(best, float(np.min(np.arcsin(np.clip(np.abs(n[within] @ p), 0, 1)))))
        return best

    def cds_agrees(self) -> bool:
        """Does cdshealpix's default rule select the same side as ours?

        cdshealpix puts the south pole inside when the vertex longitudes wind around the pole
        and the vertices' mean z is negative. Compare at the pole farther from our boundary.
        """
        lon, _ = self.lonlat_deg()
        dlon = np.diff(np.radians(np.append(lon, lon[0])))
        dlon = np.where(dlon > math.pi, dlon - 2 * math.pi, dlon)
        dlon = np.where(dlon < -math.pi, dlon + 2 * math.pi, dlon)
        separated = abs(float(dlon.sum())) > math.pi
        cds_south = separated and float(self.vectors[:, 2].sum()) < 0
        cds_north = separated and not cds_south
        south, north = np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0])
        d_south, d_north = self.boundary_distance(south), self.boundary_distance(north)
        if max(d_south, d_north) < 1e-9:
            return False
        if d_south >= d_north:
            return self.contains(south) == cds_south
        return self.contains(north) == cds_north


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(ra), np.radians(dec)
    return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))
