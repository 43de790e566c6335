"""The ADQL geometry SQL functions on the real PostgreSQL, against astropy and independent truths.

The file is installed here by the test itself (the migration code does not yet do it). Every
function is compared on random inputs that include the poles, RA = 0/360, tiny and huge regions
and both polygon windings; truths come from astropy (separations), long-double arithmetic (tiny
separations), fans of spherical triangles (star-shaped polygons, no winding numbers), dense
boundary sampling (region in region) and fine HEALPix grids (areas, centroids).
"""

from __future__ import annotations

import math
from importlib import resources

import astropy.units as u
import numpy as np
import psycopg
import pytest
from astropy.coordinates import SkyCoord
from cdshealpix import nested

from escape_vo.geometry import healpix_ranges

SEED = 4242
DEG2 = (180 / math.pi) ** 2  # square degrees per steradian


def install(conn: psycopg.Connection) -> None:
    sql = resources.files("escape_vo.geometry").joinpath("sql/geometry.sql").read_text()
    with conn.transaction():
        conn.execute(sql)


@pytest.fixture
def conn(db_url: str):
    with psycopg.connect(db_url, autocommit=True) as c:
        # one-shot statements, as the TAP service runs them: constant regions fold at plan time
        c.prepare_threshold = None
        install(c)
        install(c)  # idempotent: CREATE OR REPLACE over itself
        yield c


# -- independent spherical helpers -------------------------------------------------------------


def unit(ra, dec) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    dec = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return ra, dec


def offsets(ra0: float, dec0: float, rho_deg, theta) -> np.ndarray:
    """Unit vectors at distance rho (deg) and position angle theta (rad) from (ra0, dec0)."""
    a, d = math.radians(ra0), math.radians(dec0)
    c = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
    e = np.array([-math.sin(a), math.cos(a), 0.0])
    n = np.cross(c, e)
    rho = np.radians(np.asarray(rho_deg, dtype=float))[:, None]
    theta = np.asarray(theta, dtype=float)[:, None]
    return np.cos(rho) * c + np.sin(rho) * (np.cos(theta) * n + np.sin(theta) * e)


def cap_points(rng, ra0: float, dec0: float, radius_deg: float, n: int) -> np.ndarray:
    cos_r = math.cos(math.radians(min(radius_deg, 180.0)))
    rho = np.degrees(np.arccos(rng.uniform(cos_r, 1.0, n)))
    return offsets(ra0, dec0, rho, rng.uniform(0, 2 * math.pi, n))


def separation(ra1, dec1, ra2, dec2) -> np.ndarray:
    return SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg


class Star:
    """A random polygon, star-shaped around its centre, in a random winding order."""

    def __init__(self, rng, ra0: float, dec0: float, size: float, n: int, concave: bool):
        while True:
            theta = np.sort(rng.uniform(0, 2 * math.pi, n))
            gaps = np.diff(np.append(theta, theta[0] + 2 * math.pi))
            if gaps.max() < math.radians(150):
                break
        rho = size * (rng.uniform(0.35, 1.0, n) if concave else np.ones(n))
        v = offsets(ra0, dec0, rho, theta)
        if rng.random() < 0.5:
            v = v[::-1]
        self.ra0, self.dec0, self.size = ra0, dec0, size
        self.centre = unit(ra0, dec0)
        self.vertices = v
        self.ra, self.dec = lonlat(v)

    @property
    def params(self) -> list[float]:
        return np.column_stack([self.ra, self.dec]).ravel().tolist()

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Inside = inside one triangle (centre, v_i, v_i+1) of the fan."""
        c, v = self.centre, self.vertices
        inside = np.zeros(len(p), dtype=bool)
        for a, b in zip(v, np.roll(v, -1, axis=0), strict=True):
            s = np.sign(np.dot(np.cross(c, a), b))
            inside |= (
                (s * (p @ np.cross(c, a)) >= 0)
                & (s * (p @ np.cross(a, b)) >= 0)
                & (s * (p @ np.cross(b, c)) >= 0)
            )
        return inside

    def boundary(self, per_edge: int = 2000) -> np.ndarray:
        """Points densely along the great-circle edges (slerp)."""
        out = []
        for a, b in zip(self.vertices, np.roll(self.vertices, -1, axis=0), strict=True):
            omega = math.atan2(float(np.linalg.norm(np.cross(a, b))), float(np.dot(a, b)))
            t = np.linspace(0, 1, per_edge)[:, None]
            out.append((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega))
        return np.concatenate(out)


def random_position(rng, polar: float = 0.2, wrap: float = 0.2) -> tuple[float, float]:
    ra = float(rng.uniform(0, 360))
    dec = float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
    if rng.random() < polar:
        dec = float(rng.choice([-1, 1]) * rng.uniform(80, 90))
    if rng.random() < wrap:
        ra = float(rng.choice([rng.uniform(0, 0.3), rng.uniform(359.7, 360)]))
    return ra, dec


def col(rows, i=0) -> np.ndarray:
    return np.array([r[i] for r in rows], dtype=float)


# -- distances ---------------------------------------------------------------------------------


def hav_distance_ld(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Haversine in long double: the reference for tiny separations (differences taken in
    degrees, where they are exact, before the conversion to radians)."""
    ld = np.longdouble
    k = ld("3.14159265358979323846264338327950288") / ld(180)
    ra1, dec1, ra2, dec2 = (np.asarray(x, dtype=ld) for x in (ra1, dec1, ra2, dec2))
    h = (
        np.sin((dec2 - dec1) * k / 2) ** 2
        + np.cos(dec1 * k) * np.cos(dec2 * k) * np.sin((ra2 - ra1) * k / 2) ** 2
    )
    return np.asarray(2 * np.arcsin(np.sqrt(h)) / k, dtype=float)


