"""VOTable documents with PARAMs, GROUPs and extra RESOURCEs around one streamed table.

escape_vo.votable writes query results (a RESOURCE with INFOs and one TABLE). SSA responses,
DataLink documents, Spectrum-DM spectra and SODA cutouts also need PARAMs, utypes on the
RESOURCE/TABLE, FIELD IDs that service descriptors can reference and trailing RESOURCEs
(service descriptors). This module builds those around the same vectorised row encoders, so
nothing runs per row in Python here either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa

from escape_vo.schema.model import Column
from escape_vo.votable.binary import binary2_rows
from escape_vo.votable.fields import FieldSpec, conform, field_spec
from escape_vo.votable.limit import RowLimiter
from escape_vo.votable.text import XML, cells, rows_bytes
from escape_vo.votable.votable import Base64Lines, document_start, field_xml, info, xml_text

VOTABLE_MIME = "application/x-votable+xml"


def attr(value: object) -> str:
    return quoteattr(xml_text(str(value)))


def text(value: str) -> str:
    return escape(xml_text(value))


@dataclass(frozen=True)
class Param:
    """A VOTable PARAM (also the inputParams of a service descriptor)."""

    name: str
    value: str
    datatype: str = "char"
    arraysize: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    xtype: str | None = None
    ref: str | None = None
    param_id: str | None = None
    description: str = ""
    minimum: str | None = None
    maximum: str | None = None
    options: Sequence[str] = field(default_factory=tuple)

    def xml(self) -> str:
        arraysize = self.arraysize
        if self.datatype in ("char", "unicodeChar") and arraysize is None:
            arraysize = "*"
        attrs = [("name", self.name)]
        if self.param_id:
            attrs.append(("ID", self.param_id))
        attrs.append(("datatype", self.datatype))
        for key in ("arraysize", "unit", "ucd", "utype", "xtype", "ref"):
            value = arraysize if key == "arraysize" else getattr(self, key)
            if value:
                attrs.append((key, value))
        attrs.append(("value", self.value))
        body = ""
        if self.description:
            body += f"<DESCRIPTION>{text(self.description)}</DESCRIPTION>"
        if self.minimum is not None or self.maximum is not None or self.options:
            body += "<VALUES>"
            if self.minimum is not None:
                body += f'<MIN value={attr(self.minimum)} inclusive="yes"/>'
            if self.maximum is not None:
                body += f'<MAX value={attr(self.maximum)} inclusive="yes"/>'
            body += "".join(f"<OPTION value={attr(o)}/>" for o in self.options)
            body += "</VALUES>"
        opening = "<PARAM " + " ".join(f"{k}={attr(v)}" for k, v in attrs)
        return f"{opening}>{body}</PARAM>\n" if body else f"{opening}/>\n"


def group(name: str, params: Iterable[Param], utype: str | None = None) -> str:
    extra = f" utype={attr(utype)}" if utype else ""
    return f"<GROUP name={attr(name)}{extra}>\n" + "".join(p.xml() for p in params) + "</GROUP>\n"


@dataclass(frozen=True)
class ServiceDescriptor:
    """A DataLink service descriptor: RESOURCE type="meta" utype="adhoc:service"."""

    descriptor_id: str
    access_url: str
    standard_id: str | None = None
    input_params: Sequence[Param] = ()
    description: str = ""
    resource_identifier: str | None = None

    def xml(self) -> str:
        out = (
            f'<RESOURCE type="meta" utype="adhoc:service" ID={attr(self.descriptor_id)}'
            + (f" name={attr(self.descriptor_id)}" if self.descriptor_id else "")
            + ">\n"
        )
        if self.description:
            out += f"<DESCRIPTION>{text(self.description)}</DESCRIPTION>\n"
        if self.standard_id:
            out += Param("standardID", self.standard_id).xml()
        if self.resource_identifier:
            out += Param("resourceIdentifier", self.resource_identifier).xml()
        out += Param("accessURL", self.access_url).xml()
        if self.input_params:
            out += group("inputParams", self.input_params)
        return out + "</RESOURCE>\n"


def table_document(
    columns: Sequence[Column],
    batches: Iterable[pa.RecordBatch],
    *,
    max_rows: int | None = None,
    resource_attrs: str = 'type="results"',
    infos: Sequence[tuple[str, str]] = (),
    info_content: dict[str, str] | None = None,
    params: Sequence[Param] = (),
    table_attrs: str = 'name="results"',
    field_ids: dict[str, str] | None = None,
    serialization: str = "TABLEDATA",
    trailer: str = "",
    status: bool = True,
) -> Iterator[bytes]:
    """The whole document, streamed: header, rows a batch at a time, then `trailer` RESOURCEs.

    With `status`, the results RESOURCE opens with QUERY_STATUS OK and, if `max_rows` cut the
    rows short, gets a QUERY_STATUS OVERFLOW INFO after the TABLE (DALI 1.1 section 4.4).
    """
    specs: list[FieldSpec] = [field_spec(c) for c in columns]
    ids = field_ids or {}
    head = document_start() + f"<RESOURCE {resource_attrs}>\n"
    if status:
        head += info("QUERY_STATUS", "OK")
    contents = info_content or {}
    head += "".join(info(name, value, contents.get(name, "")) for name, value in infos)
    head += "".join(p.xml() for p in params)
    head += f"<TABLE {table_attrs}>\n"
    head += "".join(field_xml(s, serialization, ids.get(s.name)) for s in specs)
    limiter = RowLimiter(batches, max_rows)
    if serialization == "TABLEDATA":
        yield (head + "<DATA><TABLEDATA>\n").encode()
        for batch in limiter:
            if batch.num_rows:
                arrays = [conform(batch.column(i), s) for i, s in enumerate(specs)]
                columns_text = [cells(a, s, XML) for a, s in zip(arrays, specs, strict=True)]
                yield bytes(rows_bytes(columns_text, "</TD><TD>", "<TR><TD>", "</TD></TR>\n"))
        end = "</TABLEDATA></DATA>\n"
    else:
        yield (head + '<DATA><BINARY2><STREAM encoding="base64">\n').encode()
        stream = Base64Lines()
        for batch in limiter:
            if batch.num_rows:
                arrays = [conform(batch.column(i), s) for i, s in enumerate(specs)]
                out = stream.feed(binary2_rows(arrays, specs, batch.num_rows))
                if out:
                    yield out
        end = stream.flush().decode() + "</STREAM></BINARY2></DATA>\n"
    tail = end + "</TABLE>\n"
    if status and limiter.overflow:
        tail += info("QUERY_STATUS", "OVERFLOW")
    yield (tail + "</RESOURCE>\n" + trailer + "</VOTABLE>\n").encode()
