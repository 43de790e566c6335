"""Portable sky geometry: SQL functions for ADQL geometry and HEALPix range coverings.

No pgsphere, q3c or PostGIS: ADQL geometry translates to the functions of `sql/geometry.sql`
(schema `escape`, geometries as double precision[] in ICRS degrees), and a constant region
becomes a few ranges of the order-29 nested HEALPix index stored next to every position
(`healpix_ranges`), which a B-tree answers, followed by the exact SQL test.
"""

from __future__ import annotations

from importlib import resources

from escape_vo.geometry.ranges import HEALPIX_DEPTH, NPIX_29, healpix_ranges

__all__ = ["HEALPIX_DEPTH", "NPIX_29", "geometry_sql", "healpix_ranges"]


def geometry_sql() -> str:
    """The SQL that (re)creates the geometry functions; idempotent, run it in one transaction."""
    return resources.files("escape_vo.geometry").joinpath("sql/geometry.sql").read_text()
