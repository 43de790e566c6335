"""The tables a query may name: published tables (and uploads), found case-insensitively.

Nothing outside the catalog is reachable from ADQL, so this is also the access boundary:
an unpublished table (escape.settings) or a PostgreSQL system table is simply "unknown".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from escape_vo.schema.model import Table

from . import ast
from . import types as ty
from .errors import error_at
from .scope import RelColumn
from .sqltext import quote_ident


class Catalog:
    """Tables by qualified name, with the SQL name each is queried under.

    ``sql_names`` maps a qualified ADQL name (e.g. ``tap_upload.stars``) to the
    ``(schema, table)`` that holds it in PostgreSQL, for uploads kept in a temporary schema.

    ``permissive`` is for the conformance tests only: unknown tables and columns are then
    accepted (as tables of any columns, typed as double), so that queries over the made-up
    tables of the IVOA test corpus still exercise the translator. The service never sets it.
    """

    def __init__(
        self,
        tables: Iterable[Table],
        *,
        sql_names: Mapping[str, tuple[str, str]] | None = None,
        permissive: bool = False,
    ) -> None:
        self.tables: tuple[Table, ...] = tuple(tables)
        self.permissive = permissive
        self._sql_names = {k.lower(): v for k, v in (sql_names or {}).items()}
        self._by_name: dict[str, list[Table]] = {}
        self._by_qualified: dict[str, list[Table]] = {}
        self._columns: dict[int, list[RelColumn]] = {}  # by id() of a table in self.tables
        for t in self.tables:
            self._by_name.setdefault(t.name.lower(), []).append(t)
            self._by_qualified.setdefault(t.qualified_name.lower(), []).append(t)

    @classmethod
    def from_tables(
        cls,
        tables: Iterable[Table],
        *,
        sql_names: Mapping[str, tuple[str, str]] | None = None,
        permissive: bool = False,
    ) -> Catalog:
        return cls(tables, sql_names=sql_names, permissive=permissive)

    def with_tables(
        self, extra: Iterable[Table], sql_names: Mapping[str, tuple[str, str]] | None = None
    ) -> Catalog:
        """This catalog plus more tables (the uploads of one TAP request)."""
        names = dict(self._sql_names)
        names.update({k.lower(): v for k, v in (sql_names or {}).items()})
        return Catalog([*self.tables, *extra], sql_names=names, permissive=self.permissive)

    def columns(self, table: Table) -> list[RelColumn]:
        """The typed columns of one of this catalog's tables, built on its first query only
        (the service's catalog lives as long as the app; typing 34 columns was a fifth of
        translating a simple query). Shared by every query: never modified."""
        columns = self._columns.get(id(table))
        if columns is None:
            columns = [RelColumn(c.name, ty.from_column("", c), c) for c in table.columns]
            self._columns[id(table)] = columns
        return columns

    def sql_name(self, table: Table) -> str:
        schema, name = self._sql_names.get(table.qualified_name.lower(), (table.schema, table.name))
        return f"{quote_ident(schema)}.{quote_ident(name)}"

    def resolve(self, parts: Sequence[ast.Ident]) -> Table | None:
        """The table a (schema.)table name means; None only in permissive mode if unknown."""
        if len(parts) == 1:
            found = [
                t for t in self._by_name.get(parts[0].key.lower(), []) if parts[0].matches(t.name)
            ]
        elif len(parts) == 2:
            key = f"{parts[0].key}.{parts[1].key}".lower()
            found = [
                t
                for t in self._by_qualified.get(key, [])
                if parts[0].matches(t.schema) and parts[1].matches(t.name)
            ]
        else:
            found = []
        if len(found) == 1:
            return found[0]
        text = ast.dotted_text(tuple(parts))
        if len(found) > 1:
            names = ", ".join(sorted(t.qualified_name for t in found))
            raise error_at(f"table name '{text}' is ambiguous: it may be {names}", parts[0].pos)
        if self.permissive:
            return None
        raise error_at(f"unknown table '{text}'{self._suggest(text)}", parts[0].pos)

    def _suggest(self, text: str) -> str:
        candidates = {t.qualified_name.lower(): t.qualified_name for t in self.tables}
        candidates.update({t.name.lower(): t.qualified_name for t in self.tables})
        match = difflib.get_close_matches(text.lower(), list(candidates), n=1, cutoff=0.6)
        if match:
            return f"; did you mean '{candidates[match[0]]}'?"
        return ""
