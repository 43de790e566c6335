"""FITS binary tables, spooled to disk first because FITS cannot be streamed from the start.

A BINTABLE header states the row count (NAXIS2), every string column's width and the heap size
before the first row, and none of these is known until the last row has arrived. So the rows
are first written, as they come, to an anonymous temporary file on disk (Arrow IPC; memory
stays flat) while the widths and counts are gathered; then the header is written and the rows
are read back, a batch at a time, and encoded big-endian with numpy (same machinery as BINARY2).
Variable-length arrays (polygons) go to the heap after the table, as 'P' descriptors.

Consequences, by design: the first byte leaves only after the whole result has been read; an
exception from the rows therefore surfaces from the first `next()` of the iterator, before any
byte is sent, so the HTTP layer can still answer with a proper error document. Integer NULLs get
a TNULLn value that the column does not use; float NULLs are NaN, logical NULLs the 0 byte,
string NULLs empty strings. Strings are written as their UTF-8 bytes. Metadata that FITS has no
standard keyword for follows the common conventions: TCOMMn (description), TUCDn, TUTYPn.
An overflow is flagged with OVERFLOW = T in the table header.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits

from escape_vo.votable.binary import RowBuilder, pad_bytes
from escape_vo.votable.fields import WIRE_DTYPES, FieldSpec, offsets_of, values_buffer
from escape_vo.votable.limit import RowLimiter
from escape_vo.votable.votable import Infos

BLOCK = 2880
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_CODES = {
    "boolean": "L",
    "unsignedByte": "B",
    "short": "I",
    "int": "J",
    "long": "K",
    "float": "E",
    "double": "D",
}
_INT_RANGE = {
    "unsignedByte": (0, 255),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}


@dataclass
class _Stats:
    """What the header needs to know about one column, gathered while spooling."""

    max_bytes: int = 0  # longest string
    max_len: int = 0  # longest variable array
    elements: int = 0  # elements of variable arrays (heap size / element size)
    nulls: bool = False
    low: int | None = None
    high: int | None = None


def write_fits(
    specs: list[FieldSpec],
    batches: RowLimiter,
    conformed: Iterable[list[pa.Array]],
    *,
    infos: Infos,
    table_name: str,
) -> Iterator[bytes]:
    if len(specs) > 999:
        raise ValueError("FITS tables hold at most 999 columns")
    schema = pa.schema([pa.field(s.name or f"col{i}", s.arrow_type) for i, s in enumerate(specs)])
    with tempfile.TemporaryFile(prefix="escape-vo-fits-") as spool:
        stats = [_Stats() for _ in specs]
        nrows = 0
        with pa.ipc.new_stream(spool, schema) as writer:
            for arrays in conformed:
                for array, spec, stat in zip(arrays, specs, stats, strict=True):
                    _observe(array, spec, stat)
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                nrows += len(arrays[0])
        columns = [_layout(s, st) for s, st in zip(specs, stats, strict=True)]
        heap_size = sum(
            c.element.itemsize * st.elements for c, st in zip(columns, stats, strict=True)
        )
        if heap_size >= 2**31:
            columns = [_layout(s, st, wide=True) for s, st in zip(specs, stats, strict=True)]
        width = sum(c.width for c in columns)
        yield _primary_header()
        yield _table_header(
            specs, columns, width, nrows, heap_size, table_name, infos, batches.overflow
        )
        spool.seek(0)
        with tempfile.TemporaryFile(prefix="escape-vo-fits-heap-") as heap:
            written = 0
            heap_at = 0
            for batch in pa.ipc.open_stream(spool):
                chunk, heap_at = _rows(batch, specs, columns, heap, heap_at)
                written += len(chunk)
                yield bytes(chunk)
            heap.seek(0)  # the heap follows the rows directly (THEAP = NAXIS1 * NAXIS2)
            yield from _copy(heap)
            yield _padding(written + heap_at)


def _observe(array: pa.Array, spec: FieldSpec, stat: _Stats) -> None:
    stat.nulls = stat.nulls or array.null_count > 0
    if spec.is_text:
        longest = pc.max(pc.binary_length(array)).as_py()
        stat.max_bytes = max(stat.max_bytes, longest or 0)
    elif spec.is_array and spec.variable:
        lengths = pc.list_value_length(array)
        stat.max_len = max(stat.max_len, pc.max(lengths).as_py() or 0)
        stat.elements += pc.sum(lengths).as_py() or 0
    elif spec.is_array:  # checked now, so that a bad value fails before the first byte
        bounds = pc.min_max(pc.list_value_length(array)).as_py()  # NULL cells are ignored
        wrong = [n for n in (bounds["min"], bounds["max"]) if n not in (None, spec.count)]
        if wrong:
            raise ValueError(
                f"column {spec.name!r} has arraysize {spec.arraysize} but a value with "
                f"{wrong[0]} elements"
            )
    elif spec.datatype in _INT_RANGE and array.null_count < len(array):
        bounds = pc.min_max(array).as_py()
        low, high = bounds["min"], bounds["max"]
        stat.low = low if stat.low is None else min(stat.low, low)
        stat.high = high if stat.high is None else max(stat.high, high)


@dataclass(frozen=True)
class _Column:
    tform: str
    width: int
    element: np.dtype  # the wire dtype of one element (for strings: one byte)
    tnull: int | None = None
    descriptor: str | None = None  # '>i4' (P) or '>i8' (Q) for variable arrays


def _layout(spec: FieldSpec, stat: _Stats, *, wide: bool = False) -> _Column:
    if spec.is_text:
        width = max(stat.max_bytes, 1)
        return _Column(f"{width}A", width, np.dtype("u1"))
    code = _CODES[spec.datatype]
    element = np.dtype(WIRE_DTYPES.get(spec.datatype, "u1"))
    if spec.is_array and spec.variable:
        descriptor = ">i8" if wide else ">i4"
        tform = f"{'Q' if wide else 'P'}{code}({stat.max_len})"
        return _Column(tform, 2 * np.dtype(descriptor).itemsize, element, descriptor=descriptor)
    if spec.is_array:
        count = spec.count or 1
        return _Column(f"{count}{code}", count * element.itemsize, element)
    tnull = _unused_integer(spec, stat) if stat.nulls and spec.datatype in _INT_RANGE else None
    return _Column(code, element.itemsize, element, tnull)


def _unused_integer(spec: FieldSpec, stat: _Stats) -> int:
    """A TNULL value outside the column's observed range: the type's minimum if possible
    (255 for bytes), else its maximum; if the data span the whole range, a clash is unavoidable.
    """
    low, high = _INT_RANGE[spec.datatype]
    candidates = (high, low) if spec.datatype == "unsignedByte" else (low, high)
    for value in candidates:
        if stat.low is None or stat.high is None or not stat.low <= value <= stat.high:
            return value
    return candidates[0]


def _rows(
    batch: pa.RecordBatch, specs: list[FieldSpec], columns: list[_Column], heap: IO[bytes], at: int
) -> tuple[memoryview, int]:
    row = RowBuilder(batch.num_rows)
    for array, spec, column in zip(batch.columns, specs, columns, strict=True):
        if spec.datatype == "boolean":
            values = np.where(pc.fill_null(array, False).to_numpy(zero_copy_only=False), 84, 70)
            if array.null_count:
                values[array.is_null().to_numpy(zero_copy_only=False)] = 0
            row.fixed("u1", values)
        elif spec.is_text:
            array = pc.fill_null(array, "")
            data = np.frombuffer(values_buffer(array), dtype=np.uint8)
            matrix = pad_bytes(offsets_of(array), data, column.width)
            row.fixed(np.dtype(("u1", (column.width,))), matrix)
        elif spec.is_array:
            at = _array(row, array, spec, column, heap, at)
        else:
            fill = float("nan") if spec.is_float else (column.tnull or 0)
            row.fixed(column.element, pc.fill_null(array, fill).to_numpy(zero_copy_only=False))
    return row.encode(), at


def _array(
    row: RowBuilder, array: pa.Array, spec: FieldSpec, column: _Column, heap: IO[bytes], at: int
) -> int:
    fill = float("nan") if spec.is_float else 0
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
    values = pc.fill_null(array.flatten(), fill).to_numpy(zero_copy_only=False)
    if column.descriptor is None:
        size = spec.count or 1
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        matrix = np.full((len(array), size), fill, dtype=values.dtype)
        matrix[valid] = values.reshape(-1, size)
        row.fixed(np.dtype((column.element, (size,))), matrix)
        return at
    data = values.astype(column.element, copy=False)
    heap.write(data.tobytes())
    ends = np.cumsum(lengths.astype(np.int64) * column.element.itemsize)
    descriptors = np.empty((len(array), 2), dtype=np.int64)
    descriptors[:, 0] = lengths
    descriptors[:, 1] = at + ends - lengths * column.element.itemsize
    row.fixed(np.dtype((column.descriptor, (2,))), descriptors)
    return at + int(ends[-1]) if len(ends) else at


def _ascii(text: str) -> str:
    """FITS headers are printable ASCII: drop accents, replace what is left by '?'."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
        text = text.encode("ascii", "replace").decode()
    return _CONTROL.sub(" ", text)


