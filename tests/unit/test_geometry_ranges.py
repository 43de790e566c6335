"""HEALPix range coverings never miss a point of their region, and stay few and fast.

The truth is independent of the code under test: astropy separations for circles, and for
polygons a fan of spherical triangles around the point the random star-shaped polygon was built
from. Points are drawn in a cap a little larger than the region (uniform on the sphere there),
plus points just inside the boundary, where a covering is most likely to fail.
"""

from __future__ import annotations

import itertools
import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from cdshealpix import nested

from escape_vo.geometry import NPIX_29, healpix_ranges

RNG_SEED = 20260214


def unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    dec = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return ra, dec


def frame(ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, east and north unit vectors at (ra0, dec0)."""
    a, d = math.radians(ra0), math.radians(dec0)
    c = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
    e = np.array([-math.sin(a), math.cos(a), 0.0])
    n = np.cross(c, e)
    return c, e, n


def offsets(ra0: float, dec0: float, rho_deg: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Unit vectors at angular distance rho and position angle theta (radians) from a centre."""
    c, e, n = frame(ra0, dec0)
    rho = np.radians(rho_deg)[:, None]
    return np.cos(rho) * c + np.sin(rho) * (np.cos(theta)[:, None] * n + np.sin(theta)[:, None] * e)


def cap_points(rng, ra0: float, dec0: float, radius_deg: float, n: int) -> np.ndarray:
    """n points uniform on the sphere within radius_deg of the centre."""
    cos_r = math.cos(math.radians(min(radius_deg, 180.0)))
    rho = np.degrees(np.arccos(rng.uniform(cos_r, 1.0, n)))
    return offsets(ra0, dec0, rho, rng.uniform(0, 2 * math.pi, n))


def star_polygon(rng, ra0: float, dec0: float, size_deg: float, n: int, concave: bool):
    """Vertices (ra, dec) of a random polygon that is star-shaped around (ra0, dec0)."""
    while True:
        theta = np.sort(rng.uniform(0, 2 * math.pi, n))
        gaps = np.diff(np.append(theta, theta[0] + 2 * math.pi))
        if gaps.max() < math.radians(150):
            break
    rho = size_deg * (rng.uniform(0.35, 1.0, n) if concave else np.ones(n))
    v = offsets(ra0, dec0, rho, theta)
    if rng.random() < 0.5:  # both winding orders
        v = v[::-1]
    ra, dec = lonlat(v)
    return ra, dec


def fan_contains(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray, p: np.ndarray):
    """Inside a star-shaped polygon = inside one of the triangles (centre, v_i, v_i+1)."""
    c = frame(ra0, dec0)[0]
    v = unit(ra, dec)
    w = np.roll(v, -1, axis=0)
    inside = np.zeros(len(p), dtype=bool)
    for a, b in zip(v, w, strict=True):
        s = np.sign(np.dot(np.cross(c, a), b))
        inside |= (
            (s * (p @ np.cross(c, a)) >= 0)
            & (s * (p @ np.cross(a, b)) >= 0)
            & (s * (p @ np.cross(b, c)) >= 0)
        )
    return inside


def order29(p: np.ndarray) -> np.ndarray:
    ra, dec = lonlat(p)
    return nested.lonlat_to_healpix(ra * u.deg, dec * u.deg, depth=29).astype(np.int64)


def assert_well_formed(ranges: list[tuple[int, int]], max_ranges: int) -> None:
    assert 1 <= len(ranges) <= max_ranges
    for a, b in ranges:
        assert isinstance(a, int) and isinstance(b, int)
        assert 0 <= a <= b <= NPIX_29 - 1
    for (_, b), (a, _) in itertools.pairwise(ranges):
        assert a > b + 1, "ranges must be sorted, disjoint and not touching"


def assert_covered(ranges: list[tuple[int, int]], idx: np.ndarray, what: str) -> None:
    starts = np.array([a for a, _ in ranges], dtype=np.int64)
    ends = np.array([b for _, b in ranges], dtype=np.int64)
    pos = np.searchsorted(starts, idx, side="right") - 1
    ok = (pos >= 0) & (idx <= ends[np.clip(pos, 0, None)])
    assert ok.all(), f"{what}: {np.count_nonzero(~ok)} points inside but not covered"


def circle_cases(rng) -> list[tuple[float, float, float]]:
    cases = [
        (0.0, 90.0, 1.0), (123.0, -90.0, 0.5), (0.0, 0.0, 0.1), (359.95, 10.0, 0.2),
        (0.01, -45.0, 2.0), (180.0, 89.999, 0.01), (45.0, 41.8, 3.0), (10.0, 20.0, 1e-6),
        (0.0, 90.0, 1e-6), (359.9999999, -30.0, 1e-5), (200.0, -60.0, 30.0),
        (10.0, 20.0, 89.0), (10.0, 20.0, 95.0), (300.0, 5.0, 0.0),
    ]  # fmt: skip
    for _ in range(300):
        ra = float(rng.uniform(0, 360))
        dec = float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
        if rng.random() < 0.2:
            dec = float(rng.choice([-1, 1]) * rng.uniform(85, 90))
        if rng.random() < 0.2:
            ra = float(rng.choice([rng.uniform(0, 0.5), rng.uniform(359.5, 360)]))
        r = float(10 ** rng.uniform(-6, 1.5))
        cases.append((ra, dec, r))
    return cases


@pytest.mark.parametrize("max_ranges", [24, 8, 1])
def test_circles_are_covered(max_ranges: int) -> None:
    rng = np.random.default_rng(RNG_SEED + max_ranges)
    for ra0, dec0, r in circle_cases(rng):
        ranges = healpix_ranges("circle", [ra0, dec0, r], max_ranges=max_ranges)
        assert_well_formed(ranges, max_ranges)
        pts = np.concatenate(
            [
                cap_points(rng, ra0, dec0, max(r * 1.3, 1e-9), 3000),
                # just inside the edge
                offsets(ra0, dec0, np.full(500, r * (1 - 1e-7)), rng.uniform(0, 2 * np.pi, 500)),
            ]
        )
        ra, dec = lonlat(pts)
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg))
        inside = sep.deg <= r
        assert_covered(ranges, order29(pts[inside]), f"circle {ra0}, {dec0}, {r}")


