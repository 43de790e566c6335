"""What a harvest is: a remote service, a discovery query and the local collection.

The same command line always names the same harvest (its key is a hash of these four), which is
what makes `escape-vo harvest ...` resumable and incremental: running it again continues the
interrupted run, or fetches only what appeared at the remote since.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

_SELECT = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)


@dataclass(frozen=True)
class HarvestSpec:
    protocol: str  # 'tap' or 'ssa'
    service_url: str
    query: str  # ADQL, or the SSA parameters as a sorted query string
    collection: str | None = None

    @property
    def key(self) -> str:
        text = json.dumps([self.protocol, self.service_url, self.query, self.collection])
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def tap(cls, url: str, adql: str, collection: str | None = None) -> HarvestSpec:
        """A TAP harvest; a bare condition is read as the WHERE clause over ivoa.obscore."""
        adql = " ".join(adql.split())
        if not adql:
            raise ValueError("--adql is empty")
        if not _SELECT.match(adql):
            adql = f"SELECT * FROM ivoa.obscore WHERE {adql}"
        return cls("tap", url.rstrip("/"), adql, collection)

    @classmethod
    def ssa(
        cls,
        url: str,
        *,
        pos: str | None = None,
        size: float | None = None,
        band: str | None = None,
        time: str | None = None,
        target: str | None = None,
        fmt: str | None = None,
        collection: str | None = None,
    ) -> HarvestSpec:
        """An SSA harvest: POS 'ra,dec' (deg), SIZE diameter (deg), BAND 'lo/hi' (m), TIME
        'start/end' (ISO 8601), TARGETNAME, FORMAT."""
        params: dict[str, str] = {}
        if pos is not None:
            try:
                ra, dec = (float(v) for v in pos.split(","))
            except ValueError as exc:
                raise ValueError(f"--pos must be RA,DEC in degrees, not {pos!r}") from exc
            if not -90 <= dec <= 90:
                raise ValueError(f"--pos: declination {dec} is not in [-90, 90]")
            params["POS"] = f"{ra!r},{dec!r}"
            if size is None:
                raise ValueError("--pos needs --size (diameter of the search circle, degrees)")
            params["SIZE"] = repr(float(size))
        if band is not None:
            lo, sep, hi = band.partition("/")
            try:
                [float(v) for v in (lo, hi) if v]
            except ValueError as exc:
                raise ValueError(f"--band must be LO/HI in metres, not {band!r}") from exc
            if not sep:
                raise ValueError(f"--band must be LO/HI in metres (e.g. 4e-7/7e-7), not {band!r}")
            params["BAND"] = band
        if time is not None:
            params["TIME"] = time
        if target is not None:
            params["TARGETNAME"] = target
        if fmt is not None:
            params["FORMAT"] = fmt
        if not params:
            raise ValueError("an SSA harvest needs --pos/--size, --band, --time or --target")
        query = urlencode(sorted(params.items()))
        return cls("ssa", url.rstrip("/"), query, collection)

    def ssa_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query))