def _primary_header() -> bytes:
    header = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)])
    return header.tostring().encode("ascii")


def _table_header(
    specs: list[FieldSpec],
    columns: list[_Column],
    width: int,
    nrows: int,
    heap_size: int,
    table_name: str,
    infos: Infos,
    overflow: bool,
) -> bytes:
    header = fits.Header(
        [
            ("XTENSION", "BINTABLE", "binary table extension"),
            ("BITPIX", 8),
            ("NAXIS", 2),
            ("NAXIS1", width, "bytes per row"),
            ("NAXIS2", nrows, "rows"),
            ("PCOUNT", heap_size, "heap size"),
            ("GCOUNT", 1),
            ("TFIELDS", len(specs)),
        ]
    )
    for i, (spec, column) in enumerate(zip(specs, columns, strict=True), start=1):
        header[f"TTYPE{i}"] = _ascii(spec.name)
        header[f"TFORM{i}"] = column.tform
        if spec.unit:
            header[f"TUNIT{i}"] = _ascii(spec.unit)
        if column.tnull is not None:
            header[f"TNULL{i}"] = column.tnull
        if spec.ucd:
            header[f"TUCD{i}"] = _ascii(spec.ucd)
        if spec.utype:
            header[f"TUTYP{i}"] = _ascii(spec.utype)
        if spec.description:
            header[f"TCOMM{i}"] = _ascii(" ".join(spec.description.split()))
    header["EXTNAME"] = _ascii(table_name)
    if overflow:
        header["OVERFLOW"] = (True, "more rows matched than MAXREC: table truncated")
    for name, value in infos:
        header.add_comment(_ascii(f"{name}: {' '.join(str(value).split())}"))
    return header.tostring().encode("ascii")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _copy(source: IO[bytes], chunk: int = 8 << 20) -> Iterator[bytes]:
    while data := source.read(chunk):
        yield data