def test_distance(conn) -> None:
    rng = np.random.default_rng(SEED)
    n = 4000
    ra1, dec1 = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ra2, dec2 = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    # near-antipodal pairs, pairs at the poles and across RA = 0
    ra2[:300] = (ra1[:300] + 180 + rng.normal(0, 1e-6, 300)) % 360
    dec2[:300] = -dec1[:300] + rng.normal(0, 1e-6, 300)
    dec1[300:400], dec2[300:400] = 90.0, rng.uniform(-90, 90, 100)
    ra1[400:500], ra2[400:500] = rng.uniform(359.9, 360, 100), rng.uniform(0, 0.1, 100)
    ra2[500:510], dec2[500:510] = (ra1[500:510] + 180) % 360, -dec1[500:510]  # exact antipodes
    # tiny separations, 1e-11 .. 1e-3 deg, also across RA = 0 and at the poles
    m = 2000
    tra1 = rng.uniform(0, 360, m)
    tra1[:200] = 360 - 10 ** rng.uniform(-9, -4, 200)
    tdec1 = np.degrees(np.arcsin(rng.uniform(-1, 1, m)))
    tdec1[200:300] = rng.choice([-1, 1], 100) * (90 - 10 ** rng.uniform(-6, -2, 100))
    scale = 10 ** rng.uniform(-11, -3, m)
    tra2 = (tra1 + scale * rng.normal(size=m) / np.maximum(np.cos(np.radians(tdec1)), 1e-3)) % 360
    tdec2 = np.clip(tdec1 + scale * rng.normal(size=m), -90, 90)

    rows = conn.execute(
        "SELECT escape.adql_distance(a, b, c, d), "
        "escape.adql_distance(escape.adql_point(a, b), escape.adql_point(c, d)) "
        "FROM unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[]) AS t(a, b, c, d)",
        [
            np.concatenate(x).tolist()
            for x in ((ra1, tra1), (dec1, tdec1), (ra2, tra2), (dec2, tdec2))
        ],
    ).fetchall()
    got, got_points = col(rows, 0), col(rows, 1)
    assert np.array_equal(got, got_points)
    truth = separation(ra1, dec1, ra2, dec2)
    np.testing.assert_allclose(got[:n], truth, rtol=1e-9, atol=0)
    tiny = hav_distance_ld(tra1, tdec1, tra2, tdec2)
    np.testing.assert_allclose(got[n:], tiny, rtol=1e-9, atol=0)
    np.testing.assert_allclose(got[500:510], 180.0, rtol=1e-14)


# -- point in circle / polygon -----------------------------------------------------------------


def test_point_in_circle(conn) -> None:
    rng = np.random.default_rng(SEED + 1)
    circles = [(0.0, 90.0, 1.0), (10.0, -90.0, 5.0), (0.0, 0.0, 0.5), (359.9, 20.0, 0.3),
               (10.0, 20.0, 1e-6), (0.0, 89.9999, 1e-4), (200.0, -30.0, 120.0),
               (50.0, 10.0, 180.0), (50.0, 10.0, 0.0)]  # fmt: skip
    for _ in range(60):
        ra0, dec0 = random_position(rng)
        circles.append((ra0, dec0, float(10 ** rng.uniform(-6, 1.8))))
    for ra0, dec0, r in circles:
        pts = cap_points(rng, ra0, dec0, max(1.5 * r, 1e-6), 1500)
        ra, dec = lonlat(pts)
        sep = separation(ra, dec, ra0, dec0)
        keep = np.abs(sep - r) > 1e-9 * r + 1e-12
        ra, dec, sep = ra[keep], dec[keep], sep[keep]
        rows = conn.execute(
            "SELECT escape.adql_contains(escape.adql_point(a, b), escape.adql_circle(%s, %s, %s)),"
            " escape.adql_intersects(escape.adql_point(a, b), escape.adql_circle(%s, %s, %s)),"
            " escape.adql_intersects(escape.adql_circle(%s, %s, %s), escape.adql_point(a, b)),"
            " escape.adql_contains(ARRAY[a, b], ARRAY[%s, %s, %s])"
            " FROM unnest(%s::float8[], %s::float8[]) AS t(a, b)",
            [ra0, dec0, r] * 4 + [ra.tolist(), dec.tolist()],
        ).fetchall()
        truth = (sep <= r).astype(int)
        for i in range(4):
            got = col(rows, i).astype(int)
            assert np.array_equal(got, truth), (ra0, dec0, r, i, np.flatnonzero(got != truth)[:5])


