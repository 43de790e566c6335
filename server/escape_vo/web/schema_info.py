"""What the schema browser says about a table or column, derived from schema/*.yaml only.

Indexes, keys, foreign keys (both directions), the view columns a base column feeds and the
units in words: everything comes from escape_vo.schema.model, nothing is described twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from escape_vo.schema.model import Column, ForeignKey, Schema, Table, load_schemas


@dataclass(frozen=True)
class PublishedSchema:
    name: str
    description: str
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class KeyUse:
    """One key or index a column takes part in, as a short tag and a longer explanation."""

    tag: str
    text: str
    css: str = "idx"


@dataclass(frozen=True)
class Link:
    """A foreign key seen from one table: the local columns, the other table and its columns."""

    columns: tuple[str, ...]
    other: str
    other_columns: tuple[str, ...]
    description: str = ""


@dataclass
class TableInfo:
    table: Table
    keys: dict[str, list[KeyUse]] = field(default_factory=dict)
    outgoing: list[Link] = field(default_factory=list)
    incoming: list[Link] = field(default_factory=list)
    derived: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # col -> (view, col)
    sources: dict[str, list[str]] = field(default_factory=dict)  # view col -> base columns
    base_tables: list[str] = field(default_factory=list)  # for a view: the tables it reads

    @property
    def has_utypes(self) -> bool:
        return any(c.utype for c in self.table.columns)

    def indexed(self, column: Column) -> bool:
        return column.indexed or any(k.css == "idx" for k in self.keys.get(column.name, []))


@lru_cache
def published_schemas() -> tuple[PublishedSchema, ...]:
    """The schemas with at least one published table, in TAP_SCHEMA order."""
    out = []
    for schema in load_schemas():
        tables = tuple(t for t in schema.tables if t.published)
        if tables:
            out.append(PublishedSchema(schema.name, schema.description, tables))
    return tuple(out)


def published_by_name() -> dict[str, Table]:
    return {t.qualified_name.lower(): t for s in published_schemas() for t in s.tables}


@lru_cache
def table_info(qualified_name: str) -> TableInfo:
    tables = published_by_name()
    table = tables[qualified_name.lower()]
    info = TableInfo(table=table)
    _keys(info)
    for fk in table.foreign_keys:
        info.outgoing.append(_link(fk, fk.target))
    for other in tables.values():
        for fk in other.foreign_keys:
            if fk.target.lower() == table.qualified_name.lower():
                info.incoming.append(
                    Link(fk.target_columns, other.qualified_name, fk.columns, fk.description)
                )
    _views(info, tables)
    return info


def _link(fk: ForeignKey, other: str) -> Link:
    return Link(fk.columns, other, fk.target_columns, fk.description)


def _keys(info: TableInfo) -> None:
    t = info.table

    def add(cols: tuple[str, ...], use: KeyUse) -> None:
        for c in cols:
            info.keys.setdefault(c, []).append(use)

    if t.primary_key:
        add(
            t.primary_key, KeyUse("primary key", f"primary key ({', '.join(t.primary_key)})", "key")
        )
    for cols in t.unique:
        add(cols, KeyUse("unique", f"unique ({', '.join(cols)})", "key"))
    for cols in t.indexes:
        what = "index" if len(cols) == 1 else f"index ({', '.join(cols)})"
        add(cols, KeyUse("indexed", what))
    for sky in t.sky_indexes:
        text = (
            f"positions ({sky.ra}, {sky.dec}) are searched through the HEALPix index "
            f"{sky.healpix}: CONTAINS/INTERSECTS/DISTANCE constraints use it"
        )
        add((sky.ra, sky.dec), KeyUse("sky index", text))
    for fk in t.foreign_keys:
        add(fk.columns, KeyUse("foreign key", f"refers to {fk.target}", "key"))


_FROM_TABLE = re.compile(r"\b([A-Za-z_]\w*\.[A-Za-z_]\w*)(?:\s+(?:AS\s+)?([A-Za-z_]\w*))?", re.I)


def _views(info: TableInfo, tables: dict[str, Table]) -> None:
    """Which view columns a base column feeds, and for a view which columns it reads."""
    for view in tables.values():
        if view.type != "view" or not view.view:
            continue
        aliases = {
            (m.group(2) or m.group(1)).lower(): m.group(1).lower()
            for m in _FROM_TABLE.finditer(view.view)
            if m.group(1).lower() in tables
        }
        for vcol in view.columns:
            used = _columns_in(vcol.expr or "", aliases, tables)
            if view is info.table:
                info.sources[vcol.name] = [f"{base}.{col}" for base, col in used]
            for base, col in used:
                if base == info.table.qualified_name.lower():
                    info.derived.setdefault(col, []).append((view.qualified_name, vcol.name))
        if view is info.table:
            info.base_tables = sorted({tables[b].qualified_name for b in aliases.values()})


def _columns_in(
    expr: str, aliases: dict[str, str], tables: dict[str, Table]
) -> list[tuple[str, str]]:
    found = []
    for alias, name in re.findall(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b", expr):
        base = aliases.get(alias.lower())
        if base and any(c.name == name for c in tables[base].columns):
            found.append((base, name))
    return list(dict.fromkeys(found))


@lru_cache(maxsize=512)
def unit_words(unit: str | None) -> str | None:
    """A VOUnit spelled out ('m' -> 'metre'), or None when astropy cannot read it."""
    if not unit:
        return None
    import warnings

    from astropy import units as u

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = u.Unit(unit, format="vounit")
        except ValueError:
            try:
                parsed = u.Unit(unit)
            except ValueError:
                return None
    if isinstance(parsed, u.UnrecognizedUnit):
        return None
    parts = []
    if parsed.scale != 1:
        parts.append(f"{parsed.scale:g}")
    for base, power in zip(parsed.bases, parsed.powers, strict=True):
        names = [n for n in base.long_names if len(n) > 2] or [base.to_string()]
        name = names[0]
        parts.append(name if power == 1 else f"{name}^{power:g}")
    words = " ".join(parts).replace("meter", "metre")
    return None if words == unit else words


def schema_of(name: str) -> PublishedSchema | None:
    for s in published_schemas():
        if s.name.lower() == name.lower():
            return s
    return None


def all_schema_objects() -> tuple[Schema, ...]:
    return load_schemas()
