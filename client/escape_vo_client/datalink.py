"""DataLink 1.1 documents: parse them, pick the `#this` file of each ID, resolve many IDs at once.

ObsCore `access_url`s that point at a DataLink service (access_format
`application/x-votable+xml;content=datalink`) usually differ only in their ID parameter, so the
IDs are sent together in a few POST requests (DataLink 1.1 allows many IDs per request) instead
of one request per spectrum; services that refuse that are asked one ID at a time.
"""

from __future__ import annotations

import asyncio
import io
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from astropy.io import votable

from escape_vo_client.transfer import Checksum, Downloader, PermanentError, TransientError

DATALINK_TYPE = "application/x-votable+xml;content=datalink"
BATCH = 100
_FILE_TYPES = ("application/fits", "image/fits", "application/x-fits", "application/gzip")
_LINK_COLUMNS = ("id", "semantics", "access_url", "service_def", "error_message", "description",
                 "content_type", "content_length", "content_qualifier")  # fmt: skip
_CHECKSUM_COLUMNS = ("checksum", "content_checksum", "file_checksum", "sha256", "md5", "hash")


def is_datalink(media_type: str | None) -> bool:
    """Whether an access_format names a DataLink document (parameters in any order/spacing)."""
    if not media_type:
        return False
    text = media_type.replace(" ", "").lower()
    return text.startswith("application/x-votable+xml") and "content=datalink" in text


@dataclass(frozen=True)
class Link:
    """One row of a DataLink table."""

    id: str
    semantics: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    checksum: Checksum | None = None


@dataclass(frozen=True)
class Product:
    """Where the file of one ID is, and what the DataLink service announced about it."""

    url: str
    content_type: str | None = None
    size: int | None = None
    checksum: Checksum | None = None


@dataclass(frozen=True)
class Unresolved:
    """Why an ID could not be resolved; permanent when the service itself said so."""

    reason: str
    permanent: bool

    def __str__(self) -> str:
        return self.reason


def _text(value: object) -> str | None:
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def _integer(value: object) -> int | None:
    if value is None or value is np.ma.masked:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


_DESCRIPTOR = re.compile(rb"<RESOURCE\b[^>]*\btype=[\"']meta[\"'][^>]*>.*?</RESOURCE>", re.S)


def parse_links(data: bytes, descriptors: bool = False) -> list[Link]:
    """The rows of a DataLink document; raises ValueError for an error document.

    Service descriptors (RESOURCE type="meta": PARAMs only) are cut out before parsing unless
    asked for: astropy spends most of its time on them, ten times the table itself for a
    document of 200 spectra, and resolving files does not need them.
    """
    if not descriptors:
        data = _DESCRIPTOR.sub(b"", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = votable.parse(io.BytesIO(data), verify="ignore")
    for resource in doc.resources:
        for info in resource.infos:
            if info.name == "QUERY_STATUS" and info.value == "ERROR":
                raise ValueError(f"DataLink service error: {(info.content or '').strip()}")
    results = next((r for r in doc.resources if r.type == "results" and r.tables), None)
    table = results.tables[0] if results is not None else doc.get_first_table()
    rows = table.array
    names = {f.name.lower(): f.name for f in table.fields}
    checksum_col = next((names[c] for c in _CHECKSUM_COLUMNS if c in names), None)
    n = len(rows)

    def col(name: str | None) -> list[object]:
        """A whole column as Python values, None where masked or absent: one conversion per
        column instead of a masked-array lookup per cell (most of the parse time otherwise)."""
        if name is None:
            return [None] * n
        values = rows[name]
        data, masked = np.ma.getdata(values).tolist(), np.ma.getmaskarray(values).tolist()
        return [None if m else v for v, m in zip(data, masked, strict=True)]

    c = {k: col(names.get(k)) for k in _LINK_COLUMNS}
    checksums = col(checksum_col)
    links = []
    for i in range(n):
        links.append(
            Link(
                id=_text(c["id"][i]) or "",
                semantics=_text(c["semantics"][i]) or "",
                access_url=_text(c["access_url"][i]),
                service_def=_text(c["service_def"][i]),
                error_message=_text(c["error_message"][i]),
                description=_text(c["description"][i]),
                content_type=_text(c["content_type"][i]),
                content_length=_integer(c["content_length"][i]),
                content_qualifier=_text(c["content_qualifier"][i]),
                checksum=Checksum.parse(_text(checksums[i]), "DataLink"),
            )
        )
    return links


def this_product(links: Sequence[Link], id_: str) -> Product:
    """The `#this` file of one ID (FITS preferred when several formats are offered).

    Raises PermanentError with the service's own message when the ID has only an error row.
    """
    rows = [x for x in links if x.semantics == "#this"]
    good = [x for x in rows if x.access_url and not x.error_message]
    if not good:
        errors = [x.error_message for x in rows if x.error_message] or [
            x.error_message for x in links if x.error_message
        ]
        if errors:
            raise PermanentError(f"DataLink says: {errors[0]}")
        raise PermanentError(f"the DataLink document of {id_} has no #this link")
    fits = [x for x in good if (x.content_type or "").split(";")[0].strip() in _FILE_TYPES]
    best = (fits or good)[0]
    return Product(best.access_url, best.content_type, best.content_length, best.checksum)


def _split_id(url: str) -> tuple[str, str | None]:
    """(endpoint with the other parameters, ID value) of a DataLink access_url."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    ids = [v for k, v in params if k.upper() == "ID"]
    if len(ids) != 1:
        return url, None
    rest = [(k, v) for k, v in params if k.upper() != "ID"]
    return urlunsplit(parts._replace(query=urlencode(rest))), ids[0]


async def resolve_products(
    downloader: Downloader, items: Iterable[tuple[str, str]], batch: int = BATCH
) -> dict[str, Product | Unresolved]:
    """Resolve (key, DataLink access_url) pairs: each key -> Product, or why not."""
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    singles: list[tuple[str, str]] = []
    for key, url in items:
        endpoint, id_ = _split_id(url)
        if id_ is None:
            singles.append((key, url))
        else:
            groups[endpoint].append((key, id_, url))
    out: dict[str, Product | Unresolved] = {}

    async def one(key: str, url: str) -> None:
        try:
            links = parse_links(await downloader.request("GET", url))
            out[key] = this_product(links, key)
        except (PermanentError, ValueError) as exc:
            out[key] = Unresolved(str(exc), permanent=True)
        except TransientError as exc:
            out[key] = Unresolved(f"DataLink service: {exc}", permanent=False)

    async def many(endpoint: str, chunk: list[tuple[str, str, str]]) -> None:
        try:
            body = await downloader.request("POST", endpoint, data={"ID": [i for _, i, _ in chunk]})
            by_id: dict[str, list[Link]] = defaultdict(list)
            for link in parse_links(body):
                by_id[link.id].append(link)
        except (PermanentError, TransientError, ValueError):
            by_id = {}
        retry = []
        for key, id_, url in chunk:
            if id_ in by_id:
                try:
                    out[key] = this_product(by_id[id_], id_)
                except PermanentError as exc:
                    out[key] = Unresolved(str(exc), permanent=True)
            else:  # not in the batch answer (or the batch failed): ask for it alone
                retry.append((key, url))
        await asyncio.gather(*(one(k, u) for k, u in retry))

    tasks = [one(k, u) for k, u in singles]
    for endpoint, members in groups.items():
        for start in range(0, len(members), batch):
            tasks.append(many(endpoint, members[start : start + batch]))
    await asyncio.gather(*tasks)
    return out
