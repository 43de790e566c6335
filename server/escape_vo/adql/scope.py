"""What a FROM clause makes visible: relations, their columns, scopes and query results.

The translator resolves every name against these structures, never against the database.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from escape_vo.schema.model import Column, Table

from . import ast
from . import types as ty
from .sqltext import quote_ident
from .types import Typed


@dataclass(eq=False, slots=True)
class RelColumn:
    name: str  # SQL name inside the relation
    proto: Typed  # type of a reference to it (sql filled in per reference)
    column: Column  # declared (or inherited) metadata


@dataclass(eq=False, slots=True)
class Relation:
    """A table, view, common table or derived table of a FROM clause."""

    label: str  # how messages name it
    qual: str  # SQL qualifier of its columns
    columns: list[RelColumn]
    table: Table | None = None
    alias: ast.Ident | None = None
    cte_name: str | None = None
    open: bool = False  # permissive catalog: a table with unknown columns
    # (ra, dec, healpix) column names: the HEALPix column indexing a position (see geometry.py)
    sky: tuple[tuple[str, str, str], ...] = ()
    # (ra, dec, cells) of a table whose positions carry their blocks of cells (an upload): one
    # column per order of geometry.cells.CELL_ORDERS
    cells: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # HEALPix columns of `sky` whose cells have a B-tree of their own (SkyIndex.cell_index)
    cell_indexed: tuple[str, ...] = ()

    def find(self, name: ast.Ident) -> list[RelColumn]:
        return [c for c in self.columns if name.matches(c.name)]

    def answers_to(self, qualifier: tuple[ast.Ident, ...], lenient: bool = False) -> bool:
        """Whether `qualifier.column` may name a column of this relation."""
        if self.alias is not None and not lenient:
            return len(qualifier) == 1 and qualifier[0].matches(self.alias.key)
        if self.cte_name is not None:
            return len(qualifier) == 1 and qualifier[0].matches(self.cte_name)
        if self.table is None:
            return False
        if len(qualifier) == 1:
            return qualifier[0].matches(self.table.name)
        if len(qualifier) == 2:
            return qualifier[0].matches(self.table.schema) and qualifier[1].matches(self.table.name)
        return False

    def typed(self, col: RelColumn) -> Typed:
        return col.proto.with_sql(f"{self.qual}.{quote_ident(col.name)}", ref=ty.Ref(self, col))


def inherited_sky(outs: list[Out]) -> tuple[tuple[str, str, str], ...]:
    """Sky indexes a derived table keeps: ra, dec and healpix all passed on from one relation."""
    names: dict[tuple[int, str], str] = {}
    sources: dict[int, Relation] = {}
    for out in outs:
        ref = out.typed.ref
        if ref is not None and ref.relation.sky:
            names.setdefault((id(ref.relation), ref.column.name), out.name)
            sources[id(ref.relation)] = ref.relation
    found = []
    for key, rel in sources.items():
        for triple in rel.sky:
            mapped = [names.get((key, n)) for n in triple]
            if all(mapped):
                found.append((mapped[0], mapped[1], mapped[2]))
    return tuple(found)


class Visible:
    """A column reachable without qualifier; `relation` None for a merged USING column.

    A table's columns are made visible with `of` and typed on first use: a query names few of
    a table's dozens of columns, and typing them all took 40 % of translating a simple query."""

    __slots__ = ("_column", "_typed", "name", "relation", "wildcard")

    def __init__(
        self, name: str, typed: Typed | None, relation: Relation | None, wildcard: bool = False
    ) -> None:
        self.name = name
        self.relation = relation
        self.wildcard = wildcard  # all columns of an open relation (permissive catalog)
        self._typed = typed
        self._column: RelColumn | None = None

    @classmethod
    def of(cls, rel: Relation, col: RelColumn) -> Visible:
        visible = cls(col.name, None, rel)
        visible._column = col
        return visible

    @property
    def typed(self) -> Typed:
        if self._typed is None:
            assert self.relation is not None and self._column is not None
            self._typed = self.relation.typed(self._column)
        return self._typed


@dataclass(slots=True)
class FromResult:
    sql: str
    relations: list[Relation]
    visible: list[Visible]


@dataclass(slots=True)
class Scope:
    parent: Scope | None
    relations: list[Relation] = field(default_factory=list)
    visible: list[Visible] = field(default_factory=list)


@dataclass(slots=True)
class Out:
    """One result column of a (sub)query."""

    name: str
    typed: Typed
    column: Column
    given: str | None = None  # the name as the query wrote it (alias or column), for ORDER BY
    given_quoted: bool = False


@dataclass(slots=True)
class Result:
    sql: str
    outs: list[Out]
    open: bool = False  # has columns not known (permissive catalog only)


@dataclass(slots=True)
class CommonResult:
    name: str
    result: Result


def chain(scope: Scope | None):
    while scope is not None:
        yield scope
        scope = scope.parent


def suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), {c.lower(): c for c in candidates}, n=1)
    if not close:
        return ""
    original = next(c for c in candidates if c.lower() == close[0])
    return f"; did you mean '{original}'?"
