"""Sky positions: where demo targets are, and how each file format declares them.

The truth is always ICRS, but it is computed *back* from what a file actually writes (rounded
degrees, sexagesimal strings, FK4 B1950, radians), so an exact reader can match it to well below
0.1 arcsec. Conversions run once per frame for all targets (one SkyCoord per batch is fast).
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import FK4, FK5, SkyCoord

# How a file declares positions; see declare().
STYLES = ("icrs-deg", "fk5-deg", "fk5-rad", "fk4-sexa", "fk5-sexa")


def uniform_sphere(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on the celestial sphere (degrees)."""
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def scatter_around(
    rng: np.random.Generator, ra0: float, dec0: float, radius_deg: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform inside a cap of radius_deg around (ra0, dec0); exact at the poles too."""
    r = np.radians(radius_deg) * np.sqrt(rng.uniform(0, 1, n))
    theta = rng.uniform(0, 2 * np.pi, n)
    d0, a0 = np.radians(dec0), np.radians(ra0)
    sin_dec = np.sin(d0) * np.cos(r) + np.cos(d0) * np.sin(r) * np.cos(theta)
    dec = np.arcsin(np.clip(sin_dec, -1, 1))
    ra = a0 + np.arctan2(np.sin(theta) * np.sin(r) * np.cos(d0), np.cos(r) - np.sin(d0) * sin_dec)
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _frame(style: str) -> FK4 | FK5 | str:
    if style.startswith("fk4"):
        return FK4(equinox="B1950")
    if style.startswith("fk5"):
        return FK5(equinox="J2000")
    return "icrs"


def sexagesimal(ra_deg: float, dec_deg: float) -> tuple[str, str]:
    """'HH:MM:SS.ss' (hours) and '+DD:MM:SS.s', as old long-slit headers write them."""
    cs = round(ra_deg % 360.0 / 15.0 * 360000) % (24 * 360000)  # centiseconds of time
    h, rem = divmod(cs, 360000)
    m, s = divmod(rem, 6000)
    ds = round(abs(dec_deg) * 36000)  # deciseconds of arc
    d, rem = divmod(ds, 36000)
    dm, dsec = divmod(rem, 600)
    sign = "-" if dec_deg < 0 and ds > 0 else "+"
    return f"{h:02d}:{m:02d}:{s / 100:05.2f}", f"{sign}{d:02d}:{dm:02d}:{dsec / 10:04.1f}"


def parse_sexagesimal(ra: str, dec: str) -> tuple[float, float]:
    """Degrees from the strings written by sexagesimal()."""
    h, m, s = (float(x) for x in ra.split(":"))
    d, dm, ds = (float(x) for x in dec.lstrip("+-").split(":"))
    sign = -1.0 if dec.startswith("-") else 1.0
    return (h + m / 60 + s / 3600) * 15.0, sign * (d + dm / 60 + ds / 3600)


def declare(style: str, ra: np.ndarray, dec: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    """Positions as a file of this style writes them, and the ICRS truth recovered from those.

    Returns (written, truth_ra, truth_dec): written[i] is a (lon, lat) pair of floats (degrees or,
    for 'fk5-rad', radians) or of sexagesimal strings.
    """
    ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    if ra.size == 0:
        return [], ra, dec
    frame = _frame(style)
    if style == "icrs-deg":
        lon, lat = ra, dec
    else:
        c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").transform_to(frame)
        lon, lat = c.spherical.lon.deg % 360.0, c.spherical.lat.deg
    if style.endswith("sexa"):
        written = [sexagesimal(a, d) for a, d in zip(lon, lat, strict=True)]
        back = np.array([parse_sexagesimal(a, d) for a, d in written])
        lon_w, lat_w = back[:, 0], back[:, 1]
    elif style == "fk5-rad":
        lon_w, lat_w = np.radians(lon), np.radians(lat)
        written = list(zip(lon_w.tolist(), lat_w.tolist(), strict=True))
        lon_w, lat_w = np.degrees(lon_w), np.degrees(lat_w)
    else:
        lon_w, lat_w = np.round(lon, 6) % 360.0, np.round(lat, 6)
        written = list(zip(lon_w.tolist(), lat_w.tolist(), strict=True))
    if style == "icrs-deg":
        return written, lon_w, lat_w
    back = SkyCoord(lon_w * u.deg, lat_w * u.deg, frame=frame).icrs
    return written, back.ra.deg, back.dec.deg


def jname(ra: float, dec: float, short: bool = False) -> str:
    """IAU-style designation: 'J123456.78-451201.2', or 'J1234-4512' when short."""
    a, d = sexagesimal(ra, dec)
    a, d = a.replace(":", ""), d.replace(":", "")
    return f"J{a[:4]}{d[:5]}" if short else f"J{a}{d}"
