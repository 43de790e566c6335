"""TAP_UPLOAD: VOTables sent with a query become typed tables that any ADQL construct can use.

    UPLOAD=stars,param:file1            the table is the multipart part named file1
    UPLOAD=stars,https://host/t.xml     the server fetches it (size and time limited)

Each request (sync) or job (async) gets a schema of its own, `tap_upload_<id>`, holding UNLOGGED
tables with the declared types, loaded through ADBC (binary COPY from Arrow), indexed and
ANALYZEd so the planner sees their real size, readable by the TAP reader role only for the
duration, and dropped afterwards (the housekeeping drops what a crash leaves behind). A table
with a position (UCD pos.eq.ra / pos.eq.dec, or columns named ra/dec) in degrees gets an index on
its declination and a hidden HEALPix order-29 column with the sky index, so the translator's
positional rewrites apply to it as to our own tables (CONTAINS with a constant region uses the
HEALPix ranges; a cross-match with CONTAINS/DISTANCE on a constant radius a declination band on
both sides).

Uploads are hostile until proven otherwise. Before astropy sees a byte, the document is checked:
no DOCTYPE internal subset (so no entity declarations: no "billion laughs", no external entities),
no STREAM href (astropy would open the URL or local file it names), within the byte limit.
Every refusal is a DALI error naming the table and the problem.

astropy reads the FIELDs of every upload, but reads rows one at a time in Python (about 2 s per
100,000 rows), so the rows of BINARY/BINARY2 streams of fixed-width fields and of simple
TABLEDATA (scalar cells, no CDATA or comments) are read here with numpy instead (0.05 and 0.3 s);
anything else, and anything these readers do not recognise, goes to astropy. Inline FITS inside a
VOTable, which astropy cannot read, is decoded and read with astropy.io.fits.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import logging
import re
import secrets
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.parsers import expat

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from escape_vo.adql import Catalog
from escape_vo.adql.keywords import is_reserved
from escape_vo.schema.model import Column, SkyIndex, Table
from escape_vo.tap.limits import LIMITS

log = logging.getLogger(__name__)

SCHEMA_PREFIX = "tap_upload_"
ADQL_SCHEMA = "TAP_UPLOAD"
READER_ROLE = "escape_tap_reader"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_STREAM_HREF = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?STREAM\b[^>]*?\bhref\s*=", re.IGNORECASE)
_FITS = re.compile(
    rb"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)FITS\b(?P<attrs>[^>]*)>\s*<(?:[A-Za-z_][\w.-]*:)?STREAM\b"
    rb"(?P<sattrs>[^>]*)>(?P<body>.*?)</(?:[A-Za-z_][\w.-]*:)?STREAM>\s*</(?P=p)FITS\s*>",
    re.DOTALL,
)
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_BINARY = re.compile(
    rb"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)(?P<kind>BINARY2?)\s*>\s*<(?:[A-Za-z_][\w.-]*:)?STREAM\b"
    rb"(?P<sattrs>[^>]*)>(?P<body>.*?)</(?:[A-Za-z_][\w.-]*:)?STREAM>\s*</(?P=p)(?P=kind)\s*>",
    re.DOTALL,
)
_TABLEDATA_OPEN = re.compile(rb"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)TABLEDATA\s*>")
_TRUE, _FALSE = (
    (b"T", b"t", b"1", b"TRUE", b"true", b"True"),
    (b"F", b"f", b"0", b"FALSE", b"false", b"False"),
)
_BIG_ENDIAN = {
    "unsignedByte": "u1", "short": ">i2", "int": ">i4", "long": ">i8",
    "float": ">f4", "double": ">f8",
}  # fmt: skip
_RA_NAMES = ("ra", "ra_icrs", "raj2000", "ra_deg", "s_ra", "_raj2000")
_DEC_NAMES = ("dec", "de", "dec_icrs", "dej2000", "decj2000", "dec_deg", "s_dec", "_dej2000")
_DEG_UNITS = (None, "", "deg", "degree", "degrees")


class UploadError(ValueError):
    """An upload is malformed, too large, hostile or unreachable; the message says which."""


@dataclass(frozen=True, slots=True)
class UploadSpec:
    name: str  # the table name the query uses: TAP_UPLOAD.<name>
    source: str  # "param:<part name>" or an http(s) URL

    @property
    def part(self) -> str | None:
        return self.source[6:] if self.source.startswith("param:") else None


@dataclass
class ParsedTable:
    """An upload read into Arrow columns with their VOTable metadata."""

    name: str
    columns: list[Column]
    arrays: list[pa.Array]
    rows: int
    position: tuple[int, int] | None = None  # indexes of the ra, dec columns (degrees)


# ---- the UPLOAD parameter -------------------------------------------------------------------


def parse_upload(values: list[str]) -> list[UploadSpec]:
    """UPLOAD values ('name,URI' pairs, ';'-separated, possibly repeated) -> checked specs."""
    specs: list[UploadSpec] = []
    for value in values:
        for item in filter(None, (p.strip() for p in value.split(";"))):
            name, sep, source = (s.strip() for s in item.partition(","))
            if not sep or not source:
                raise UploadError(
                    f"UPLOAD={item!r} must be 'name,param:part' or 'name,http(s)://...'"
                )
            specs.append(UploadSpec(check_table_name(name), _check_source(name, source)))
    if len(specs) > LIMITS.upload_max_tables:
        raise UploadError(
            f"{len(specs)} tables uploaded; at most {LIMITS.upload_max_tables} per request"
        )
    seen: dict[str, str] = {}
    for spec in specs:
        key = spec.name.lower()
        if key in seen:
            raise UploadError(
                f"upload table name {spec.name!r} is used twice (names are case-insensitive); "
                "give each uploaded table its own name"
            )
        seen[key] = spec.name
    return specs


def check_table_name(name: str) -> str:
    if not _NAME.match(name):
        raise UploadError(
            f"upload table name {name!r} is not a valid ADQL table name: use a letter followed "
            "by letters, digits or underscores (e.g. mysources)"
        )
    if len(name) > 63:
        raise UploadError(f"upload table name {name[:20]}... is longer than 63 characters")
    if is_reserved(name):
        raise UploadError(
            f"upload table name {name!r} is an ADQL reserved word; choose another name"
        )
    return name


def _check_source(name: str, source: str) -> str:
    if source.startswith("param:"):
        if not source[6:]:
            raise UploadError(f"UPLOAD of {name!r}: 'param:' must name the multipart part")
        return source
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return source
    raise UploadError(
        f"UPLOAD of {name!r}: {source!r} is neither param:<part> (inline) nor an http(s) URL; "
        "this service fetches only http and https URLs"
    )


# ---- fetching -------------------------------------------------------------------------------


def fetch_url(url: str, name: str, max_bytes: int, timeout: float) -> bytes:
    """GET an upload over http(s): redirects to http(s) only, bounded size and time."""
    import httpx

    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        with (
            httpx.Client(follow_redirects=True, max_redirects=5, timeout=timeout) as client,
            client.stream("GET", url, headers={"Accept": "application/x-votable+xml"}) as r,
        ):
            if r.status_code != 200:
                raise UploadError(
                    f"upload {name!r}: {url} answered HTTP {r.status_code}; check the URL"
                )
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(
                        f"upload {name!r}: {url} is larger than the {max_bytes / 1e6:g} MB "
                        "this service accepts"
                    )
                if time.monotonic() > deadline:
                    raise UploadError(
                        f"upload {name!r}: fetching {url} took longer than {timeout:g} s"
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise UploadError(f"upload {name!r}: cannot fetch {url}: {exc}") from None
    return b"".join(chunks)


# ---- reading VOTables safely ----------------------------------------------------------------


def _check_xml(data: bytes, name: str) -> bytes:
    """Refuse what could make the parser expand entities or read other files; UTF-8 out."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise UploadError(f"upload {name!r}: cannot decode this UTF-16 document") from None
        text = re.sub(r"^(<\?xml[^>]*?)encoding=(['\"])[^'\"]*\2", r"\1", text, count=1)
        data = text.encode("utf-8")

    class Done(Exception):
        pass

    def doctype(_name, _sysid, _pubid, internal_subset) -> None:
        if internal_subset:
            raise UploadError(
                f"upload {name!r}: documents with a DOCTYPE internal subset (entity "
                "declarations) are not accepted; send a plain VOTable"
            )

    def entity(*_args) -> None:
        raise UploadError(f"upload {name!r}: XML entity declarations are not accepted")

    def first_element(*_args) -> None:
        raise Done

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.StartElementHandler = first_element
    try:
        for start in range(0, len(data), 65536):  # only the prolog is read
            parser.Parse(data[start : start + 65536], False)
        parser.Parse(b"", True)
    except Done:
        pass
    except expat.ExpatError as exc:
        raise UploadError(f"upload {name!r} is not well-formed XML: {exc}") from None
    if b"href" in data and _STREAM_HREF.search(data):
        raise UploadError(
            f"upload {name!r} refers to data elsewhere (STREAM href); put the rows inside the "
            "VOTable (TABLEDATA, BINARY, BINARY2 or FITS with an inline STREAM)"
        )
    return data


