"""write_result: one entry point from (format, columns, Arrow batches) to response bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa

from escape_vo.schema.model import Column
from escape_vo.votable.delimited import write_delimited
from escape_vo.votable.fields import FieldSpec, conform, field_spec
from escape_vo.votable.fits import write_fits
from escape_vo.votable.formats import OutputFormat
from escape_vo.votable.json_table import write_json
from escape_vo.votable.limit import RowLimiter
from escape_vo.votable.parquet import write_parquet
from escape_vo.votable.votable import Infos, write_votable


def write_result(
    fmt: OutputFormat,
    columns: Sequence[Column],
    batches: Iterable[pa.RecordBatch],
    max_rows: int | None = None,
    infos: Infos = (),
    table_name: str = "result",
) -> Iterator[bytes]:
    """The response body for a query result, as chunks of bytes (about one per batch).

    `batches` must have the columns of `columns`, in order. At most `max_rows` rows are written;
    if the batches hold more, the result is marked as overflowed where the format can say so
    (VOTable, VOParquet metadata, FITS header, JSON). The batches are pulled lazily, so memory
    stays flat; FITS alone spools to a temporary file first (see escape_vo.votable.fits).

    Errors: bad column metadata raises ValueError here, before anything is produced. An
    exception from the batches (or from encoding them) while streaming is written into VOTable
    output as a trailing QUERY_STATUS ERROR INFO; for the other formats it propagates out of the
    iterator, and the HTTP layer must then abort the connection so the client sees a broken
    transfer instead of a short file.
    """
    specs = [field_spec(c) for c in columns]
    if not specs:
        raise ValueError("a result needs at least one column")
    limiter = RowLimiter(batches, max_rows)
    conformed = _conformed(limiter, specs)
    if fmt.serialization:
        return write_votable(
            specs,
            limiter,
            conformed,
            serialization=fmt.serialization,
            infos=infos,
            table_name=table_name,
        )
    if fmt.writer in ("csv", "tsv"):
        return _closing(
            write_delimited(specs, conformed, tsv=fmt.writer == "tsv", header=fmt.header), limiter
        )
    if fmt.writer == "json":
        return _closing(write_json(specs, limiter, conformed, infos=infos), limiter)
    if fmt.writer == "parquet":
        return _closing(
            write_parquet(specs, limiter, conformed, infos=infos, table_name=table_name), limiter
        )
    if fmt.writer == "fits":
        return _closing(
            write_fits(specs, limiter, conformed, infos=infos, table_name=table_name), limiter
        )
    raise ValueError(f"no writer for output format {fmt.name!r}")


def _conformed(limiter: RowLimiter, specs: list[FieldSpec]) -> Iterator[list[pa.Array]]:
    for batch in limiter:
        if batch.num_columns != len(specs):
            raise ValueError(
                f"the result has {batch.num_columns} columns but {len(specs)} were declared"
            )
        if batch.num_rows:
            yield [conform(batch.column(i), spec) for i, spec in enumerate(specs)]


def _closing(chunks: Iterator[bytes], limiter: RowLimiter) -> Iterator[bytes]:
    """Pass chunks on and release the batch source however the stream ends."""
    try:
        yield from chunks
    finally:
        limiter.close()
