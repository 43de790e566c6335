"""Sky positions: declared frame -> ICRS, and the HEALPix index stored next to every position.

Conversion is done for a whole batch at once, grouped by frame and equinox: one vectorised
SkyCoord transform per group costs about as much as one per file would.
"""

from __future__ import annotations

import math
from collections import defaultdict

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from cdshealpix import nested

from escape_vo.ingest.model import RawPosition

HEALPIX_DEPTH = 29  # finest nested level that fits a bigint; coarser ranges are shifts of it


def healpix_index(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Nested HEALPix index at depth 29 for ICRS positions (degrees)."""
    if len(ra_deg) == 0:
        return np.zeros(0, dtype=np.int64)
    lon = np.mod(np.asarray(ra_deg, dtype=float), 360.0) * u.deg
    lat = np.asarray(dec_deg, dtype=float) * u.deg
    return nested.lonlat_to_healpix(lon, lat, depth=HEALPIX_DEPTH).astype(np.int64)


def to_icrs(positions: list[RawPosition | None]) -> list[tuple[float, float] | str | None]:
    """ICRS (ra, dec) per input; None where there is no position; a reason string if invalid."""
    out: list[tuple[float, float] | str | None] = [None] * len(positions)
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for i, pos in enumerate(positions):
        if pos is None:
            continue
        lon, lat = pos.lon_deg, pos.lat_deg
        if not (math.isfinite(lon) and math.isfinite(lat)) or not -90.0 <= lat <= 90.0:
            out[i] = f"position ({lon}, {lat}) is not on the sky; stored without position"
            continue
        groups[(pos.frame.lower(), pos.equinox)].append(i)
    for (frame, equinox), idx in groups.items():
        lon = np.array([positions[i].lon_deg for i in idx]) * u.deg  # type: ignore[union-attr]
        lat = np.array([positions[i].lat_deg for i in idx]) * u.deg  # type: ignore[union-attr]
        try:
            if frame == "icrs":
                ra, dec = lon.to_value(u.deg) % 360.0, lat.to_value(u.deg)
            else:
                kwargs = {"equinox": equinox} if equinox and frame in ("fk4", "fk5") else {}
                if frame == "galactic":
                    coord = SkyCoord(l=lon, b=lat, frame="galactic")
                else:
                    coord = SkyCoord(ra=lon, dec=lat, frame=frame, **kwargs)
                icrs = coord.icrs
                ra, dec = icrs.ra.to_value(u.deg) % 360.0, icrs.dec.to_value(u.deg)
        except (ValueError, TypeError) as exc:
            for i in idx:
                out[i] = f"cannot convert position from frame {frame} {equinox or ''}: {exc}"
            continue
        for j, i in enumerate(idx):
            out[i] = (float(ra[j]), float(dec[j]))
    return out