def _inline_fits(data: bytes, name: str) -> tuple[bytes, bytes | None, int]:
    """Split out an inline FITS serialisation: (VOTable without rows, FITS bytes, extnum)."""
    match = _FITS.search(data) if b"FITS" in data else None
    if match is None:
        return data, None, 0
    attrs = {k.lower(): (a or b) for k, a, b in _ATTR.findall(match["attrs"])}
    sattrs = {k.lower(): (a or b) for k, a, b in _ATTR.findall(match["sattrs"])}
    encoding = sattrs.get(b"encoding", b"base64").lower()
    if encoding not in (b"base64", b"gzip"):
        raise UploadError(f"upload {name!r}: inline FITS must be base64-encoded")
    try:
        raw = base64.b64decode(match["body"], validate=False)
        if encoding == b"gzip":
            import gzip

            raw = gzip.decompress(raw)
    except Exception:
        raise UploadError(f"upload {name!r}: the inline FITS stream cannot be decoded") from None
    extnum = int(attrs.get(b"extnum", b"1") or 1)
    prefix = match["p"]
    empty = b"<" + prefix + b"TABLEDATA/>"
    return data[: match.start()] + empty + data[match.end() :], raw, extnum


def read_votable(data: bytes, name: str, max_rows: int | None = None) -> ParsedTable:
    """Parse one uploaded VOTable (any serialisation) into Arrow columns, or UploadError."""
    max_rows = LIMITS.upload_max_rows if max_rows is None else max_rows
    if len(data) > LIMITS.upload_max_bytes:
        raise UploadError(
            f"upload {name!r} is larger than the {LIMITS.upload_max_bytes / 1e6:g} MB "
            "this service accepts"
        )
    data = _check_xml(data, name)
    data, fits_bytes, extnum = _inline_fits(data, name)
    # The rows of BINARY, BINARY2 and simple TABLEDATA are read with numpy (astropy reads them
    # one by one in Python: 2 s per 100,000 rows); astropy reads the FIELDs, and anything else.
    fast = None
    if fits_bytes is None:
        fast = (_BINARY.search(data) if b"BINARY" in data else None) or _tabledata(data)
    if fast is not None:
        full, data = data, data[: fast.start()] + b"<TABLEDATA/>" + data[fast.end() :]
    tables = _parse(data, name)
    if fast is not None and (len(tables) != 1 or not _fast_ok(fast, tables[0].fields)):
        fast, tables = None, _parse(full, name)
    if len(tables) != 1:
        raise UploadError(
            f"upload {name!r} holds {len(tables)} tables; upload exactly one table per name"
        )
    table = tables[0]
    fields = list(table.fields)
    if not fields:
        raise UploadError(f"upload {name!r} has no columns")
    if len(fields) > LIMITS.upload_max_columns:
        raise UploadError(
            f"upload {name!r} has {len(fields)} columns; at most {LIMITS.upload_max_columns}"
        )
    columns = [_column(f, name) for f in fields]
    _check_column_names(columns, name)
    if fits_bytes is not None:
        values = _fits_columns(fits_bytes, extnum, len(fields), name)
    elif fast is not None and "kind" in fast.groupdict():
        values = _binary_columns(fast, fields, name)
    else:
        values = None
        if fast is not None:
            with contextlib.suppress(_FallBack):
                values = _tabledata_columns(fast, fields)
            if values is None:
                table = _parse(full, name)[0]
        if values is None:
            array = table.array
            values = [array[n] for n in array.dtype.names]
    rows = len(values[0]) if values else 0
    if rows > max_rows:
        raise UploadError(
            f"upload {name!r} has {rows:,} rows; this service accepts at most {max_rows:,} "
            "rows per uploaded table"
        )
    arrays = [_arrow(col, v, name) for col, v in zip(columns, values, strict=True)]
    return ParsedTable(name, columns, arrays, rows, _position(columns))