def star_cases(rng) -> list[Star]:
    stars = [
        Star(rng, 0.0, 90.0, 3.0, 5, False), Star(rng, 0.0, -90.0, 10.0, 8, True),
        Star(rng, 0.0, 0.0, 1.0, 4, False), Star(rng, 359.95, 10.0, 0.5, 7, True),
        Star(rng, 180.0, 89.99, 0.05, 9, True), Star(rng, 10.0, 20.0, 1e-5, 4, False),
        Star(rng, 0.0, 45.0, 40.0, 9, True), Star(rng, 90.0, 0.0, 70.0, 5, False),
        # sub-milliarcsecond, also concave: no precision lost to cancellation
        Star(rng, 200.0, -30.0, 1e-7, 7, True), Star(rng, 0.0, 89.99999, 1e-6, 6, True),
        Star(rng, 359.9999999, 0.0, 1e-6, 5, True),
    ]  # fmt: skip
    for _ in range(40):
        ra0, dec0 = random_position(rng)
        size = float(10 ** rng.uniform(-5, 1.5))
        stars.append(Star(rng, ra0, dec0, size, int(rng.integers(3, 12)), bool(rng.random() < 0.6)))
    return stars


def boundary_distance(star: Star, p: np.ndarray) -> np.ndarray:
    """Angle (rad) from each p to the polygon's edges, by dense sampling (for margins only)."""
    b = star.boundary(400)
    return np.arccos(np.clip((p @ b.T).max(axis=1), -1, 1))


def test_point_in_polygon(conn) -> None:
    rng = np.random.default_rng(SEED + 2)
    for star in star_cases(rng):
        pts = cap_points(rng, star.ra0, star.dec0, star.size * 1.3, 1000)
        # points on the far side of the sky must be outside too (winding, not crossings)
        pts = np.concatenate([pts, -pts[:100]])
        inside = star.contains(pts)
        margin = boundary_distance(star, pts)
        step = math.radians(star.size) * 2 / 400  # sampling resolution of the margin
        keep = margin > max(step, 1e-12)
        pts, inside = pts[keep], inside[keep]
        ra, dec = lonlat(pts)
        rows = conn.execute(
            "SELECT escape.adql_contains(escape.adql_point(a, b),"
            " escape.adql_polygon(VARIADIC %s)),"
            " escape.adql_intersects(escape.adql_polygon(VARIADIC %s), escape.adql_point(a, b))"
            " FROM unnest(%s::float8[], %s::float8[]) AS t(a, b)",
            [star.params, star.params, ra.tolist(), dec.tolist()],
        ).fetchall()
        for i in range(2):
            got = col(rows, i).astype(bool)
            assert np.array_equal(got, inside), (star.ra0, star.dec0, star.size, i)


# -- region against region ---------------------------------------------------------------------


def contains(conn, a: list[float], b: list[float]) -> tuple[int, int]:
    return conn.execute(
        "SELECT escape.adql_contains(%s::float8[], %s::float8[]), "
        "escape.adql_intersects(%s::float8[], %s::float8[])",
        [a, b, a, b],
    ).fetchone()


def test_circle_and_circle(conn) -> None:
    rng = np.random.default_rng(SEED + 3)
    checked = 0
    for _ in range(400):
        ra1, dec1 = random_position(rng)
        r1 = float(10 ** rng.uniform(-4, 1.5))
        rho = float(r1 * rng.uniform(0, 3))
        ra2, dec2 = lonlat(offsets(ra1, dec1, [rho], rng.uniform(0, 2 * np.pi, 1)))
        ra2, dec2 = float(ra2[0]), float(dec2[0])
        r2 = float(r1 * rng.uniform(0.1, 3))
        d = float(separation(ra1, dec1, ra2, dec2))
        inside, meets = d + r1 <= r2, d <= r1 + r2
        if min(abs(d + r1 - r2), abs(d - r1 - r2)) < 1e-9 * (r1 + r2):
            continue
        assert contains(conn, [ra1, dec1, r1], [ra2, dec2, r2]) == (int(inside), int(meets))
        checked += 1
    assert checked > 300


