"""/tap/examples: the example queries declared in schema/, as DALI 1.1 XHTML+RDFa."""

from __future__ import annotations

import re
from html import escape

from fastapi import APIRouter
from fastapi.responses import Response

from escape_vo.schema.model import Example, published_tables

router = APIRouter(prefix="/tap")


def all_examples() -> list[tuple[str, Example]]:
    """(table name, example) for every example declared on a published table."""
    return [(t.qualified_name, ex) for t in published_tables() for ex in t.examples]


def _slug(title: str, seen: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "example"
    slug, n = base, 1
    while slug in seen:
        n += 1
        slug = f"{base}-{n}"
    seen.add(slug)
    return slug


def examples_document() -> str:
    seen: set[str] = set()
    parts = []
    for table, ex in all_examples():
        slug = _slug(ex.title, seen)
        parts.append(
            f'<div typeof="example" id="{slug}" resource="#{slug}">\n'
            f'  <h2 property="name">{escape(ex.title)}</h2>\n'
            f'  <p>Over <span property="table">{escape(table)}</span>.</p>\n'
            f'  <pre property="query">{escape(ex.query)}</pre>\n'
            "</div>"
        )
    body = "\n".join(parts)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">\n'
        "<head><title>escape-vo TAP examples</title></head>\n"
        '<body vocab="http://www.ivoa.net/rdf/examples#">\n'
        "<h1>Example queries for this TAP service</h1>\n"
        f"{body}\n</body>\n</html>\n"
    )


@router.get("/examples", summary="DALI examples: useful ADQL queries over our tables")
async def examples() -> Response:
    return Response(examples_document(), media_type="application/xhtml+xml")
