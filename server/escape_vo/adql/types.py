"""Types of translated expressions: enough to check operands and to describe result columns.

Every translated expression is a `Typed`: its SQL text plus a kind (what operations accept it)
and the VOTable description (datatype, arraysize, xtype, unit, UCD) its result column gets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from escape_vo.schema.model import Column

# kinds: num, str, time (timestamp), geom, bool, array, null (the NULL literal),
# any (a column of a table unknown to the permissive test catalog: accepted everywhere)
NUMERIC_RANK = {"unsignedByte": 0, "short": 1, "int": 2, "long": 3, "float": 4, "double": 5}
INTEGER_TYPES = {"unsignedByte", "short", "int", "long"}
SQL_OF = {
    "unsignedByte": "smallint",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
}
GEOMETRY_XTYPES = {"point": "2", "circle": "3", "polygon": "*"}
REGION_XTYPE = "adql:region"


@dataclass(frozen=True, slots=True)
class Geo:
    """What a geometry value is made of, for the HEALPix and declination-band rewrites."""

    kind: str  # point, circle, polygon, box, region, contains, intersects, distance
    args: tuple[Any, ...] = ()  # Typed values, or for a constant REGION its parsed numbers


@dataclass(frozen=True, slots=True)
class Ref:
    """A plain column reference: which relation and which of its columns."""

    relation: Any  # translate.Relation
    column: Any  # translate.RelColumn


@dataclass(frozen=True, slots=True)
class Typed:
    sql: str
    kind: str
    datatype: str = "double"
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    shape: str | None = None  # for kind geom: point, circle, polygon or region (unknown)
    const: float | None = None  # the value of a constant numeric expression
    literal: bool = False  # a literal as written (string literals coerce to numbers, times)
    column: Column | None = None  # declared metadata when this is a plain column reference
    ref: Ref | None = None
    geo: Geo | None = None
    name_hint: str | None = None  # for a generated result name (function name, column name)
    text: str | None = None  # the value of a string literal

    def with_sql(self, sql: str, **changes) -> Typed:
        return replace(self, sql=sql, **changes)

    @property
    def is_integer(self) -> bool:
        return self.kind == "num" and self.datatype in INTEGER_TYPES

    @property
    def is_region_column(self) -> bool:
        return self.kind == "str" and (self.xtype or "").lower() == REGION_XTYPE

    def describe(self) -> str:
        """How error messages name the type."""
        if self.kind == "geom":
            return self.shape if self.shape and self.shape != "region" else "a geometry"
        return {
            "num": "a number",
            "str": "a string",
            "time": "a timestamp",
            "bool": "a condition",
            "array": "an array",
            "null": "NULL",
            "any": "a value",
        }[self.kind]


def kind_of(col: Column) -> tuple[str, str | None]:
    """(kind, geometry shape) of a declared column."""
    xtype = (col.xtype or "").lower()
    if xtype in GEOMETRY_XTYPES:
        return "geom", xtype
    if xtype == "timestamp" or (col.sql or "").lower().startswith("timestamp"):
        return "time", None
    if col.datatype in ("char", "unicodeChar"):
        return "str", None
    if col.datatype == "boolean":
        return "bool", None
    if col.arraysize:
        return "array", None
    return "num", None


def from_column(sql: str, col: Column) -> Typed:
    kind, shape = kind_of(col)
    return Typed(
        sql=sql,
        kind=kind,
        datatype=col.datatype,
        arraysize=col.arraysize,
        xtype=col.xtype,
        unit=col.unit,
        ucd=col.ucd,
        shape=shape,
        column=col,
        name_hint=col.name,
    )


def number(sql: str, datatype: str = "double", **kw) -> Typed:
    return Typed(sql=sql, kind="num", datatype=datatype, **kw)


def string(sql: str, arraysize: str = "*", **kw) -> Typed:
    return Typed(sql=sql, kind="str", datatype="char", arraysize=arraysize, **kw)


def boolean(sql: str) -> Typed:
    return Typed(sql=sql, kind="bool", datatype="boolean")


def geometry(sql: str, shape: str, geo: Geo | None = None, **kw) -> Typed:
    if shape in GEOMETRY_XTYPES:
        return Typed(
            sql=sql,
            kind="geom",
            datatype="double",
            arraysize=GEOMETRY_XTYPES[shape],
            xtype=shape,
            shape=shape,
            geo=geo,
            **kw,
        )
    return Typed(
        sql=sql, kind="geom", datatype="double", arraysize="*", shape="region", geo=geo, **kw
    )


def timestamp(sql: str, **kw) -> Typed:
    return Typed(sql=sql, kind="time", datatype="char", arraysize="*", xtype="timestamp", **kw)


def wider_numeric(a: str, b: str) -> str:
    return a if NUMERIC_RANK.get(a, 5) >= NUMERIC_RANK.get(b, 5) else b


def result_column(t: Typed, name: str) -> Column:
    """The result column an expression gives: declared metadata for plain column references."""
    if t.column is not None and t.ref is not None:
        return replace(t.column, name=name)
    datatype = t.datatype
    arraysize = t.arraysize
    if t.kind == "null":
        datatype, arraysize = "char", "*"
    sql = "timestamp" if t.kind == "time" else None
    return Column(
        name=name,
        datatype=datatype,
        arraysize=arraysize,
        xtype=t.xtype,
        unit=t.unit,
        ucd=t.ucd,
        sql=sql,
    )