def test_circle_and_polygon(conn) -> None:
    rng = np.random.default_rng(SEED + 4)
    checked = {"circle in polygon": 0, "polygon in circle": 0, "meets": 0, "checked": 0}
    for k, star in enumerate(star_cases(rng) * 3):
        b = star.boundary(3000)
        # a circle somewhere around the polygon, every other one small and near its centre
        small = k % 2 == 0
        rho = float(star.size * rng.uniform(0, 0.3 if small else 2))
        cra, cdec = lonlat(offsets(star.ra0, star.dec0, [rho], rng.uniform(0, 2 * np.pi, 1)))
        cra, cdec = float(cra[0]), float(cdec[0])
        r = float(star.size * (rng.uniform(0.02, 0.3) if small else rng.uniform(0.05, 2.5)))
        c = unit(cra, cdec)
        dist_b = np.degrees(np.arccos(np.clip(b @ c, -1, 1)))  # centre to boundary samples
        step = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", b[1:], b[:-1]), -1, 1))).max()
        near, far = dist_b.min(), dist_b.max()
        if min(abs(near - r), abs(far - r), near) < 2 * step:
            continue  # the sampled truth is not sure
        centre_in = bool(star.contains(c[None, :])[0])
        circle_in_poly = centre_in and near > r
        meets = centre_in or near <= r
        poly_in_circle = far <= r and not bool(star.contains(-c[None, :])[0])
        circle = [cra, cdec, r]
        got_cp = contains(conn, circle, star.params)
        got_pc = contains(conn, star.params, circle)
        assert got_cp == (int(circle_in_poly), int(meets)), (star.ra0, star.dec0, circle)
        assert got_pc == (int(poly_in_circle), int(meets)), (star.ra0, star.dec0, circle)
        checked["circle in polygon"] += circle_in_poly
        checked["polygon in circle"] += poly_in_circle
        checked["meets"] += meets
        checked["checked"] += 1
    assert min(checked.values()) > 5, checked
    # circles larger than a hemisphere: all but a cap around the antipode (10, 0), whose nearest
    # point of the square is 8 deg away and the farthest 10.05 deg
    square = [0.0, -1.0, 2.0, -1.0, 2.0, 1.0, 0.0, 1.0]
    assert contains(conn, square, [190.0, 0.0, 175.0]) == (1, 1)
    assert contains(conn, square, [190.0, 0.0, 171.0]) == (0, 1)
    assert contains(conn, square, [190.0, 0.0, 169.5]) == (0, 0)


def test_polygon_and_polygon(conn) -> None:
    rng = np.random.default_rng(SEED + 5)
    counts = {"in": 0, "meets": 0, "apart": 0}
    for star in star_cases(rng) * 2:
        rho = float(star.size * rng.uniform(0, 2.5))
        ra2, dec2 = lonlat(offsets(star.ra0, star.dec0, [rho], rng.uniform(0, 2 * np.pi, 1)))
        other = Star(
            rng,
            float(ra2[0]),
            float(dec2[0]),
            star.size * rng.uniform(0.1, 1.5),
            int(rng.integers(3, 9)),
            bool(rng.random() < 0.5),
        )
        ba, bb = star.boundary(200), other.boundary(200)
        gap = np.arccos(np.clip((ba @ bb.T).max(), -1, 1))
        step = max(
            np.arccos(np.clip(np.einsum("ij,ij->i", x[1:], x[:-1]), -1, 1)).max() for x in (ba, bb)
        )
        if gap < 3 * step:
            continue  # boundaries (nearly) touch: the sampled truth is not sure
        a_in_b = bool(other.contains(ba).all())
        b_in_a = bool(star.contains(bb).all())
        meets = bool(other.contains(ba).any() or star.contains(bb).any())
        assert contains(conn, star.params, other.params) == (int(a_in_b), int(meets))
        assert contains(conn, other.params, star.params) == (int(b_in_a), int(meets))
        counts["in"] += a_in_b or b_in_a
        counts["meets"] += meets
        counts["apart"] += not meets
    assert min(counts.values()) > 3, counts
    # crossing without any vertex inside the other: a plus sign
    wide = [-5.0, -1.0, 5.0, -1.0, 5.0, 1.0, -5.0, 1.0]
    tall = [-1.0, -5.0, 1.0, -5.0, 1.0, 5.0, -1.0, 5.0]
    assert contains(conn, wide, tall) == (0, 1)
    assert contains(conn, [0.5, 0.5, 0.6, 0.5, 0.6, 0.6], wide) == (1, 1)
    # touching along an edge (on the equator, where the edge normals are exact)
    north, south = [0.0, 0.0, 2.0, 0.0, 2.0, 1.0, 0.0, 1.0], [1.0, 0.0, 3.0, 0.0, 3.0, -1.0]
    assert contains(conn, north, south) == (0, 1)
    # a polygon contains itself (its boundary belongs to it)
    for star in star_cases(rng):
        assert contains(conn, star.params, star.params) == (1, 1)


