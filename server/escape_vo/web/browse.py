"""/browse: the schema browser, server-rendered from schema/*.yaml (the TAP_SCHEMA source).

Every schema, table and column has a permanent URL (/browse/archive, /browse/archive.spectra,
/browse/archive.spectra#wave_min, /browse/archive.spectra/wave_min); /browse/search looks through
names, descriptions, units, UCDs and utypes. Row counts come from the database, cached briefly.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from escape_vo.schema.model import Column, Table
from escape_vo.tap.examples import all_examples
from escape_vo.web.adql_text import default_query, pretty_adql, query_link
from escape_vo.web.rendering import render
from escape_vo.web.schema_info import (
    published_by_name,
    published_schemas,
    schema_of,
    table_info,
    unit_words,
)

router = APIRouter()

# Exact counts below this many rows (estimated by PostgreSQL), the planner's estimate above.
EXACT_COUNT_BELOW = 200_000
COUNT_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class RowCount:
    rows: int | None
    exact: bool

    def __str__(self) -> str:
        if self.rows is None:
            return "unknown"
        return f"{self.rows:,}" if self.exact else f"≈ {self.rows:,}"


async def row_counts(request: Request) -> dict[str, RowCount]:
    """Rows per published table: count(*) for small tables, pg_class.reltuples (kept by
    autovacuum's ANALYZE) for big ones and for views over one big table, the
    tap_schema.tables.nrows hint when neither answers; cached for a few seconds."""
    state = request.app.state
    cached = getattr(state, "browse_row_counts", None)
    if cached and time.monotonic() - cached[0] < COUNT_CACHE_SECONDS:
        return cached[1]
    names = list(published_by_name().values())
    counts: dict[str, RowCount] = {}
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT n.nspname || '.' || c.relname, c.reltuples::bigint "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p')"
        )
        estimates = {name: n for name, n in await cur.fetchall()}
        cur = await conn.execute("SELECT table_name, nrows FROM tap_schema.tables")
        hints = {name.lower(): n for name, n in await cur.fetchall()}
        await conn.execute("SET statement_timeout = '2s'")
        for table in names:
            key = table.qualified_name
            estimate = estimates.get(key)
            if estimate is not None and estimate >= EXACT_COUNT_BELOW:
                counts[key] = RowCount(estimate, exact=False)
                continue
            if table.type == "view" and _big_base(table, estimates):
                bases = table_info(key).base_tables
                clause = f" {(table.view or '').lower()} "
                plain = len(bases) == 1 and " join " not in clause and " where " not in clause
                # a view over one table, unfiltered, has as many rows as that table
                one = estimates.get(bases[0]) if plain else None
                counts[key] = RowCount(one if one is not None else hints.get(key.lower()), False)
                continue
            try:
                row = await (
                    await conn.execute(f'SELECT count(*) FROM "{table.schema}"."{table.name}"')
                ).fetchone()
                counts[key] = RowCount(row[0], exact=True)
            except Exception:  # timeout or a view that cannot run: fall back to the hint
                await conn.rollback()
                counts[key] = RowCount(hints.get(key.lower()), exact=False)
        await conn.execute("RESET statement_timeout")
    state.browse_row_counts = (time.monotonic(), counts)
    return counts


def _big_base(view: Table, estimates: dict[str, int]) -> bool:
    info = table_info(view.qualified_name)
    return any((estimates.get(b) or 0) >= EXACT_COUNT_BELOW for b in info.base_tables)


def _type_text(col: Column) -> str:
    text = col.datatype
    if col.arraysize:
        text += f"[{col.arraysize}]"
    if col.xtype:
        text += f" ({col.xtype})"
    return text


def highlight(text: str, terms: list[str]) -> Markup:
    """text with each search term marked, HTML-escaped."""
    out = str(escape(text))
    for term in sorted(set(terms), key=len, reverse=True):
        safe = str(escape(term))
        if not safe:
            continue
        lowered, pieces, i = out.lower(), [], 0
        while (j := lowered.find(safe.lower(), i)) >= 0:
            pieces.append(out[i:j] + "<mark>" + out[j : j + len(safe)] + "</mark>")
            i = j + len(safe)
        out = "".join(pieces) + out[i:]
    return Markup(out)


def _common(request: Request, section: str = "browse", q: str = "") -> dict:
    return {"section": section, "q": q, "type_text": _type_text, "unit_words": unit_words}


@router.get(
    "/browse", response_class=HTMLResponse, summary="Schema browser: every table and column"
)
async def browse_index(request: Request) -> Response:
    counts = await row_counts(request)
    return render(
        request,
        "browse_index.html",
        {**_common(request), "schemas": published_schemas(), "counts": counts, "only": None},
    )


@dataclass(frozen=True)
class Hit:
    kind: str  # schema, table or column
    name: str
    url: str
    description: str
    detail: str
    score: int


def search(q: str) -> list[Hit]:
    """Schemas, tables and columns whose name, description, unit, UCD or utype contain every
    word of q; exact and prefix name matches first."""
    terms = q.lower().split()
    if not terms:
        return []
    hits: list[Hit] = []

    def score(name: str) -> int:
        name = name.lower()
        whole = " ".join(terms)
        if name == whole:
            return 0
        if name.startswith(whole):
            return 1
        return 2 if any(t in name for t in terms) else 3

    def matches(*fields: str | None) -> bool:
        hay = " ".join(f for f in fields if f).lower()
        return all(t in hay for t in terms)

    for schema in published_schemas():
        if matches(schema.name, schema.description):
            hits.append(
                Hit("schema", schema.name, f"/browse/{schema.name}", schema.description, "",
                    score(schema.name))
            )  # fmt: skip
        for t in schema.tables:
            if matches(t.qualified_name, t.description, t.utype):
                hits.append(
                    Hit("table", t.qualified_name, f"/browse/{t.qualified_name}", t.description,
                        t.type, score(t.name))
                )  # fmt: skip
            for c in t.columns:
                if matches(c.name, c.description, c.unit, c.ucd, c.utype):
                    detail = " · ".join(x for x in (_type_text(c), c.unit, c.ucd) if x)
                    hits.append(
                        Hit("column", f"{t.qualified_name}.{c.name}",
                            f"/browse/{t.qualified_name}/{c.name}", c.description, detail,
                            score(c.name))
                    )  # fmt: skip
    order = {"schema": 0, "table": 1, "column": 2}
    hits.sort(key=lambda h: (h.score, order[h.kind], h.name))
    return hits


@router.get(
    "/browse/search",
    response_class=HTMLResponse,
    summary="Search table and column names, descriptions, units and UCDs (q=words)",
)
async def browse_search(request: Request, q: str = "") -> Response:
    hits = search(q)
    return render(
        request,
        "browse_search.html",
        {**_common(request, q=q), "hits": hits, "terms": q.split(), "highlight": highlight},
    )


def _not_found(request: Request, what: str) -> Response:
    names = [s.name for s in published_schemas()] + list(published_by_name())
    close = difflib.get_close_matches(what.lower(), names, n=5, cutoff=0.5)
    return render(
        request,
        "browse_missing.html",
        {**_common(request), "what": what, "close": close, "hits": search(what)[:10]},
        status_code=404,
    )


@router.get("/browse/{name}", response_class=HTMLResponse, include_in_schema=False)
async def browse_name(request: Request, name: str) -> Response:
    if "." not in name:
        schema = schema_of(name)
        if schema is None:
            return _not_found(request, name)
        if schema.name != name:
            return RedirectResponse(f"/browse/{schema.name}", status_code=301)
        counts = await row_counts(request)
        return render(
            request,
            "browse_index.html",
            {**_common(request), "schemas": [schema], "counts": counts, "only": schema},
        )
    table = published_by_name().get(name.lower())
    if table is None:
        return _not_found(request, name)
    if table.qualified_name != name:
        return RedirectResponse(f"/browse/{table.qualified_name}", status_code=301)
    counts = await row_counts(request)
    examples = [
        (ex.title, pretty_adql(ex.query))
        for tname, ex in all_examples()
        if tname == table.qualified_name
    ]
    return render(
        request,
        "browse_table.html",
        {
            **_common(request),
            "t": table,
            "info": table_info(table.qualified_name),
            "count": counts.get(table.qualified_name, RowCount(None, False)),
            "examples": examples,
            "first_query": default_query(table),
            "query_link": query_link,
        },
    )


@router.get("/browse/{name}/{column}", response_class=HTMLResponse, include_in_schema=False)
async def browse_column(request: Request, name: str, column: str) -> Response:
    table = published_by_name().get(name.lower())
    if table is None:
        return _not_found(request, name)
    col = next((c for c in table.columns if c.name.lower() == column.lower()), None)
    if col is None:
        return _not_found(request, f"{name}.{column}")
    if table.qualified_name != name or col.name != column:
        return RedirectResponse(f"/browse/{table.qualified_name}/{col.name}", status_code=301)
    info = table_info(table.qualified_name)
    sample = pretty_adql(
        f"SELECT TOP 100 {col.adql_name} FROM {table.qualified_name} "
        f"WHERE {col.adql_name} IS NOT NULL"
    )
    return render(
        request,
        "browse_column.html",
        {
            **_common(request),
            "t": table,
            "c": col,
            "info": info,
            "sample_link": query_link(sample),
        },
    )
