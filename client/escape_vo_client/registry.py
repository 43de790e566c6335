"""Federation: find spectral services in the VO Registry and query many of them at once.

    from escape_vo_client.registry import find_spectral_services, federated_search
    services = find_spectral_services(keywords=["quasar"], waveband="optical")
    found = federated_search(services, pos=(150.1, 2.2), radius=0.5)
    found["service", "publisher_did", "distance", "access_url"]

- `find_spectral_services` asks a RegTAP service (pyvo.registry; the default one, or `registry=`
  any RegTAP TAP URL, without changing pyvo's global choice) for SSA services and for TAP
  services with an ObsCore table, matching keywords and wavebands.
- `federated_search` queries them in parallel (SSA queryData, or ADQL on ivoa.obscore) and merges
  the rows into one table in common units (degrees, metres, MJD), with the services that
  returned each spectrum in a provenance column; a spectrum found through several services
  (the TAP and SSA of one archive) appears once. A service that fails does not stop the others:
  its error is in `table.meta["errors"]`.
- `oai_records` harvests VOResource records from any OAI-PMH publishing registry.

Only public protocols are spoken; nothing of the escape-vo server is imported.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from pyvo.registry import regtap, rtcons

OAI_NS = "{http://www.openarchives.org/OAI/2.0/}"
_COLUMNS = {  # merged column -> (dtype, unit, description)
    "service": ("U", None, "The services that returned the spectrum (IVOA ids or URLs)"),
    "protocol": ("U", None, "ssa or tap (ObsCore) for the first of them"),
    "publisher_did": ("U", None, "Publisher DID of the spectrum"),
    "target_name": ("U", None, "Target name as the archive gives it"),
    "ra": ("f8", "deg", "Right ascension (ICRS)"),
    "dec": ("f8", "deg", "Declination (ICRS)"),
    "distance": ("f8", "deg", "Distance from the search position"),
    "em_min": ("f8", "m", "Shortest wavelength"),
    "em_max": ("f8", "m", "Longest wavelength"),
    "t_min": ("f8", "d", "Start of the exposure (MJD)"),
    "t_max": ("f8", "d", "End of the exposure (MJD)"),
    "instrument": ("U", None, "Instrument"),
    "collection": ("U", None, "Collection at the archive"),
    "access_url": ("U", None, "URL of the spectrum (or of its DataLink document)"),
    "access_format": ("U", None, "Media type behind access_url"),
}
_SSA_UTYPES = {  # merged column -> SSA 1.1 utypes (with and without the ssa: prefix)
    "publisher_did": "Curation.PublisherDID",
    "target_name": "Target.Name",
    "em_min": "Char.SpectralAxis.Coverage.Bounds.Start",
    "em_max": "Char.SpectralAxis.Coverage.Bounds.Stop",
    "t_min": "Char.TimeAxis.Coverage.Bounds.Start",
    "t_max": "Char.TimeAxis.Coverage.Bounds.Stop",
    "instrument": "Instrument.Name",
    "collection": "DataID.Collection",
    "access_url": "Access.Reference",
    "access_format": "Access.Format",
}


@dataclass(frozen=True)
class SpectralService:
    """A service that finds spectra: SSA, or TAP with an ObsCore table."""

    protocol: str  # "ssa" or "tap"
    url: str  # access URL (the SSA base URL, the TAP root)
    ivoid: str | None = None
    title: str | None = None
    wavebands: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.ivoid or self.url


# ---- discovery ----------------------------------------------------------------------------


class _Messenger(rtcons.Constraint):
    """pyvo's Waveband constraint without its download of the messenger vocabulary (which
    needs the network every six months): resources declaring any of the terms match."""

    _keyword = "waveband"

    def __init__(self, *bands: str) -> None:
        self._fillers = {f"band{i}": band.lower() for i, band in enumerate(bands)}
        self._condition = " OR ".join(
            f"1 = ivo_hashlist_has(rr.resource.waveband, {{band{i}}})" for i in range(len(bands))
        )


def _registry_service(registry: str | None) -> pyvo.dal.TAPService:
    return regtap.get_RegTAP_service() if registry is None else pyvo.dal.TAPService(registry)


def _search(constraints: list, registry: str | None, maxrec: int | None):
    service = _registry_service(registry)
    query = rtcons.build_regtap_query(constraints, service)
    return regtap.RegistryQuery(service.baseurl, query, maxrec=maxrec).execute()


def find_spectral_services(
    keywords: str | Sequence[str] = (),
    waveband: str | Sequence[str] | None = None,
    *,
    protocols: Sequence[str] = ("ssa", "tap"),
    registry: str | None = None,
    maxrec: int | None = None,
) -> list[SpectralService]:
    """SSA services and ObsCore TAP services whose records match all keywords (title,
    description or subject) and any of the wavebands (messenger vocabulary: Optical,
    Infrared, UV, ...), one entry per access URL and protocol."""
    if isinstance(keywords, str):
        keywords = [keywords]
    if isinstance(waveband, str):
        waveband = [waveband]
    unknown = set(protocols) - {"ssa", "tap"}
    if unknown:
        raise ValueError(f"protocols must be ssa and/or tap, not {', '.join(sorted(unknown))}")
    common: list = []
    if keywords:
        common.append(rtcons.Freetext(*keywords))
    if waveband:
        common.append(_Messenger(*waveband))
    found: dict[tuple[str, str], SpectralService] = {}
    for protocol in protocols:
        constraints = [*common, rtcons.Servicetype(protocol)]
        if protocol == "tap":
            constraints.append(rtcons.Datamodel("obscore"))
        for resource in _search(constraints, registry, maxrec):
            bands = tuple(b for b in (resource.waveband or []) if b)
            for interface in resource.list_interfaces(protocol):
                key = (protocol, interface.access_url)
                found.setdefault(key, SpectralService(
                    protocol, interface.access_url, resource.ivoid, resource.res_title, bands,
                ))  # fmt: skip
    return sorted(found.values(), key=lambda s: (s.name, s.protocol))


# ---- federated queries --------------------------------------------------------------------


def _degrees(value: u.Quantity | float) -> float:
    return float(value.to_value(u.deg)) if isinstance(value, u.Quantity) else float(value)


def _metres(band: u.Quantity | Sequence) -> tuple[float, float]:
    if isinstance(band, u.Quantity):
        values = band.to_value(u.m, equivalencies=u.spectral())
    else:
        values = [v.to_value(u.m, equivalencies=u.spectral()) if isinstance(v, u.Quantity)
                  else float(v) for v in band]  # fmt: skip
    lo, hi = sorted(float(v) for v in values)
    return lo, hi


def _mjd(value: Time | str | float) -> float:
    if isinstance(value, Time):
        return float(value.mjd)
    if isinstance(value, str):
        return float(Time(value).mjd)
    return float(value)


def _value(row, name: str | None):
    if name is None:
        return None
    v = row[name]
    if v is None or np.ma.is_masked(v):
        return None
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, (np.floating, float)) and math.isnan(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _ssa_rows(service: SpectralService, ra: float, dec: float, radius: float, band, time,
              maxrec: int) -> list[dict]:  # fmt: skip
    ssa = pyvo.dal.SSAService(service.url)
    kwargs: dict = {"pos": SkyCoord(ra * u.deg, dec * u.deg), "diameter": 2 * radius * u.deg}
    if band is not None:
        kwargs["band"] = band * u.m
    if time is not None:
        kwargs["time"] = Time(list(time), format="mjd")
    result = ssa.search(maxrec=maxrec, **kwargs)
    table = result.to_table()

    def by_utype(utype: str) -> str | None:
        return result.fieldname_with_utype(f"ssa:{utype}") or result.fieldname_with_utype(utype)

    names = {col: by_utype(utype) for col, utype in _SSA_UTYPES.items()}
    pos_name = by_utype("Char.SpatialAxis.Coverage.Location.Value")
    rows = []
    for row in table:
        out = {col: _value(row, name) for col, name in names.items()}
        pos = _value(row, pos_name)
        if pos is not None and len(pos) == 2:
            out["ra"], out["dec"] = float(pos[0]), float(pos[1])
        rows.append(out)
    return rows


def _tap_rows(service: SpectralService, ra: float, dec: float, radius: float, band, time,
              maxrec: int) -> list[dict]:  # fmt: skip
    where = [
        "dataproduct_type = 'spectrum'",
        f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {radius!r}))",
    ]
    if band is not None:
        where.append(f"em_min <= {band[1]!r} AND em_max >= {band[0]!r}")
    if time is not None:
        where.append(f"t_min <= {time[1]!r} AND t_max >= {time[0]!r}")
    adql = (
        "SELECT obs_publisher_did, target_name, s_ra, s_dec, em_min, em_max, t_min, t_max, "
        "instrument_name, obs_collection, access_url, access_format FROM ivoa.obscore WHERE "
        + " AND ".join(where)
    )
    table = pyvo.dal.TAPService(service.url).run_sync(adql, maxrec=maxrec).to_table()
    names = {
        "publisher_did": "obs_publisher_did", "target_name": "target_name", "ra": "s_ra",
        "dec": "s_dec", "em_min": "em_min", "em_max": "em_max", "t_min": "t_min",
        "t_max": "t_max", "instrument": "instrument_name", "collection": "obs_collection",
        "access_url": "access_url", "access_format": "access_format",
    }  # fmt: skip
    return [{col: _value(row, name) for col, name in names.items()} for row in table]


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def federated_search(
    services: Iterable[SpectralService | tuple[str, str]],
    pos: SkyCoord | Sequence[float],
    radius: u.Quantity | float,
    *,
    band: u.Quantity | Sequence | None = None,
    time: Sequence | None = None,
    maxrec: int = 1000,
    parallel: int = 8,
) -> Table:
    """Spectra within `radius` (degrees or an angle) of `pos` (SkyCoord or ICRS degrees) from
    every service at once, merged and sorted by distance.

    band: (low, high) in metres or any spectral Quantity; time: (start, end) as Time, ISO
    strings or MJD. `table.meta["errors"]` maps each failed service to its error message,
    `table.meta["counts"]` each service to the rows it returned."""
    chosen = [s if isinstance(s, SpectralService) else SpectralService(*s) for s in services]
    for s in chosen:
        if s.protocol not in ("ssa", "tap"):
            raise ValueError(f"{s.url}: protocol must be ssa or tap, not {s.protocol!r}")
    if isinstance(pos, SkyCoord):
        ra, dec = float(pos.icrs.ra.deg), float(pos.icrs.dec.deg)
    else:
        ra, dec = (float(v) for v in pos)
    r = _degrees(radius)
    band_m = _metres(band) if band is not None else None
    time_mjd = tuple(sorted(_mjd(t) for t in time)) if time is not None else None

    def run(service: SpectralService) -> list[dict]:
        query = _ssa_rows if service.protocol == "ssa" else _tap_rows
        return query(service, ra, dec, r, band_m, time_mjd, maxrec)

    errors: dict[str, str] = {}
    counts: dict[str, int] = {}
    merged: dict[str, dict] = {}
    anonymous: list[dict] = []
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(chosen) or 1))) as pool:
        futures = [(s, pool.submit(run, s)) for s in chosen]
        for service, future in futures:
            try:
                rows = future.result()
            except Exception as exc:  # one archive down must not hide the others
                errors[service.name] = f"{type(exc).__name__}: {exc}"
                continue
            counts[service.name] = len(rows)
            for row in rows:
                did = row.get("publisher_did")
                if did and did in merged:  # the same spectrum through another service
                    if service.name not in merged[did]["service"]:
                        merged[did]["service"].append(service.name)
                    continue
                row = {**row, "service": [service.name], "protocol": service.protocol}
                if did:
                    merged[did] = row
                else:
                    anonymous.append(row)
    rows = list(merged.values()) + anonymous
    for row in rows:
        row["service"] = " ".join(row["service"])
        known = row.get("ra") is not None and row.get("dec") is not None
        row["distance"] = _separation(ra, dec, row["ra"], row["dec"]) if known else None
    rows.sort(key=lambda row: (row["distance"] is None, row["distance"] or 0.0))
    return _table(rows, errors, counts)


def _table(rows: list[dict], errors: dict[str, str], counts: dict[str, int]) -> Table:
    table = Table(meta={"errors": errors, "counts": counts})
    for name, (dtype, unit, description) in _COLUMNS.items():
        values = [row.get(name) for row in rows]
        if dtype == "U":
            table[name] = np.array(["" if v is None else str(v) for v in values], dtype=str)
        else:
            data = np.ma.masked_invalid(np.array([np.nan if v is None else float(v)
                                                  for v in values], dtype=float))  # fmt: skip
            table[name] = data
        table[name].description = description
        if unit:
            table[name].unit = unit
    return table


# ---- OAI-PMH ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HarvestedRecord:
    identifier: str
    datestamp: str
    deleted: bool
    metadata: ET.Element | None  # the record (ri:Resource for ivo_vor); None when deleted


def oai_records(
    url: str,
    metadata_prefix: str = "ivo_vor",
    *,
    set_spec: str | None = "ivo_managed",
    since: str | None = None,
    timeout: float = 60.0,
) -> Iterator[HarvestedRecord]:
    """Every record of an OAI-PMH repository (ListRecords, following resumption tokens);
    `since` is an OAI datestamp (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ) for incremental harvests.
    An OAI-PMH error other than noRecordsMatch raises RuntimeError with its code and message."""
    params: dict[str, str] = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
    if set_spec:
        params["set"] = set_spec
    if since:
        params["from"] = since
    with requests.Session() as client:
        while True:
            response = client.get(url, params=params, timeout=timeout)
            response.raise_for_status()
            root = ET.fromstring(response.content)
            for error in root.findall(f"{OAI_NS}error"):
                if error.get("code") == "noRecordsMatch":
                    return
                raise RuntimeError(f"{url}: OAI-PMH {error.get('code')}: {error.text}")
            listing = root.find(f"{OAI_NS}ListRecords")
            for record in listing.findall(f"{OAI_NS}record"):
                header = record.find(f"{OAI_NS}header")
                metadata = record.find(f"{OAI_NS}metadata")
                yield HarvestedRecord(
                    header.findtext(f"{OAI_NS}identifier"),
                    header.findtext(f"{OAI_NS}datestamp"),
                    header.get("status") == "deleted",
                    metadata[0] if metadata is not None and len(metadata) else None,
                )
            token = listing.findtext(f"{OAI_NS}resumptionToken")
            if not token:
                return
            params = {"verb": "ListRecords", "resumptionToken": token}