def test_points_and_point_containers(conn) -> None:
    p = [10.0, 20.0]
    assert contains(conn, p, p) == (1, 1)
    assert contains(conn, p, [10.0, 20.001]) == (0, 0)
    assert contains(conn, [10.0, 20.0, 1.0], p) == (0, 1)
    assert contains(conn, [9.0, 19.0, 11.0, 19.0, 10.0, 21.0], p) == (0, 1)


# -- measures ----------------------------------------------------------------------------------


def grid_inside(star: Star, depth: int) -> tuple[np.ndarray, float]:
    """Centres of the HEALPix cells at `depth` inside the polygon, and one cell's area (sr)."""
    ipix, _, _ = nested.cone_search(
        star.ra0 * u.deg, star.dec0 * u.deg, min(star.size * 1.05, 179) * u.deg, depth, flat=True
    )
    lon, lat = nested.healpix_to_lonlat(ipix, depth)
    p = unit(lon.deg, lat.deg)
    return p[star.contains(p)], 4 * math.pi / (12 * 4**depth)


def test_area_and_centroid(conn) -> None:
    def q(sql: str, *args):
        return conn.execute(sql, args).fetchone()[0]

    # circles: exact 2 pi (1 - cos r) sr, also tiny and beyond a hemisphere
    for r in (1e-6, 0.01, 1.0, 45.0, 90.0, 135.0, 179.0, 180.0, 200.0):
        exact = 2 * math.pi * (1 - math.cos(math.radians(min(r, 180)))) * DEG2
        if r < 1:
            exact = 4 * math.pi * math.sin(math.radians(r) / 2) ** 2 * DEG2
        got = q("SELECT escape.adql_area(escape.adql_circle(10, 20, %s))", r)
        assert got == pytest.approx(exact, rel=1e-12)
    # an octant: 1/8 of the sky, either winding
    octant = 4 * math.pi / 8 * DEG2
    assert q("SELECT escape.adql_area(escape.adql_polygon(0, 0, 90, 0, 0, 90))") == pytest.approx(
        octant, rel=1e-12
    )
    assert q("SELECT escape.adql_area(escape.adql_polygon(0, 90, 90, 0, 0, 0))") == pytest.approx(
        octant, rel=1e-12
    )
    # a 1 arcsec box: flat to 1e-10
    arcsec = 1 / 3600
    assert q("SELECT escape.adql_area(escape.adql_box(123, -45, %s, %s))", arcsec, arcsec) == (
        pytest.approx(arcsec**2, rel=1e-7)
    )
    assert q("SELECT escape.adql_area(escape.adql_point(1, 2))") == 0
    # centroids: a point, a circle's centre, a box's centre (symmetry), also at the pole / RA 0
    assert q("SELECT escape.adql_centroid(escape.adql_point(1, 2))") == [1, 2]
    assert q("SELECT escape.adql_centroid(escape.adql_circle(359.5, -89, 3))") == [359.5, -89]
    for ra, dec, w, h in (
        (0.0, 0.0, 2.0, 1.0),
        (359.9, 45.0, 0.3, 0.1),
        (10.0, 89.0, 2.0, 2.0),
        (200.0, -30.0, 1e-4, 3e-4),
        (100.0, 60.0, 80.0, 40.0),
    ):
        c = q("SELECT escape.adql_centroid(escape.adql_box(%s, %s, %s, %s))", ra, dec, w, h)
        assert separation(c[0], c[1], ra, dec) < 1e-9 * max(w, h)
    # random polygons: area and centroid against a fine HEALPix grid
    rng = np.random.default_rng(SEED + 6)
    for star in star_cases(rng)[:30]:
        if star.size < 1e-3:
            continue
        depth = min(29, max(0, int(math.log2(58.6 / star.size * 150))))
        inside, cell = grid_inside(star, depth)
        area_est = len(inside) * cell * DEG2
        boundary_cells = 6 * star.size / (58.6 / 2**depth) * len(star.ra)
        tol = boundary_cells * cell * DEG2
        got = q("SELECT escape.adql_area(escape.adql_polygon(VARIADIC %s))", star.params)
        assert abs(got - area_est) <= tol, (star.ra0, star.dec0, star.size, got, area_est)
        mean = inside.sum(axis=0)
        mra, mdec = lonlat(mean / np.linalg.norm(mean))
        c = q("SELECT escape.adql_centroid(escape.adql_polygon(VARIADIC %s))", star.params)
        assert separation(c[0], c[1], mra, mdec) < 0.01 * star.size, (star.ra0, star.dec0)
    # a tiny polygon: the planar centroid of a triangle is the mean of its vertices
    tri = Star(rng, 33.0, -60.0, 1e-5, 3, False)
    c = q("SELECT escape.adql_centroid(escape.adql_polygon(VARIADIC %s))", tri.params)
    m = tri.vertices.mean(axis=0)
    mra, mdec = lonlat(m / np.linalg.norm(m))
    assert separation(c[0], c[1], mra, mdec) < 1e-6 * tri.size
    assert q("SELECT escape.adql_coord1(escape.adql_point(1.5, -2.5))") == 1.5
    assert q("SELECT escape.adql_coord2(escape.adql_point(1.5, -2.5))") == -2.5


