"""VOParquet: Parquet with the VOTable metadata in the file's key-value metadata.

Per the IVOA Note "Parquet in the VO" (VOParquet 1.0, section 2.2) the footer carries
IVOA.VOTable-Parquet.version = "1.0" and IVOA.VOTable-Parquet.content = a VOTable document whose
first TABLE has one FIELD per Parquet column and no DATA. That document also carries our
QUERY_STATUS INFOs, so an overflow is recorded (the footer is written last, when we know).

Parquet's footer comes at the end, so the file streams: each batch (or a few small ones
gathered) becomes a row group whose bytes are passed on at once. The Arrow schema is not
embedded (store_schema=False), so every reader sees the same key-value metadata.
An exception from the rows propagates (the file then has no footer and no reader accepts it):
the HTTP layer must abort the connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from escape_vo.votable.fields import FieldSpec
from escape_vo.votable.limit import RowLimiter
from escape_vo.votable.votable import Infos, document_start, info, table_start

VERSION_KEY = "IVOA.VOTable-Parquet.version"
CONTENT_KEY = "IVOA.VOTable-Parquet.content"
ROW_GROUP_ROWS = 65_536  # small batches are gathered up to this before a row group is written


class _Chunks:
    """A write-only file that hands what was written to the caller instead of storing it."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def votable_metadata(
    specs: Sequence[FieldSpec], infos: Infos, table_name: str, status: str = "OK"
) -> str:
    """The data-less VOTable describing the Parquet columns."""
    trailer = info("QUERY_STATUS", status) if status != "OK" else ""
    return (
        document_start()
        + '<RESOURCE type="results">\n'
        + info("QUERY_STATUS", "OK")
        + "".join(info(name, value) for name, value in infos)
        + table_start(specs, table_name, "BINARY2")
        + "</TABLE>\n"
        + trailer
        + "</RESOURCE>\n</VOTABLE>\n"
    )


def write_parquet(
    specs: list[FieldSpec],
    batches: RowLimiter,
    conformed: Iterable[list[pa.Array]],
    *,
    infos: Infos,
    table_name: str,
) -> Iterator[bytes]:
    schema = pa.schema([pa.field(s.name, s.arrow_type) for s in specs])
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, schema, store_schema=False, compression="snappy")
    pending: list[pa.RecordBatch] = []
    rows = 0
    done = False
    try:
        for arrays in conformed:
            pending.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += len(arrays[0])
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema), ROW_GROUP_ROWS * 16)
                pending, rows = [], 0
                yield sink.take()
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), ROW_GROUP_ROWS * 16)
        status = "OVERFLOW" if batches.overflow else "OK"
        writer.add_key_value_metadata(
            {VERSION_KEY: "1.0", CONTENT_KEY: votable_metadata(specs, infos, table_name, status)}
        )
        writer.close()
        done = True
        yield sink.take()
    finally:
        if not done:
            with contextlib.suppress(Exception):
                writer.close()  # only frees the writer; the caller never sees these bytes