def _parse(data: bytes, name: str) -> list:
    from astropy.io import votable

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(votable.parse(io.BytesIO(data), verify="ignore").iter_tables())
    except Exception as exc:
        raise UploadError(f"upload {name!r} is not a readable VOTable: {exc}") from None


def _fixed_dtype(fields) -> np.dtype | None:
    """The numpy record type of a BINARY row if every field has a fixed width, else None.

    astropy reads BINARY and BINARY2 one row at a time in Python (2 s for 100,000 rows);
    fixed-width rows are read here with one np.frombuffer instead. Variable-length fields,
    bit and unicodeChar fields go to astropy.
    """
    parts = []
    for i, f in enumerate(fields):
        size = f.arraysize
        if size is not None and "*" in size:
            return None
        count = int(np.prod([int(n) for n in size.split("x")])) if size else 1
        if f.datatype == "char":
            parts.append((f"f{i}", f"S{count}"))
        elif f.datatype == "boolean":
            parts.append((f"f{i}", "S1", (count,)) if size else (f"f{i}", "S1"))
        elif f.datatype in _BIG_ENDIAN:
            code = _BIG_ENDIAN[f.datatype]
            parts.append((f"f{i}", code, (count,)) if size else (f"f{i}", code))
        else:
            return None
    return np.dtype(parts)