def test_box_follows_the_adql_definition(conn) -> None:
    """Side midpoints lie w/2 (along the great circle tangent to the parallel) and h/2 (along the
    meridian) from the centre, and the sides are perpendicular to those arms."""
    rng = np.random.default_rng(SEED + 7)
    for _ in range(50):
        ra, dec = random_position(rng)
        w, h = (float(x) for x in 10 ** rng.uniform(-4, 1.8, 2))
        box = conn.execute("SELECT escape.adql_box(%s, %s, %s, %s)", [ra, dec, w, h]).fetchone()[0]
        corners = unit(np.array(box[0::2]), np.array(box[1::2]))
        centre = SkyCoord(ra * u.deg, dec * u.deg)
        for pa, half, (i, j) in (
            (90, w / 2, (1, 2)),
            (270, w / 2, (3, 0)),
            (0, h / 2, (2, 3)),
            (180, h / 2, (0, 1)),
        ):
            mid = centre.directional_offset_by(pa * u.deg, half * u.deg)
            m = unit(mid.ra.deg, mid.dec.deg)
            normal = np.cross(corners[i], corners[j])
            normal /= np.linalg.norm(normal)
            assert abs(float(normal @ m)) < 1e-10, "side passes through the arm's end"
            arm = np.cross(unit(ra, dec), m)  # normal of the arm's great circle
            assert abs(float(normal @ arm)) < 1e-9, "side perpendicular to the arm"
        area = conn.execute(
            "SELECT escape.adql_area(escape.adql_box(%s, %s, %s, %s))", [ra, dec, w, h]
        ).fetchone()[0]
        # solid angle of the tangent-plane rectangle [-X, X] x [-Y, Y] at unit distance
        x, y = math.tan(math.radians(w) / 2), math.tan(math.radians(h) / 2)
        exact = 4 * math.atan(x * y / math.sqrt(1 + x * x + y * y)) * DEG2
        assert area == pytest.approx(exact, rel=1e-9)


# -- STC-S, HEALPix, NULLs, errors -------------------------------------------------------------


def test_stcs(conn) -> None:
    def parse(s):
        return conn.execute("SELECT escape.stcs_to_geom(%s)", [s]).fetchone()[0]

    assert parse("POSITION ICRS 10.5 -20") == [10.5, -20]
    assert parse("position 10.5 -20") == [10.5, -20]
    assert parse("Circle ICRS BARYCENTER 1 2 0.5") == [1, 2, 0.5]
    assert parse("  circle  fk5  1e1  +2.5  .5 ") == [10, 2.5, 0.5]
    assert parse("POLYGON ICRS 0 0 1 0 1 1") == [0, 0, 1, 0, 1, 1]
    assert parse("Polygon UNKNOWNFrame 0 0 1 0 1 1 0 1") == [0, 0, 1, 0, 1, 1, 0, 1]
    box = parse("BOX ICRS 10 20 2 1")
    assert box == conn.execute("SELECT escape.adql_box(10, 20, 2, 1)").fetchone()[0]
    assert parse(None) is None
    assert parse("   ") is None
    for bad, msg in (
        ("CIRCLE ICRS 1 2", "needs 3 numbers"),
        ("CIRCLE GALACTIC 1 2 3", "not supported"),
        ("ELLIPSE ICRS 1 2 3 4 5", "not supported"),
        ("POSITION ICRS 1 x", "not a number"),
        ("POLYGON ICRS 0 0 1 1", "at least 3 vertices"),
        ("CIRCLE ICRS 1 2 -3", "must be a number >= 0"),
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=msg):
            parse(bad)


