"""Discovery: what the remote archive holds, through TAP (ObsCore) or SSA.

Both protocols are spoken through the thin client / pyvo, like any user script would; the result
is a list of RemoteItems, one per remote spectrum, identified by its publisher DID.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import requests

from escape_vo.harvest.spec import HarvestSpec


@dataclass(frozen=True)
class RemoteItem:
    remote_id: str
    access_url: str
    access_format: str | None = None
    obs_id: str | None = None
    release_date: str | None = None
    ra: float | None = None
    dec: float | None = None


@dataclass
class Discovery:
    items: list[RemoteItem] = field(default_factory=list)
    truncated: bool = False  # the remote capped the result: some spectra were not listed
    without_access: int = 0  # rows that had no access URL


class DiscoveryError(Exception):
    """The remote could not be queried; the message says why and what to change."""


def _text(value: object) -> str | None:
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def discover(
    spec: HarvestSpec, timeout: float = 60.0, headers: Mapping[str, str] | None = None
) -> Discovery:
    """The spectra the remote offers; `headers` go with the query (e.g. Authorization)."""
    session = requests.Session()
    session.headers.update(headers or {})
    with warnings.catch_warnings(), session:
        warnings.simplefilter("ignore")
        if spec.protocol == "tap":
            return _tap(spec, timeout, session)
        return _ssa(spec, timeout, session)


def _refusal(exc: Exception) -> str:
    """What to do when the remote refused (pyvo's errors carry the HTTP status as .code)."""
    code = getattr(exc, "code", None)
    if code in (401, 403):
        return (
            f" (HTTP {code}: the archive wants to know who you are; give what it asks for "
            "with --header, e.g. --header 'Authorization: Bearer $TOKEN')"
        )
    return ""


def _tap(spec: HarvestSpec, timeout: float, session: requests.Session) -> Discovery:
    from escape_vo_client import Archive

    archive = Archive(spec.service_url, tap_url=spec.service_url, timeout=timeout, session=session)
    try:
        table = archive.query(spec.query)
    except Exception as exc:  # pyvo raises DALQueryError/DALServiceError with the service's text
        raise DiscoveryError(
            f"the TAP query at {spec.service_url} failed: {exc}{_refusal(exc)}"
        ) from exc
    cols = {c.lower(): c for c in table.colnames}
    if "access_url" not in cols:
        raise DiscoveryError(
            "the query must return access_url (and obs_publisher_did, access_format): "
            f"select them from ivoa.obscore; it returned {table.colnames}"
        )

    def get(row, name: str) -> object:
        return row[cols[name]] if name in cols else None

    found = Discovery(truncated=bool(table.meta.get("overflow")))
    for row in table:
        url = _text(get(row, "access_url"))
        if url is None:
            found.without_access += 1
            continue
        found.items.append(
            RemoteItem(
                remote_id=_text(get(row, "obs_publisher_did")) or url,
                access_url=url,
                access_format=_text(get(row, "access_format")),
                obs_id=_text(get(row, "obs_id")),
                release_date=_text(get(row, "obs_release_date")),
                ra=_float(get(row, "s_ra")),
                dec=_float(get(row, "s_dec")),
            )
        )
    return found


def _ssa(spec: HarvestSpec, timeout: float, session: requests.Session) -> Discovery:
    import pyvo

    params = spec.ssa_params()
    service = pyvo.dal.SSAService(spec.service_url, session=session)
    query = service.create_query()
    for name, value in params.items():
        query[name] = value
    query.setdefault("REQUEST", "queryData")
    try:
        result = query.execute()
    except Exception as exc:
        raise DiscoveryError(
            f"the SSA query at {spec.service_url} failed: {exc}{_refusal(exc)}"
        ) from exc
    found = Discovery(truncated=_overflow(result))
    for rec in result:
        url = _utype(rec, "ssa:Access.Reference")
        if url is None:
            found.without_access += 1
            continue
        pos = _by_utype_raw(rec, "ssa:Target.Pos")
        if pos is None:
            pos = _by_utype_raw(rec, "ssa:Char.SpatialAxis.Coverage.Location.Value")
        ra = dec = None
        if pos is not None and np.size(pos) == 2:
            ra, dec = _float(pos[0]), _float(pos[1])
        found.items.append(
            RemoteItem(
                remote_id=_utype(rec, "ssa:Curation.PublisherDID")
                or _utype(rec, "ssa:DataID.CreatorDID")
                or url,
                access_url=url,
                access_format=_utype(rec, "ssa:Access.Format"),
                obs_id=_utype(rec, "ssa:DataID.DatasetID") or _utype(rec, "ssa:DataID.Title"),
                release_date=_utype(rec, "ssa:Curation.Date"),
                ra=ra,
                dec=dec,
            )
        )
    return found


def _overflow(result) -> bool:
    """Whether the service says it truncated the result (INFO QUERY_STATUS=OVERFLOW)."""
    for resource in result.votable.resources:
        for info in resource.infos:
            if info.name == "QUERY_STATUS" and info.value == "OVERFLOW":
                return True
    return False


def _by_utype_raw(rec, utype: str):
    try:
        return rec.getbyutype(utype)
    except Exception:  # pyvo raises for absent or duplicate utypes, depending on the version
        return None


def _utype(rec, utype: str) -> str | None:
    try:
        return _text(rec.getbyutype(utype, decode=True))
    except Exception:
        return None