@dataclass
class _Span:
    """Where the TABLEDATA element is (found without a regex over the whole document)."""

    begin: int
    finish: int
    groups: dict[str, bytes]

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.finish

    def groupdict(self) -> dict[str, bytes]:
        return self.groups

    def __getitem__(self, key: str) -> bytes:
        return self.groups[key]


def _tabledata(data: bytes) -> _Span | None:
    opening = _TABLEDATA_OPEN.search(data)
    if opening is None:
        return None
    closing = data.rfind(b"</" + opening["p"] + b"TABLEDATA")
    finish = data.find(b">", closing) + 1 if closing >= 0 else 0
    if closing < opening.end() or finish <= 0:
        return None
    body = data[opening.end() : closing]
    if b"TABLEDATA" in body:  # several tables: astropy reads them (and the upload is refused)
        return None
    return _Span(opening.start(), finish, {"p": opening["p"], "body": body})


def _fast_ok(match: re.Match | _Span, fields) -> bool:
    if "kind" in match.groupdict():  # BINARY or BINARY2
        return _fixed_dtype(fields) is not None
    body = match["body"]
    simple = all(
        (f.arraysize is None or f.datatype == "char")
        and f.datatype != "unicodeChar"
        and f.datatype in (*_BIG_ENDIAN, "char", "boolean")
        for f in fields
    )
    return simple and not any(mark in body for mark in (b"<![CDATA[", b"<!--", b"<?", b"encoding"))


def _tabledata_columns(match: _Span, fields) -> list | None:
    """The columns of a TABLEDATA of scalar and string cells, converted with numpy.

    Falls back (None) when the cells do not line up with the FIELDs or a number does not parse
    with numpy (hexadecimal integers, ...): astropy then reads the table and says what is wrong.
    """
    prefix = re.escape(match["p"])
    body = match["body"]
    cell = re.compile(rb"<" + prefix + rb"TD(?:\s[^>]*)?(?:/>|>([^<]*)</" + prefix + rb"TD\s*>)")
    cells = cell.findall(body)
    rows = len(re.findall(rb"<" + prefix + rb"TR[\s>]", body))
    if len(cells) != rows * len(fields):
        return None
    if not rows:
        return [np.ma.MaskedArray(np.array([], dtype=object)) for _ in fields]
    grid = np.array(cells, dtype=bytes).reshape(rows, len(fields))
    columns = []
    for i, f in enumerate(fields):
        stripped = np.char.strip(grid[:, i])
        empty = stripped == b""
        if f.datatype == "char":  # like astropy: stripped, and empty is an empty string
            text = np.char.decode(stripped, "utf-8", errors="replace").astype(object)
            for k in np.flatnonzero(np.char.find(stripped, b"&") >= 0):
                text[k] = html.unescape(text[k])
            columns.append(np.ma.MaskedArray(text, mask=np.zeros(rows, dtype=bool)))
        elif f.datatype == "boolean":
            values = np.isin(stripped, _TRUE)
            known = values | np.isin(stripped, _FALSE)
            columns.append(np.ma.MaskedArray(values, mask=~known))
        else:
            code = _BIG_ENDIAN[f.datatype].lstrip(">")
            try:
                values = np.where(empty, b"0", stripped).astype(code)
            except (ValueError, OverflowError):
                raise _FallBack from None
            mask = empty.copy()
            null = f.values.null if f.values is not None else None
            if null is not None:
                mask |= values == null
            if f.datatype in ("float", "double"):
                mask |= np.isnan(values)  # NaN is the null of floating-point FIELDs
            columns.append(np.ma.MaskedArray(values, mask=mask))
    return columns


