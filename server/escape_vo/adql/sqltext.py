"""Safe spelling of names and literals in the generated PostgreSQL text."""

from __future__ import annotations

import math

from .errors import AdqlError


def quote_ident(name: str) -> str:
    """A PostgreSQL delimited identifier: always quoted, so case and reserved words are exact."""
    if "\x00" in name:
        raise AdqlError("names cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """A string literal that means the same whatever standard_conforming_strings says."""
    if "\x00" in value:
        raise AdqlError("string literals cannot contain a NUL character")
    body = value.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def float_literal(value: float) -> str:
    """A double precision constant (PostgreSQL reads 1.5 as numeric, which we never want)."""
    if not math.isfinite(value):
        raise AdqlError(f"number out of range: {value}")
    return f"{value!r}::float8"


def int_literal(value: int) -> str:
    return str(value)
