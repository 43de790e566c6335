"""VOTable documents: the header (small, written by hand), the streamed DATA, the trailer.

Where the QUERY_STATUS INFOs go follows DALI 1.1 section 4.4 ("Use of VOTable"), which TAP 1.1
section 4 defers to: the RESOURCE type="results" opens with <INFO name="QUERY_STATUS"
value="OK"/> before the TABLE; since the rows are streamed, an overflow (more rows than MAXREC)
or an error found while writing is reported by a second QUERY_STATUS INFO, value "OVERFLOW" or
"ERROR", appended after the TABLE (DALI 1.1 4.4.1 and 4.4.2). An empty TABLE still gets its
DATA element, so clients that insist on one are happy.
"""

from __future__ import annotations

import binascii
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyarrow as pa

from escape_vo.votable.binary import BINARY_NULLS, binary2_rows, binary_rows
from escape_vo.votable.fields import FieldSpec
from escape_vo.votable.limit import RowLimiter
from escape_vo.votable.text import XML, cells, rows_bytes

log = logging.getLogger(__name__)

VERSION = "1.4"
NAMESPACE = "http://www.ivoa.net/xml/VOTable/v1.3"  # VOTable 1.3, 1.4 and 1.5 share it
SCHEMA_LOCATION = "http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd"

Infos = Sequence[tuple[str, str]]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_LINE = 76  # base64 characters per line
_LINE_BYTES = _LINE // 4 * 3


def document_start() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<VOTABLE version="{VERSION}" xmlns="{NAMESPACE}"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xsi:schemaLocation="{NAMESPACE} {SCHEMA_LOCATION}">\n'
    )