class _FallBack(Exception):
    """The fast TABLEDATA reader cannot read these cells; astropy will."""


def _binary_columns(match: re.Match, fields, name: str) -> list:
    """The columns of an inline BINARY or BINARY2 stream of fixed-width rows, vectorised."""
    sattrs = {k.lower(): (a or b) for k, a, b in _ATTR.findall(match["sattrs"])}
    if sattrs.get(b"encoding", b"base64").lower() != b"base64":
        raise UploadError(f"upload {name!r}: inline BINARY streams must be base64-encoded")
    try:
        raw = base64.b64decode(match["body"], validate=False)
    except Exception:
        raise UploadError(f"upload {name!r}: its BINARY stream cannot be decoded") from None
    row_type = _fixed_dtype(fields)
    flag_bytes = (len(fields) + 7) // 8 if match["kind"] == b"BINARY2" else 0
    record = np.dtype([("flags", "u1", (flag_bytes,)), ("row", row_type)])
    if len(raw) % record.itemsize:
        raise UploadError(
            f"upload {name!r}: its BINARY stream does not hold whole rows of the declared "
            f"FIELDs ({len(raw)} bytes for rows of {record.itemsize})"
        )
    rows = np.frombuffer(raw, dtype=record)
    nulls = None
    if flag_bytes:
        nulls = np.unpackbits(rows["flags"], axis=1)[:, : len(fields)].astype(bool)
    columns = []
    for i, f in enumerate(fields):
        data = rows["row"][f"f{i}"]
        if f.datatype == "boolean":
            mask = ~np.isin(data, [b"T", b"t", b"1", b"F", b"f", b"0"])
            data = np.isin(data, [b"T", b"t", b"1"])
            if data.ndim > 1:
                mask = mask.all(axis=1)
        elif f.datatype != "char":
            data = data.astype(data.dtype.newbyteorder("="))
            mask = np.zeros(len(data), dtype=bool)
            null = f.values.null if f.values is not None else None
            if null is not None and data.ndim == 1:
                mask |= data == null
            elif f.datatype in ("float", "double") and data.ndim == 1 and not flag_bytes:
                mask |= np.isnan(data)
        else:
            mask = np.zeros(len(data), dtype=bool)
        if nulls is not None:
            mask = mask | nulls[:, i]
        columns.append(np.ma.MaskedArray(data, mask=_row_mask(mask, data)))
    return columns


def _row_mask(mask: np.ndarray, data: np.ndarray) -> np.ndarray:
    """A per-row mask shaped like data (array columns repeat it along their elements)."""
    if data.ndim == 1:
        return mask
    return np.broadcast_to(mask.reshape((-1,) + (1,) * (data.ndim - 1)), data.shape).copy()


def _fits_columns(raw: bytes, extnum: int, count: int, name: str) -> list:
    from astropy.io import fits
    from astropy.table import Table as AstropyTable

    try:
        with fits.open(io.BytesIO(raw), memmap=False) as hdus:
            data = AstropyTable.read(hdus[extnum], format="fits", mask_invalid=True)
    except Exception as exc:
        raise UploadError(f"upload {name!r}: cannot read its inline FITS table: {exc}") from None
    if len(data.columns) != count:
        raise UploadError(
            f"upload {name!r}: its FITS table has {len(data.columns)} columns but the VOTable "
            f"declares {count} FIELDs"
        )
    return [np.ma.asarray(data[c]) for c in data.colnames]


def _column(field, table: str) -> Column:
    name = str(field.name or "").strip()
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise UploadError(
            f"upload {table!r}: column name {name[:30]!r} is empty, too long (over 63 bytes) "
            "or contains NUL"
        )
    datatype = field.datatype
    if datatype in ("floatComplex", "doubleComplex"):
        raise UploadError(
            f"upload {table!r}: column {name!r} is {datatype}; complex numbers cannot be "
            "uploaded (split them into real and imaginary columns)"
        )
    if datatype == "bit":
        datatype = "boolean"
    arraysize = field.arraysize
    xtype = field.xtype
    # Arrays of any shape are stored as one-dimensional SQL arrays in the order VOTable
    # serialises them, so the declared arraysize (e.g. 2x3) describes them on the way out.
    is_time = datatype in ("char", "unicodeChar") and (xtype or "").lower() == "timestamp"
    sql = "timestamp" if is_time else None
    return Column(
        name=name,
        datatype=datatype,
        description=str(field.description or "").strip(),
        arraysize=None if arraysize in (None, "1") else str(arraysize),
        xtype=xtype,
        unit=str(field.unit) if field.unit is not None else None,
        ucd=field.ucd,
        utype=field.utype,
        sql=sql,
    )


