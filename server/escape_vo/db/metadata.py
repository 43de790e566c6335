"""SQLAlchemy metadata and view DDL generated from schema/*.yaml.

Tables are migrated by Alembic (their revisions are generated from this metadata with
`alembic revision --autogenerate` and committed); views and SQL functions hold no data and are
regenerated from the declarations after every migration.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from escape_vo.geometry.cells import CELL_ORDERS, cell_shift
from escape_vo.schema.model import Schema, Table, load_schemas

_BASE_TYPES: dict[str, type[sa.types.TypeEngine] | sa.types.TypeEngine] = {
    "boolean": sa.Boolean,
    "smallint": sa.SmallInteger,
    "integer": sa.Integer,
    "bigint": sa.BigInteger,
    "real": sa.REAL,
    "double precision": pg.DOUBLE_PRECISION,
    "text": sa.Text,
    "timestamp": sa.DateTime(timezone=False),
    "timestamptz": sa.DateTime(timezone=True),
}

_IDENTITY = re.compile(r"\s+generated\s+by\s+default\s+as\s+identity\s*$", re.IGNORECASE)


def _sa_type(sql_type: str) -> tuple[sa.types.TypeEngine, bool]:
    """Map the declared PostgreSQL type to SQLAlchemy; second value: identity column."""
    identity = bool(_IDENTITY.search(sql_type))
    base = _IDENTITY.sub("", sql_type).strip().lower()
    is_array = base.endswith("[]")
    base = base.removesuffix("[]")
    if base not in _BASE_TYPES:
        raise ValueError(f"unsupported SQL type {sql_type!r} in schema declarations")
    t = _BASE_TYPES[base]
    t = t() if isinstance(t, type) else t
    return (pg.ARRAY(t) if is_array else t), identity


def build_metadata(schemas: tuple[Schema, ...] | None = None) -> sa.MetaData:
    md = sa.MetaData()
    for schema in schemas or load_schemas():
        for table in schema.tables:
            if table.type == "table":
                _add_table(md, table)
    return md


def _add_table(md: sa.MetaData, table: Table) -> sa.Table:
    cols = []
    for c in table.columns:
        sa_type, identity = _sa_type(c.sql_type)
        args: list = [sa.Identity()] if identity else []
        cols.append(
            sa.Column(
                c.name,
                sa_type,
                *args,
                nullable=c.nullable and c.name not in table.primary_key,
                comment=None,
            )
        )
    extras: list = []
    if table.primary_key:
        extras.append(sa.PrimaryKeyConstraint(*table.primary_key, name=f"{table.name}_pkey"))
    for group in table.unique:
        extras.append(sa.UniqueConstraint(*group, name=f"{table.name}_{'_'.join(group)}_key"))
    for fk in table.foreign_keys:
        extras.append(
            sa.ForeignKeyConstraint(
                list(fk.columns),
                [f"{fk.target}.{c}" for c in fk.target_columns],
                name=f"{table.name}_{'_'.join(fk.columns)}_fkey",
                ondelete="CASCADE",
            )
        )
    t = sa.Table(table.name, md, *cols, *extras, schema=table.schema)
    for group in table.indexes:
        sa.Index(f"{table.name}_{'_'.join(group)}_idx", *[t.c[c] for c in group])
    for si in table.sky_indexes:
        if si.cell_index:  # the cells of cross-matches with uploads (geometry/cells.py)
            for order in CELL_ORDERS:
                cell = t.c[si.healpix].op(">>")(cell_shift(order))
                sa.Index(cell_index_name(table.name, si.healpix, order), cell)
    return t


def cell_index_name(table: str, healpix: str, order: int) -> str:
    """The index of a table's cells at `order` (the finest one's was named before the others)."""
    suffix = "" if order == CELL_ORDERS[0] else str(order)
    return f"{table}_{healpix}_cell{suffix}_idx"


def view_ddl(table: Table) -> str:
    """CREATE VIEW for a declared view: each column is `expr AS name`."""
    select = ",\n  ".join(f'{c.expr} AS "{c.name}"' for c in table.columns)
    return f'CREATE VIEW "{table.schema}"."{table.name}" AS SELECT\n  {select}\nFROM {table.view}'


def declared_views(schemas: tuple[Schema, ...] | None = None) -> list[Table]:
    return [t for s in schemas or load_schemas() for t in s.tables if t.type == "view"]


OUR_SCHEMAS = {"archive", "embeddings", "escape", "ivoa", "tap_schema"}


def include_name(name, type_, parent_names) -> bool:
    """Alembic compares only our schemas (a shared database may hold others)."""
    if type_ == "schema":
        return name in OUR_SCHEMAS
    return True


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic manages tables; views are regenerated from the declarations after migrating."""
    return not (type_ == "table" and reflected and compare_to is None and name == "obscore")
