"""Result writers: VOTable (BINARY2, TABLEDATA, BINARY), CSV, TSV, FITS, VOParquet, JSON.

They take column metadata (escape_vo.schema.model.Column) and an iterator of Arrow record
batches and yield bytes, a batch at a time, without knowing any database driver:

    fmt = resolve_format(params.get("RESPONSEFORMAT"))      # ValueError lists what is accepted
    body = write_result(fmt, columns, batches, max_rows=maxrec, infos=[("QUERY", adql)])
    StreamingResponse(body, media_type=fmt.mime_type)

error_votable(message) is the DALI error document. `SUPPORTED` lists the formats with their
media types and short forms, for the TAPRegExt capabilities.
"""

from escape_vo.votable.errors import error_votable
from escape_vo.votable.formats import SUPPORTED, FormatInfo, OutputFormat, resolve_format
from escape_vo.votable.result import write_result

__all__ = [
    "SUPPORTED",
    "FormatInfo",
    "OutputFormat",
    "error_votable",
    "resolve_format",
    "write_result",
]