def polygon_cases(rng) -> list[tuple[float, float, float, int, bool]]:
    cases = [
        (0.0, 90.0, 2.0, 5, False), (0.0, -90.0, 10.0, 7, True), (0.0, 0.0, 1.0, 4, False),
        (359.99, 0.0, 0.5, 6, True), (180.0, 89.99, 0.05, 8, True), (10.0, 20.0, 1e-5, 4, False),
        (0.0, 45.0, 40.0, 9, True), (90.0, 0.0, 60.0, 5, False), (250.0, -89.9, 0.3, 12, True),
    ]  # fmt: skip
    for _ in range(200):
        ra = float(rng.uniform(0, 360))
        dec = float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
        if rng.random() < 0.2:
            dec = float(rng.choice([-1, 1]) * rng.uniform(80, 90))
        if rng.random() < 0.2:
            ra = float(rng.choice([rng.uniform(0, 0.5), rng.uniform(359.5, 360)]))
        size = float(10 ** rng.uniform(-5, 1.3))
        cases.append((ra, dec, size, int(rng.integers(3, 12)), bool(rng.random() < 0.5)))
    return cases


@pytest.mark.parametrize("max_ranges", [24, 4])
def test_polygons_are_covered(max_ranges: int) -> None:
    rng = np.random.default_rng(RNG_SEED + 100 + max_ranges)
    for ra0, dec0, size, n, concave in polygon_cases(rng):
        ra, dec = star_polygon(rng, ra0, dec0, size, n, concave)
        params = np.column_stack([ra, dec]).ravel().tolist()
        ranges = healpix_ranges("polygon", params, max_ranges=max_ranges)
        assert_well_formed(ranges, max_ranges)
        v = unit(ra, dec)
        edge_pts = []
        for a, b in zip(v, np.roll(v, -1, axis=0), strict=True):  # points along the edges
            t = rng.uniform(0, 1, 40)[:, None]
            edge_pts.append((1 - t) * a + t * b)
        edge = np.concatenate(edge_pts)
        edge /= np.linalg.norm(edge, axis=1)[:, None]
        c = frame(ra0, dec0)[0]
        edge = edge + 1e-9 * (c - edge)  # a hair towards the centre: inside
        edge /= np.linalg.norm(edge, axis=1)[:, None]
        pts = np.concatenate([cap_points(rng, ra0, dec0, size * 1.2, 3000), edge, v])
        inside = fan_contains(ra0, dec0, ra, dec, pts)
        assert inside.sum() > 0
        assert_covered(ranges, order29(pts[inside]), f"polygon around {ra0}, {dec0}, {size}")


def test_whole_sky_and_errors() -> None:
    whole = [(0, 12 * 4**29 - 1)]
    assert healpix_ranges("circle", [10, 20, 90]) == whole
    assert healpix_ranges("circle", [10, 20, 180]) == whole
    # a polygon around the equator's north: its smaller side is the northern one
    ring = [v for k in range(8) for v in (k * 45.0, 5.0)]
    ranges = healpix_ranges("polygon", ring)
    pts = unit(np.array([0.0, 100.0, 200.0]), np.array([89.0, 30.0, 6.0]))
    assert_covered(ranges, order29(pts), "northern ring")
    for bad in (
        ("circle", [10, 20, -1]),
        ("circle", [10, 95, 1]),
        ("circle", [10, 20]),
        ("polygon", [0, 0, 1, 1]),
        ("polygon", [0, 0, 1, 1, 2]),
        ("polygon", [0, 0, 0, 0, 1, 1]),
        ("polygon", [0, 0, 1, 1, float("nan"), 2]),
        ("ellipse", [0, 0, 1]),
    ):
        with pytest.raises(ValueError):
            healpix_ranges(*bad)
    with pytest.raises(ValueError):
        healpix_ranges("circle", [10, 20, 1], max_ranges=0)
