"""/query: an ADQL editor that runs queries through the public TAP endpoints from the browser.

The page itself only carries what it needs to start: the query to edit (?query=...), the
examples declared in schema/, the output formats and limits of this service, and the ADQL
words to highlight. Everything else (table and column names for completion from /tap/tables,
results from /tap/sync or /tap/async, previews from /datalink/links) is fetched by the browser
from the same endpoints every VO client uses, so the page is also a live demonstration of them.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from escape_vo.adql.functions import ADQL_FUNCTIONS
from escape_vo.adql.udf import UDFS
from escape_vo.schema.model import find_table
from escape_vo.tap.examples import all_examples
from escape_vo.tap.limits import LIMITS
from escape_vo.votable import SUPPORTED
from escape_vo.web.adql_text import default_query, pretty_adql
from escape_vo.web.rendering import render

router = APIRouter()

PAGE_SIZE = 50  # rows per page of the result table
DEFAULT_MAXREC = 1000  # rows fetched for display; downloads take the MAXREC field's value

# Words highlighted as keywords; functions and types come from the translator's own lists.
_KEYWORDS = (
    "select top distinct all from where group by having order asc desc as and or not in is "
    "null like ilike between exists join inner left right full outer natural on using union "
    "except intersect with offset case when then else end cast true false"
)
_TYPES = "bigint char double precision integer real smallint timestamp varchar point circle polygon"
_AGGREGATES = ("avg", "count", "max", "min", "sum")


def output_formats() -> list[dict[str, str]]:
    """The download choices: every format the TAP service writes (escape_vo.votable.SUPPORTED)."""
    out = []
    for info in SUPPORTED:
        fmt = info.format
        label = f"VOTable {fmt.serialization}" if fmt.serialization else fmt.name.upper()
        if fmt.name == "parquet":
            label = "VOParquet"
        out.append({"label": label, "value": info.aliases[0], "ext": fmt.extension,
                    "mime": info.mime_type})  # fmt: skip
    return out


def page_config(initial: str) -> dict:
    examples = [
        {"title": ex.title, "table": table, "query": pretty_adql(ex.query)}
        for table, ex in all_examples()
    ]
    functions = sorted({f.lower() for f in ADQL_FUNCTIONS} | set(UDFS) | set(_AGGREGATES))
    return {
        "initial": initial,
        "examples": examples,
        "formats": output_formats(),
        "pageSize": PAGE_SIZE,
        "maxrec": DEFAULT_MAXREC,
        "maxrecHard": LIMITS.maxrec_hard,
        "syncTimeout": LIMITS.sync_timeout,
        "keywords": _KEYWORDS,
        "functions": " ".join(functions),
        "types": _TYPES,
        "udfs": [
            {"name": u.name, "form": u.form, "description": u.description} for u in UDFS.values()
        ],
    }


@router.get(
    "/query",
    response_class=HTMLResponse,
    summary="Query page: write ADQL with completion, run it, page and download the result",
)
async def query_page(request: Request, query: str | None = None) -> Response:
    initial = query if query is not None else default_query(find_table("archive.spectra"), 20)
    config = page_config(initial)
    # JSON inside <script>: "</" must not end the element early.
    blob = Markup(json.dumps(config).replace("</", "<\\/"))
    return render(
        request,
        "query.html",
        {"section": "query", "q": "", "config_json": blob, "config": config},
    )