def _check_column_names(columns: list[Column], table: str) -> None:
    seen: dict[str, str] = {}
    for col in columns:
        key = col.name.lower()
        if key in seen:
            raise UploadError(
                f"upload {table!r}: columns {seen[key]!r} and {col.name!r} have the same name "
                "(names are case-insensitive); rename one"
            )
        seen[key] = col.name


_NUMPY_ARROW = {
    "boolean": pa.bool_(),
    "unsignedByte": pa.int16(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
}


def _arrow(col: Column, values, table: str) -> pa.Array:
    """One column of astropy values (masked where null) as an Arrow array of the SQL type."""
    mask = np.ma.getmaskarray(values)
    data = np.ma.getdata(values)
    try:
        if col.datatype in ("char", "unicodeChar"):
            return _strings(col, data, mask, table)
        base = _NUMPY_ARROW[col.datatype]
        if col.arraysize is None:
            if mask.ndim > 1:
                mask = mask.reshape(len(mask), -1).all(axis=1)
            return pa.array(np.asarray(data).astype(base.to_pandas_dtype()), mask=mask, type=base)
        return _lists(data, mask, base)
    except UploadError:
        raise
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise UploadError(
            f"upload {table!r}: column {col.name!r} does not hold {col.datatype} values: {exc}"
        ) from None


def _strings(col: Column, data, mask, table: str) -> pa.Array:
    if data.dtype.kind == "S":
        data = np.char.decode(data, "utf-8", errors="replace")
    if data.dtype.kind == "O":
        data = np.array(
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in data],
            dtype=object,
        )
        mask = mask | np.array([v is None for v in data], dtype=bool)
        data = np.where(mask, "", data).astype(str)
    strings = pa.array(data, mask=mask, type=pa.string())
    if col.sql == "timestamp":
        cleaned = pc.replace_substring_regex(pc.utf8_trim_whitespace(strings), r"Z$", "")
        cleaned = pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned)
        try:
            return cleaned.cast(pa.timestamp("us"))
        except pa.ArrowInvalid as exc:
            raise UploadError(
                f"upload {table!r}: column {col.name!r} (xtype timestamp) holds a value that is "
                f"not an ISO 8601 time: {exc}"
            ) from None
    return strings


def _lists(data, mask, base: pa.DataType) -> pa.Array:
    numpy_type = base.to_pandas_dtype()
    if data.dtype.kind == "O":  # variable-length arrays: one numpy array per row
        rows = [
            None if (m is True or v is None) else np.asarray(np.ma.getdata(v)).ravel().tolist()
            for v, m in zip(data, mask if mask.ndim == 1 else mask.any(axis=-1), strict=True)
        ]
        return pa.array(rows, type=pa.list_(base))
    flat = np.asarray(data).reshape(len(data), -1).astype(numpy_type)
    width = flat.shape[1]
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), type=base), width)


def _position(columns: list[Column]) -> tuple[int, int] | None:
    """Indexes of the (ra, dec) columns in degrees, found by UCD first, then by name."""

    def pick(ucd: str, names: tuple[str, ...]) -> int | None:
        usable = [
            i
            for i, c in enumerate(columns)
            if c.datatype in ("float", "double")
            and c.arraysize is None
            and (c.unit or "").lower() in _DEG_UNITS
        ]
        by_ucd = [i for i in usable if (columns[i].ucd or "").lower().startswith(ucd)]
        main = [i for i in by_ucd if "meta.main" in (columns[i].ucd or "").lower()]
        if main or by_ucd:
            return (main or by_ucd)[0]
        by_name = [i for i in usable if columns[i].name.lower() in names]
        return by_name[0] if by_name else None

    ra, dec = pick("pos.eq.ra", _RA_NAMES), pick("pos.eq.dec", _DEC_NAMES)
    return (ra, dec) if ra is not None and dec is not None else None


# ---- loading into PostgreSQL ----------------------------------------------------------------


