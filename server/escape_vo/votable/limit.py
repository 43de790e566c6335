"""MAXREC applied to a stream of batches, noticing whether the result overflowed.

The executor asks the database for MAXREC + 1 rows; the writers pass on at most MAXREC of them
and, when a further row existed, report an overflow (TAP 1.1 section 4.4). The source is closed
as soon as the overflow is seen, so a server-side cursor is released without reading on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa


class RowLimiter:
    """Iterate `batches`, truncated to `max_rows` rows in total (None: no limit)."""

    def __init__(self, batches: Iterable[pa.RecordBatch], max_rows: int | None) -> None:
        if max_rows is not None and max_rows < 0:
            raise ValueError("max_rows must be >= 0 or None")
        self._source = iter(batches)
        self.max_rows = max_rows
        self.rows = 0
        self.overflow = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._source:
            if self.max_rows is None:
                self.rows += batch.num_rows
                yield batch
                continue
            room = self.max_rows - self.rows
            if batch.num_rows > room:
                self.overflow = True
                if room > 0:
                    self.rows += room
                    yield batch.slice(0, room)
                self.close()
                return
            self.rows += batch.num_rows
            yield batch

    def close(self) -> None:
        """Release the source (e.g. a generator holding a database cursor)."""
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
