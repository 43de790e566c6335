"""CSV (RFC 4180, as TAP 1.1 section 4.2 asks) and TSV (IANA text/tab-separated-values).

CSV: a header line with the column names (unless text/csv;header=absent), CRLF line ends,
values quoted only when they hold a comma, quote, CR or LF; an empty string is written as ""
so that it stays distinct from NULL, which is an empty field. Floats use the shortest text that
reads back to the same value; NaN and infinities are NaN, Infinity and -Infinity (what Python,
numpy, astropy and Java all parse). Booleans are true/false; arrays (DALI points, circles,
polygons) are their DALI serialisation, the numbers separated by blanks.

TSV: the IANA registration forbids tabs inside fields and has no quoting, so backslash, tab,
LF and CR inside strings are written as \\, \t, \n and \r (the "linear TSV" convention that
PostgreSQL's text COPY also uses). NULL and the empty string are both an empty field.

Neither format can say "incomplete", so an exception from the rows propagates: the HTTP layer
must abort the connection (the client then sees a truncated transfer, not a short table).
An overflow cannot be signalled either (DALI 1.1 section 4.4.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

from escape_vo.votable.fields import FieldSpec
from escape_vo.votable.text import CSV, TSV, Dialect, cells, escape, rows_bytes


def write_delimited(
    specs: list[FieldSpec], conformed: Iterable[list[pa.Array]], *, tsv: bool, header: bool
) -> Iterator[bytes]:
    dialect: Dialect = TSV if tsv else CSV
    sep, eol = ("\t", "\n") if tsv else (",", "\r\n")
    if header:
        names = escape(pa.array([s.name for s in specs], pa.large_string()), dialect)
        yield (sep.join(names.to_pylist()) + eol).encode()
    for arrays in conformed:
        columns = [cells(a, s, dialect) for a, s in zip(arrays, specs, strict=True)]
        yield bytes(rows_bytes(columns, sep, "", eol))