def _with_app_name(url: str, tag: str | None) -> str:
    if not tag:
        return url
    return url + ("&" if "?" in url else "?") + f"application_name={tag}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class UploadSession:
    """The uploaded tables of one request or job, in a schema of their own; close() drops it."""

    def __init__(self, db_url: str, label: str, tag: str | None = None) -> None:
        self.schema = f"{SCHEMA_PREFIX}{label}"
        self.tables: list[Table] = []
        self.sql_names: dict[str, tuple[str, str]] = {}
        self._conn = adbc.connect(_with_app_name(db_url, tag), autocommit=True)
        self._role: bool | None = None
        self._pending: list[tuple[ParsedTable, Table]] = []  # declared, not loaded yet
        with self._conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {_quote(self.schema)} CASCADE")
            cur.execute(f"CREATE SCHEMA {_quote(self.schema)}")

    @classmethod
    def for_request(cls, db_url: str) -> UploadSession:
        """A session for a synchronous request (its name says when, for the housekeeping)."""
        return cls(db_url, f"s{int(time.time())}_{secrets.token_hex(4)}")

    def add(self, upload: ParsedTable) -> Table:
        """Declare an uploaded table: what the translator needs. Its rows go into the
        database at load(), once the query says which blocks of cells it uses."""
        columns = list(upload.columns)
        names = [c.name for c in columns]
        sky: tuple[SkyIndex, ...] = ()
        if upload.position is not None:
            from escape_vo.geometry.cells import CELL_ORDERS

            ra_i, dec_i = upload.position
            hidden = _hidden_name("escape_healpix", names)
            blocks: list[str] = []
            for order in CELL_ORDERS:
                blocks.append(_hidden_name(f"escape_cells{order}", [*names, hidden, *blocks]))
            sky = (
                SkyIndex(
                    ra=columns[ra_i].name,
                    dec=columns[dec_i].name,
                    healpix=hidden,
                    cells=tuple(blocks),
                ),
            )
            columns[dec_i] = _replace(columns[dec_i], indexed=True)
        table = Table(
            schema=ADQL_SCHEMA,
            name=upload.name,
            description=f"Table uploaded with the query ({upload.rows} rows).",
            columns=tuple(columns),
            sky_indexes=sky,
        )
        self.tables.append(table)
        self.sql_names[f"{ADQL_SCHEMA}.{upload.name}"] = (self.schema, upload.name.lower())
        self._pending.append((upload, table))
        return table

    def load(self, sql: str | None = None) -> None:
        """Put the declared tables' rows into the database, with the order-29 HEALPix index of
        each position and, for each order of geometry.cells.CELL_ORDERS whose column the
        translated `sql` names (all of them without `sql`), the block of cells around it.
        Computing and storing a block costs 0.14-0.25 s per 100,000 rows (a third of the
        load), and a query uses one order at most; a false match (the name inside a string
        literal) only costs that."""
        while self._pending:
            upload, table = self._pending.pop(0)
            sky = table.sky_indexes[0] if table.sky_indexes else None
            cells = sky.cells if sky else ()
            if sql is not None:
                cells = tuple(c for c in cells if _quote(c) in sql)
            self._load(upload, sky, cells)

    def _load(self, upload: ParsedTable, sky: SkyIndex | None, cells: tuple[str, ...]) -> None:
        sql_name = upload.name.lower()
        names = [c.name for c in upload.columns]
        arrays = list(upload.arrays)
        ddl = ", ".join(f"{_quote(c.name)} {c.sql_type}" for c in upload.columns)
        if sky is not None and upload.position is not None:
            from escape_vo.geometry.cells import CELL_ORDERS

            ra_i, dec_i = upload.position
            orders = [o for o, c in zip(CELL_ORDERS, sky.cells, strict=True) if c in cells]
            healpix, blocks = _sky_columns(arrays[ra_i], arrays[dec_i], orders)
            arrays += [healpix, *blocks]
            names += [sky.healpix, *cells]
            ddl += f", {_quote(sky.healpix)} bigint"
            ddl += "".join(f", {_quote(c)} bigint[]" for c in cells)
        qualified = f"{_quote(self.schema)}.{_quote(sql_name)}"
        data = pa.Table.from_arrays(arrays, names=names)
        with self._conn.cursor() as cur:
            cur.execute(f"CREATE UNLOGGED TABLE {qualified} ({ddl})")
            if upload.rows:
                try:
                    cur.adbc_ingest(sql_name, data, mode="append", db_schema_name=self.schema)
                except Exception as exc:
                    raise UploadError(
                        f"upload {upload.name!r}: the database refused its rows: {exc}"
                    ) from None
            if sky is not None:
                cur.execute(f"CREATE INDEX ON {qualified} ({_quote(sky.dec)})")
                cur.execute(f"CREATE INDEX ON {qualified} ({_quote(sky.healpix)})")
            # statistics of every column but the cells (a third of the upload's load time;
            # the join's estimate comes from the indexed side)
            analyzed = ", ".join(_quote(n) for n in names if n not in cells)
            cur.execute(f"ANALYZE {qualified} ({analyzed})")
            if self._reader(cur):
                cur.execute(f"GRANT USAGE ON SCHEMA {_quote(self.schema)} TO {READER_ROLE}")
                cur.execute(f"GRANT SELECT ON {qualified} TO {READER_ROLE}")

    def _reader(self, cur) -> bool:
        if self._role is None:
            cur.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}'")
            self._role = cur.fetchone() is not None
        return self._role

    def catalog(self, base: Catalog) -> Catalog:
        return base.with_tables(self.tables, self.sql_names) if self.tables else base

    def close(self) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.execute(f"DROP SCHEMA IF EXISTS {_quote(self.schema)} CASCADE")
        except Exception as exc:  # the housekeeping drops it later
            log.warning("cannot drop upload schema %s: %s", self.schema, exc)
        finally:
            self._conn.close()

    def __enter__(self) -> UploadSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _replace(col: Column, **changes) -> Column:
    from dataclasses import replace

    return replace(col, **changes)