def test_healpix_nest_matches_cdshealpix(conn) -> None:
    rng = np.random.default_rng(SEED + 8)
    n = 3000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    special_ra = [0.0, 360.0, 90.0, 45.0, 180.0, 270.0, 359.99999999999994, 1e-300, 22.5]
    special_dec = [90.0, -90.0, 0.0, 41.810314895778596, -41.810314895778596, 89.9999999, -1e-300]
    ra = np.concatenate([ra, np.repeat(special_ra, len(special_dec)), rng.uniform(0, 360, 200)])
    dec = np.concatenate(
        [dec, np.tile(special_dec, len(special_ra)), rng.choice([-1, 1], 200) * 90.0]
    )
    ra[:50] -= 360.0  # negative RA reduces like the ingest code (mod 360)
    for order in range(30):
        rows = conn.execute(
            "SELECT escape.healpix_nest(%s, a, b) FROM unnest(%s::float8[], %s::float8[]) t(a, b)",
            [order, ra.tolist(), dec.tolist()],
        ).fetchall()
        got = np.array([r[0] for r in rows], dtype=np.int64)
        want = nested.lonlat_to_healpix(np.mod(ra, 360.0) * u.deg, dec * u.deg, depth=order).astype(
            np.int64
        )
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (order, ra[bad[:3]], dec[bad[:3]], got[bad[:3]], want[bad[:3]])