def xml_text(text: str) -> str:
    """Text with the characters XML 1.0 cannot carry at all (even escaped) replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _attr(value: str) -> str:
    return quoteattr(xml_text(value))


def info(name: str, value: str, content: str = "") -> str:
    attrs = f"name={_attr(name)} value={_attr(str(value))}"
    if content:
        return f"<INFO {attrs}>{escape(xml_text(content))}</INFO>\n"
    return f"<INFO {attrs}/>\n"


def field_xml(spec: FieldSpec, serialization: str = "BINARY2", field_id: str | None = None) -> str:
    attrs = [("name", " ".join(spec.name.split()) or "_")]  # name is an xs:token
    if field_id:
        attrs.append(("ID", field_id))
    attrs.append(("datatype", spec.datatype))
    for key in ("arraysize", "unit", "ucd", "utype", "xtype"):
        value = getattr(spec, key)
        if value:
            attrs.append((key, value))
    body = ""
    if spec.description:
        body += f"<DESCRIPTION>{escape(xml_text(spec.description))}</DESCRIPTION>"
    if serialization == "BINARY" and spec.datatype in BINARY_NULLS and not spec.is_array:
        body += f'<VALUES null="{BINARY_NULLS[spec.datatype]}"/>'  # schema: after DESCRIPTION
    opening = "<FIELD " + " ".join(f"{k}={_attr(v)}" for k, v in attrs)
    return f"{opening}>{body}</FIELD>\n" if body else f"{opening}/>\n"


def field_ids(specs: Sequence[FieldSpec]) -> list[str | None]:
    """An XML ID for each FIELD whose name is not one (e.g. "count(*)"), else None.

    Readers such as astropy derive an ID from the name and warn when they have to mangle it;
    giving a unique, valid ID ourselves keeps them quiet and the IDs distinct.
    """
    used = {s.name for s in specs if _NCNAME.fullmatch(s.name)}
    ids: list[str | None] = []
    for spec in specs:
        if _NCNAME.fullmatch(spec.name):
            ids.append(None)
            continue
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", spec.name)
        base = base if re.match("[A-Za-z_]", base) else "_" + base
        candidate, n = base, 1
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        ids.append(candidate)
    return ids


def table_start(specs: Sequence[FieldSpec], table_name: str, serialization: str) -> str:
    fields = "".join(
        field_xml(s, serialization, i) for s, i in zip(specs, field_ids(specs), strict=True)
    )
    return f"<TABLE name={_attr(table_name)}>\n{fields}"


def header(specs: Sequence[FieldSpec], infos: Infos, table_name: str, serialization: str) -> str:
    """The document up to and including the FIELDs; the DATA follows."""
    return (
        document_start()
        + '<RESOURCE type="results">\n'
        + info("QUERY_STATUS", "OK")
        + "".join(info(name, value) for name, value in infos)
        + table_start(specs, table_name, serialization)
    )


def write_votable(
    specs: list[FieldSpec],
    batches: RowLimiter,
    conformed: Iterable[list[pa.Array]],
    *,
    serialization: str,
    infos: Infos,
    table_name: str,
) -> Iterator[bytes]:
    """Stream a whole result VOTable; never raises for a failure of the rows.

    An exception from the batch iterator (or from encoding a batch) ends the DATA cleanly and
    appends a QUERY_STATUS ERROR INFO carrying its message, so the client gets a valid document
    that says it is incomplete rather than a silently short table.
    """
    yield header(specs, infos, table_name, serialization).encode()
    if serialization == "TABLEDATA":
        yield b"<DATA><TABLEDATA>\n"
        data_end = b"</TABLEDATA></DATA>\n"
        encode_batch = _tabledata
    else:
        yield f'<DATA><{serialization}><STREAM encoding="base64">\n'.encode()
        data_end = f"</STREAM></{serialization}></DATA>\n".encode()
        encode_batch = binary2_rows if serialization == "BINARY2" else binary_rows
    stream = Base64Lines() if serialization != "TABLEDATA" else None
    error: str | None = None
    written = 0
    try:
        for arrays in conformed:
            chunk = encode_batch(arrays, specs, len(arrays[0]))
            out = stream.feed(chunk) if stream is not None else chunk
            written += len(arrays[0])
            if len(out):
                yield bytes(out)
    except Exception as exc:  # the documented contract: report in the document, do not raise
        log.warning("result stream failed after %d rows", written, exc_info=True)
        error = f"Result incomplete: the query failed after {written} rows: {_describe(exc)}"
    finally:
        batches.close()
    tail = stream.flush() if stream is not None else b""
    trailer = data_end + b"</TABLE>\n"
    if error is not None:
        trailer += info("QUERY_STATUS", "ERROR", error).encode()
    elif batches.overflow:
        trailer += info("QUERY_STATUS", "OVERFLOW").encode()
    yield tail + trailer + b"</RESOURCE>\n</VOTABLE>\n"


def _tabledata(arrays: list[pa.Array], specs: list[FieldSpec], n: int) -> memoryview:
    columns = [cells(a, s, XML) for a, s in zip(arrays, specs, strict=True)]
    return rows_bytes(columns, "</TD><TD>", "<TR><TD>", "</TD></TR>\n")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Base64Lines:
    """Base64 of a byte stream fed in pieces, as lines of 76 characters.

    Each piece is cut at a multiple of 57 bytes (76 base64 characters, itself a multiple of 3),
    the rest is carried to the next piece, so the concatenated output is one valid base64 text.
    """

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes | memoryview) -> bytes:
        if self._carry:
            data = b"".join((self._carry, data))
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        cut = len(view) - len(view) % _LINE_BYTES
        self._carry = bytes(view[cut:])
        if not cut:
            return b""
        encoded = np.frombuffer(binascii.b2a_base64(view[:cut], newline=False), dtype=np.uint8)
        lines = np.empty((cut // _LINE_BYTES, _LINE + 1), dtype=np.uint8)
        lines[:, :_LINE] = encoded.reshape(-1, _LINE)
        lines[:, _LINE] = 10
        return lines.tobytes()

    def flush(self) -> bytes:
        carry, self._carry = self._carry, b""
        return binascii.b2a_base64(carry, newline=True) if carry else b""