def _hidden_name(name: str, taken: list[str]) -> str:
    """A column name of ours that no uploaded column has."""
    while name.lower() in {n.lower() for n in taken}:
        name += "_"
    return name


def _sky_columns(ra: pa.Array, dec: pa.Array, orders: list[int]) -> tuple[pa.Array, list[pa.Array]]:
    """The order-29 HEALPix index of each position and its block of cells at each of `orders`
    (geometry/cells.py), null where the position is."""
    from escape_vo.geometry.cells import cell_blocks
    from escape_vo.ingest.positions import healpix_index

    r = ra.to_numpy(zero_copy_only=False).astype(float)
    d = dec.to_numpy(zero_copy_only=False).astype(float)
    valid = np.isfinite(r) & np.isfinite(d) & (np.abs(d) <= 90)
    valid &= ~np.asarray(ra.is_null()) & ~np.asarray(dec.is_null())
    index = np.zeros(len(r), dtype=np.int64)
    if valid.any():
        index[valid] = healpix_index(r[valid], d[valid])
    offsets = pa.array(np.arange(0, 9 * len(r) + 1, 9, dtype=np.int32))
    cells = []
    for order in orders:
        blocks = np.zeros((len(r), 9), dtype=np.int64)
        if valid.any():
            blocks[valid] = cell_blocks(r[valid], d[valid], order)
        values = pa.array(blocks.ravel(), type=pa.int64())
        cells.append(pa.ListArray.from_arrays(offsets, values, mask=pa.array(~valid)))
    return pa.array(index, mask=~valid, type=pa.int64()), cells


def load_uploads(
    session: UploadSession,
    specs: list[UploadSpec],
    part: Callable[[str], bytes],
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Fetch, check, parse and declare every upload of a request in `session` (whose load()
    puts them in the database once the query is translated)."""
    total = 0
    for spec in specs:
        if cancelled():
            return
        if spec.part is not None:
            data = part(spec.part)
        else:
            data = fetch_url(
                spec.source, spec.name, LIMITS.upload_max_bytes - total, LIMITS.upload_fetch_timeout
            )
        total += len(data)
        if total > LIMITS.upload_max_bytes:
            raise UploadError(
                f"the uploads total more than the {LIMITS.upload_max_bytes / 1e6:g} MB this "
                "service accepts"
            )
        session.add(read_votable(data, spec.name))


def part_reader(files: Mapping[str, object]) -> Callable[[str], bytes]:
    """Read inline uploads from the multipart parts of a request (starlette UploadFile)."""

    def read(part: str) -> bytes:
        upload = files.get(part)
        if upload is None:
            known = ", ".join(sorted(files)) or "none"
            raise UploadError(
                f"UPLOAD names the part {part!r} but the request has no such file part "
                f"(parts sent: {known})"
            )
        handle = upload.file  # type: ignore[attr-defined]
        handle.seek(0)
        return handle.read()

    return read
