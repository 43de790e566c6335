"""Typed view of the YAML table declarations.

The YAML is the single place where a column is described; these dataclasses only validate and
give it types, so a typo in a key or a datatype fails loudly at start-up instead of producing a
silently wrong TAP_SCHEMA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

VOTABLE_DATATYPES = {
    "boolean", "unsignedByte", "short", "int", "long", "float", "double", "char", "unicodeChar",
}  # fmt: skip

_SQL_TYPES = {
    "boolean": "boolean",
    "unsignedByte": "smallint",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "char": "text",
    "unicodeChar": "text",
}

_COLUMN_KEYS = {
    "name", "datatype", "arraysize", "xtype", "unit", "ucd", "utype", "description", "nullable",
    "indexed", "principal", "std", "sql", "expr",
}  # fmt: skip
_TABLE_KEYS = {
    "name", "type", "description", "utype", "published", "primary_key", "unique", "indexes",
    "foreign_keys", "columns", "view", "examples", "sky_indexes",
}  # fmt: skip


class SchemaError(ValueError):
    """A declaration in schema/*.yaml is inconsistent; the message names file, table, column."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    datatype: str
    description: str = ""
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    nullable: bool = True
    indexed: bool = False
    principal: bool = False
    std: bool = False
    sql: str | None = None  # explicit PostgreSQL type
    expr: str | None = None  # SQL expression, for columns of views

    @property
    def adql_name(self) -> str:
        """The name as ADQL must write it: reserved words (e.g. "size") are delimited."""
        from escape_vo.adql.keywords import is_reserved

        return f'"{self.name}"' if is_reserved(self.name) else self.name

    @property
    def sql_type(self) -> str:
        if self.sql:
            return self.sql
        base = _SQL_TYPES[self.datatype]
        if self.arraysize and self.datatype not in ("char", "unicodeChar"):
            return base + "[]"
        return base


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    target: str  # schema.table
    target_columns: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class SkyIndex:
    """A position (ICRS degrees) and the nested HEALPix order-29 column that indexes it.

    cell_index: the table also has a B-tree on the column's cell at each order of
    geometry.cells.CELL_ORDERS, which cross-matches with uploads use (a view declares it when
    its column is such a table's); cells: an uploaded table's bigint[9] columns of the cells
    around each position, one per order of CELL_ORDERS."""

    ra: str
    dec: str
    healpix: str
    cell_index: bool = False
    cells: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Example:
    title: str
    query: str


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    name: str
    description: str
    columns: tuple[Column, ...]
    type: str = "table"  # or "view"
    utype: str | None = None
    published: bool = True
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    view: str | None = None
    examples: tuple[Example, ...] = ()
    sky_indexes: tuple[SkyIndex, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified_name} has no column {name!r}")


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    description: str
    tables: tuple[Table, ...] = field(default_factory=tuple)
    utype: str | None = None
    source: str = ""

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"schema {self.name} has no table {name!r}")


def schema_dir() -> Path:
    """Where the YAML lives: $ESCAPE_VO_SCHEMA_DIR, the installed copy, or the checkout."""
    env = os.environ.get("ESCAPE_VO_SCHEMA_DIR")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parent.parent / "_schema"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "schema"


# Load order matters for foreign keys and views: TAP_SCHEMA first, then our tables, then views.
_ORDER = {"tap_schema": 0, "escape": 1, "archive": 2, "ivoa": 3}


@lru_cache
def load_schemas(directory: Path | None = None) -> tuple[Schema, ...]:
    directory = directory or schema_dir()
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise SchemaError(f"no schema/*.yaml files found in {directory}")
    schemas = [_parse_schema(f) for f in files]
    schemas.sort(key=lambda s: (_ORDER.get(s.name, 1), s.name))
    _check_references(schemas)
    return tuple(schemas)


def all_tables(schemas: tuple[Schema, ...] | None = None) -> list[Table]:
    return [t for s in (schemas or load_schemas()) for t in s.tables]


def published_tables(schemas: tuple[Schema, ...] | None = None) -> list[Table]:
    return [t for t in all_tables(schemas) if t.published]


def find_table(qualified_name: str, schemas: tuple[Schema, ...] | None = None) -> Table:
    for t in all_tables(schemas):
        if t.qualified_name.lower() == qualified_name.lower():
            return t
    raise KeyError(qualified_name)


def _parse_schema(path: Path) -> Schema:
    doc = yaml.safe_load(path.read_text())
    where = path.name
    try:
        name = doc["schema"]
        tables = tuple(_parse_table(name, t, where) for t in doc.get("tables", []))
    except KeyError as exc:
        raise SchemaError(f"{where}: missing key {exc}") from exc
    return Schema(
        name=name,
        description=" ".join(str(doc.get("description", "")).split()),
        tables=tables,
        utype=doc.get("utype"),
        source=where,
    )


def _parse_table(schema: str, doc: dict, where: str) -> Table:
    unknown = set(doc) - _TABLE_KEYS
    if unknown:
        raise SchemaError(f"{where}: table {doc.get('name')}: unknown keys {sorted(unknown)}")
    name = doc["name"]
    columns = tuple(_parse_column(c, f"{where}: {schema}.{name}") for c in doc["columns"])
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise SchemaError(f"{where}: {schema}.{name}: duplicate column names")
    ttype = doc.get("type", "table")
    if ttype not in ("table", "view"):
        raise SchemaError(f"{where}: {schema}.{name}: type must be table or view")
    if ttype == "view" and (not doc.get("view") or any(c.expr is None for c in columns)):
        raise SchemaError(f"{where}: view {schema}.{name} needs 'view' and an 'expr' per column")
    for group in [doc.get("primary_key", []), *doc.get("unique", []), *doc.get("indexes", [])]:
        for col in group:
            if col not in names:
                raise SchemaError(f"{where}: {schema}.{name}: key or index on unknown {col!r}")
    sky = tuple(SkyIndex(**si) for si in doc.get("sky_indexes", []))
    for si in sky:
        for col in (si.ra, si.dec, si.healpix):
            if col not in names:
                raise SchemaError(f"{where}: {schema}.{name}: sky index on unknown {col!r}")
    fks = tuple(
        ForeignKey(
            columns=tuple(fk["columns"]),
            target=fk["target"],
            target_columns=tuple(fk["target_columns"]),
            description=fk.get("description", ""),
        )
        for fk in doc.get("foreign_keys", [])
    )
    return Table(
        schema=schema,
        name=name,
        description=" ".join(str(doc.get("description", "")).split()),
        columns=columns,
        type=ttype,
        utype=doc.get("utype"),
        published=doc.get("published", True),
        primary_key=tuple(doc.get("primary_key", [])),
        unique=tuple(tuple(u) for u in doc.get("unique", [])),
        indexes=tuple(tuple(i) for i in doc.get("indexes", [])),
        foreign_keys=fks,
        view=doc.get("view"),
        examples=tuple(
            Example(title=e["title"], query=" ".join(e["query"].split()))
            for e in doc.get("examples", [])
        ),
        sky_indexes=sky,
    )


def _parse_column(doc: dict, where: str) -> Column:
    unknown = set(doc) - _COLUMN_KEYS
    if unknown:
        raise SchemaError(f"{where}.{doc.get('name')}: unknown keys {sorted(unknown)}")
    if doc.get("datatype") not in VOTABLE_DATATYPES:
        raise SchemaError(f"{where}.{doc.get('name')}: datatype {doc.get('datatype')!r} invalid")
    arraysize = doc.get("arraysize")
    return Column(
        name=doc["name"],
        datatype=doc["datatype"],
        description=" ".join(str(doc.get("description", "")).split()),
        arraysize=None if arraysize is None else str(arraysize),
        xtype=doc.get("xtype"),
        unit=doc.get("unit"),
        ucd=doc.get("ucd"),
        utype=doc.get("utype"),
        nullable=doc.get("nullable", True),
        indexed=doc.get("indexed", False),
        principal=doc.get("principal", False),
        std=doc.get("std", False),
        sql=doc.get("sql"),
        expr=None if doc.get("expr") is None else " ".join(str(doc["expr"]).split()),
    )


def _check_references(schemas: list[Schema]) -> None:
    tables = {t.qualified_name: t for s in schemas for t in s.tables}
    for t in tables.values():
        for fk in t.foreign_keys:
            target = tables.get(fk.target)
            if target is None:
                raise SchemaError(f"{t.qualified_name}: foreign key to unknown {fk.target}")
            for col in fk.target_columns:
                target.column(col)
