"""TAP request parameters: case-insensitive names, GET or POST, validated with helpful messages."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request

from escape_vo.tap.limits import LIMITS


class ParameterError(ValueError):
    """A request parameter is missing or malformed; the message says what is valid."""


SUPPORTED_LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")


@dataclass(frozen=True)
class QueryParameters:
    query: str
    lang: str
    maxrec: int
    response_format: str
    runid: str | None


async def collect(request: Request) -> dict[str, list[str]]:
    """All parameters of a GET or POST request, keyed by lower-case name."""
    items: list[tuple[str, str]] = list(QueryParams(request.url.query).multi_items())
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form: FormData = await request.form()
            items.extend((k, v) for k, v in form.multi_items() if isinstance(v, str))
    params: dict[str, list[str]] = {}
    for key, value in items:
        params.setdefault(key.lower(), []).append(value)
    return params


def single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name.lower())
    if not values:
        return None
    distinct = {v for v in values}
    if len(distinct) > 1:
        raise ParameterError(
            f"parameter {name.upper()} was given {len(values)} times with different values; "
            "give it once"
        )
    return values[0]


def query_parameters(params: dict[str, list[str]]) -> QueryParameters:
    request = single(params, "REQUEST")
    if request is not None and request.lower() != "doquery":
        raise ParameterError(
            f"REQUEST={request} is not supported; use REQUEST=doQuery (or leave it out)"
        )
    lang = single(params, "LANG")
    if lang is None:
        raise ParameterError("missing parameter LANG: use LANG=ADQL")
    if lang.upper() not in SUPPORTED_LANGS:
        supported = ", ".join(SUPPORTED_LANGS)
        raise ParameterError(f"LANG={lang} is not supported; use one of {supported}")
    query = single(params, "QUERY")
    if query is None or not query.strip():
        raise ParameterError("missing parameter QUERY: give the ADQL query to run")
    maxrec_text = single(params, "MAXREC")
    if maxrec_text is None:
        maxrec = LIMITS.maxrec_default
    else:
        try:
            maxrec = int(maxrec_text)
        except ValueError:
            raise ParameterError(f"MAXREC={maxrec_text} is not a whole number") from None
        if maxrec < 0:
            raise ParameterError("MAXREC must be 0 or more")
        maxrec = min(maxrec, LIMITS.maxrec_hard)
    fmt = single(params, "RESPONSEFORMAT") or single(params, "FORMAT") or "votable"
    return QueryParameters(
        query=query,
        lang=lang,
        maxrec=maxrec,
        response_format=fmt,
        runid=single(params, "RUNID"),
    )
