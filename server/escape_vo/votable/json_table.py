"""A JSON rendering of a result: {"metadata": [FIELD attributes...], "infos": {name: value},
"data": [[row], ...]}.

The shape is the one TAP services commonly offer (and DALI's draft JSON form resembles): one
object per column with the VOTable FIELD attributes, then the rows as arrays. It is streamed a
batch at a time; a closing "query_status" member says "OK" or "OVERFLOW" (it can only come
after the rows). "infos" holds the result's INFOs (the query, a search's own figures), as the
VOTable, Parquet and FITS renderings carry them; it is left out when there are none. NaN and
infinities have no JSON spelling and are written as null; timestamps are ISO 8601 strings,
arrays are JSON arrays. An exception from the rows propagates, as for CSV.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import pyarrow as pa

from escape_vo.votable.fields import FieldSpec
from escape_vo.votable.limit import RowLimiter
from escape_vo.votable.text import JSON, cells, rows_bytes
from escape_vo.votable.votable import Infos


def field_metadata(spec: FieldSpec) -> dict[str, str]:
    meta = {"name": spec.name, "datatype": spec.datatype}
    for key in ("arraysize", "xtype", "unit", "ucd", "utype", "description"):
        value = getattr(spec, key)
        if value:
            meta[key] = value
    return meta


def write_json(
    specs: list[FieldSpec],
    batches: RowLimiter,
    conformed: Iterable[list[pa.Array]],
    infos: Infos = (),
) -> Iterator[bytes]:
    metadata = ",\n".join(json.dumps(field_metadata(s), ensure_ascii=False) for s in specs)
    named = f'"infos": {json.dumps(dict(infos), ensure_ascii=False)},\n' if infos else ""
    yield f'{{"metadata": [\n{metadata}\n],\n{named}"data": [\n'.encode()
    first = True
    for arrays in conformed:
        columns = [cells(a, s, JSON) for a, s in zip(arrays, specs, strict=True)]
        body = rows_bytes(columns, ",", ",\n[", "]", null="null")
        if first:
            body = body[2:]
            first = False
        yield bytes(body)
    status = "OVERFLOW" if batches.overflow else "OK"
    yield f'\n],\n"query_status": "{status}"}}\n'.encode()