def test_nulls(conn) -> None:
    calls = [
        "escape.adql_point(NULL, 1)", "escape.adql_point(1, NULL)",
        "escape.adql_circle(1, 2, NULL)", "escape.adql_circle(NULL, 2, 3)",
        "escape.adql_polygon(VARIADIC NULL::float8[])", "escape.adql_polygon(0, 0, 1, NULL, 1, 1)",
        "escape.adql_box(1, 2, NULL, 1)",
        "escape.adql_contains(escape.adql_point(NULL, 1), escape.adql_circle(0, 0, 1))",
        "escape.adql_contains(escape.adql_point(1, 1), escape.adql_circle(0, 0, NULL))",
        "escape.adql_contains(NULL, escape.adql_polygon(0, 0, 1, 0, 1, 1))",
        "escape.adql_contains(escape.adql_point(1, 1), NULL)",
        "escape.adql_intersects(NULL, escape.adql_circle(0, 0, 1))",
        "escape.adql_intersects(escape.adql_circle(0, 0, 1), NULL)",
        "escape.adql_intersects(escape.adql_polygon(0, 0, 1, 0, 1, 1), NULL)",
        "escape.adql_distance(NULL, 1, 2, 3)",
        "escape.adql_distance(NULL, escape.adql_point(1, 2))",
        "escape.adql_area(NULL)", "escape.adql_centroid(NULL)", "escape.adql_coord1(NULL)",
        "escape.adql_coord2(NULL)", "escape.stcs_to_geom(NULL)",
        "escape.healpix_nest(NULL, 1, 2)", "escape.healpix_nest(5, 1, NULL)",
    ]  # fmt: skip
    row = conn.execute("SELECT " + ", ".join(calls)).fetchone()
    assert all(v is None for v in row), dict(zip(calls, row, strict=True))


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("escape.adql_circle(10, 20, -1)", "circle radius must be a number >= 0, got -1"),
        ("escape.adql_circle(10, 20, 'NaN')", "circle radius must be a number >= 0, got NaN"),
        (
            "escape.adql_polygon(0, 0, 'Infinity', 0, 1, 1)",
            "longitude Infinity of polygon vertex 2",
        ),
        ("escape.adql_circle(10, 95, 1)", "latitude 95 is outside"),
        ("escape.adql_polygon(0, 0, 1, 1)", "polygon needs at least 3 vertices, got 2"),
        ("escape.adql_polygon(0, 0, 1, 1, 2)", "pairs of coordinates, got 5"),
        ("escape.adql_polygon(0, 0, 0, 0, 1, 1)", "at least 3 distinct vertices, got 2"),
        ("escape.adql_polygon(0, 0, 180, 0, 90, 45)", "antipodal"),
        ("escape.adql_polygon(0, 0, 10, 0, 20, 0)", "degenerate"),
        ("escape.adql_polygon(0, 0, 10, 0, 10, 91)", "outside \\[-90, 90\\]"),
        ("escape.adql_box(0, 0, 0, 1)", "box width and height"),
        ("escape.adql_box(0, 0, 180, 1)", "box width and height"),
        ("escape.adql_contains(escape.adql_point(1, 1), ARRAY[0, 0, -2])", "got -2"),
        ("escape.adql_contains(ARRAY[1, 2, 3, 4], ARRAY[0, 0, 2])", "at least 3 vertices"),
        ("escape.adql_intersects(ARRAY[1, 2, 3, 4, 5], ARRAY[0, 0, 2])", "got 5"),
        (
            "escape.adql_distance(escape.adql_circle(0, 0, 1), escape.adql_point(0, 0))",
            "DISTANCE needs two points, got a circle and a point",
        ),
        ("escape.adql_coord1(escape.adql_circle(0, 0, 1))", "COORD1 needs a point"),
        ("escape.adql_coord2(escape.adql_polygon(0, 0, 1, 0, 1, 1))", "COORD2 needs a point"),
        ("escape.healpix_nest(30, 1, 2)", "order must be in \\[0, 29\\], got 30"),
        ("escape.healpix_nest(10, 1, -91)", "latitude -91 is outside"),
    ],
)
def test_errors(conn, sql: str, message: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute("SELECT " + sql).fetchone()


def test_errors_in_column_data_are_raised_at_run_time(conn) -> None:
    conn.execute("CREATE TEMP TABLE c (ra float8, dec float8, r float8)")
    conn.execute("INSERT INTO c VALUES (1, 2, 0.5), (1, 2, -0.5)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"got -0\.5"):
        conn.execute(
            "SELECT escape.adql_contains(escape.adql_point(1, 2), escape.adql_circle(ra, dec, r))"
            " FROM c"
        ).fetchall()
    # rows that never reach the bad radius do not raise
    rows = conn.execute(
        "SELECT escape.adql_contains(escape.adql_point(1, 2), escape.adql_circle(ra, dec, r))"
        " FROM c WHERE r > 0"
    ).fetchall()
    assert rows == [(1,)]


# -- plans and speed ---------------------------------------------------------------------------


def _load_points(conn, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    hp = nested.lonlat_to_healpix(ra * u.deg, dec * u.deg, depth=29).astype(np.int64)
    conn.execute("CREATE TABLE pts (id bigint, ra float8, dec float8, healpix bigint)")
    with conn.cursor().copy("COPY pts (id, ra, dec, healpix) FROM STDIN") as copy:
        for i in range(n):
            copy.write_row((i, float(ra[i]), float(dec[i]), int(hp[i])))
    conn.execute("CREATE INDEX ON pts (healpix)")
    conn.execute("VACUUM ANALYZE pts")
    return ra, dec


def cone_sql(ra0: float, dec0: float, r: float) -> str:
    ranges = healpix_ranges("circle", [ra0, dec0, r])
    where = " OR ".join(f"healpix BETWEEN {a} AND {b}" for a, b in ranges)
    return (
        f"SELECT id FROM pts WHERE ({where}) AND escape.adql_contains("
        f"escape.adql_point(ra, dec), escape.adql_circle({ra0!r}, {dec0!r}, {r!r})) = 1"
    )


def test_cone_uses_the_index_and_is_exact(conn) -> None:
    rng = np.random.default_rng(SEED + 9)
    ra, dec = _load_points(conn, 200_000, rng)
    conn.execute("SET max_parallel_workers_per_gather = 0")

    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + cone_sql(10.0, 20.0, 0.1)))
    assert "Bitmap Index Scan" in plan or "Index Scan" in plan, plan
    assert "Seq Scan" not in plan, plan
    verbose = "\n".join(r[0] for r in conn.execute("EXPLAIN VERBOSE " + cone_sql(10.0, 20.0, 0.1)))
    assert "adql_contains" not in verbose and "radians" in verbose, "contains must be inlined"
    # the cross-match idiom, a circle around each row, inlines as well
    join_like = (
        "SELECT count(*) FROM pts WHERE escape.adql_contains(escape.adql_point(ra, dec),"
        " escape.adql_circle(ra + 0.001, dec, 0.002)) = 1"
    )
    verbose = "\n".join(r[0] for r in conn.execute("EXPLAIN VERBOSE " + join_like))
    assert "adql_contains" not in verbose and "adql_circle" not in verbose

    # results equal the astropy truth, for cones of several sizes incl. the poles and RA = 0
    for ra0, dec0, r in (
        (10.0, 20.0, 2.0),
        (0.05, 0.0, 1.5),
        (0.0, 90.0, 3.0),
        (250.0, -89.5, 2.5),
        (359.0, -10.0, 5.0),
    ):
        got = {row[0] for row in conn.execute(cone_sql(ra0, dec0, r))}
        sep = separation(ra, dec, ra0, dec0)
        want = set(np.flatnonzero(sep <= r).tolist())
        assert got == want and len(want) > 10
