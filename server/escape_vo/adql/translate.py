"""ADQL query -> PostgreSQL text and result metadata, against a catalog of tables.

A pure function: no database, no I/O. Every name is resolved against the catalog and written
quoted; every literal is written escaped; only allowlisted functions are translated. `SELECT *`
is expanded here, so the result metadata is exact and the SQL names every column.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace

from escape_vo.schema.model import Column

from . import ast
from . import types as ty
from .catalog import Catalog
from .errors import AdqlError, error_at
from .expressions import ExpressionTranslator
from .parser import parse
from .scope import (
    CommonResult,
    FromResult,
    Out,
    Relation,
    RelColumn,
    Result,
    Scope,
    Visible,
    chain,
    inherited_sky,
    suggest,
)
from .sqltext import float_literal, quote_ident
from .types import Typed
from .udf import UDFS


@dataclass(frozen=True, slots=True)
class Translation:
    """What the executor needs: the SQL, the result columns in order and the tables used.

    ``setup`` holds statements to run first in the same session: `SELECT setseed(...)` for
    RAND(seed), the index scan's settings for ivo_embedding_distance (Udf.setup); it is empty
    for nearly every query.
    """

    sql: str
    columns: list[Column]
    tables: list[str]
    setup: tuple[str, ...] = ()


def translate(adql: str, catalog: Catalog, max_rows: int | None = None) -> Translation:
    """Translate one ADQL 2.1 query; `max_rows` (MAXREC + 1) caps the rows it returns."""
    try:
        return _Translator(catalog).statement(parse(adql), max_rows)
    except RecursionError:
        raise AdqlError("the query is nested too deeply") from None


# ---- the translator ----------------------------------------------------------------------


class _Translator(ExpressionTranslator):
    """Queries, FROM clauses and names; expressions come from ExpressionTranslator."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.permissive = catalog.permissive
        self.tables: set[str] = set()
        self.ctes: dict[str, CommonResult] = {}
        self.seed: float | None = None
        self.setups: list[Callable[[int | None], str]] = []  # Udf.setup of the functions used
        self.most_rows: int | None = None  # the largest LIMIT + OFFSET of any SELECT

    def statement(self, stmt: ast.Statement, max_rows: int | None) -> Translation:
        parts = []
        for cte in stmt.ctes:
            result = self.query(cte.query, None, None)
            key = cte.name.key
            self.ctes[key] = CommonResult(key, result)
            parts.append(f"{quote_ident(key)} AS ({result.sql})")
        main = self.query(stmt.query, None, max_rows)
        sql = main.sql
        if parts:
            sql = "WITH " + ", ".join(parts) + " " + sql
        setup = tuple(make(self.most_rows) for make in self.setups)
        if self.seed is not None:
            setup += (f"SELECT setseed({float_literal(self.seed)})",)
        return Translation(
            sql=sql,
            columns=[o.column for o in main.outs],
            tables=sorted(self.tables),
            setup=setup,
        )

    def set_seed(self, seed: float, pos) -> None:
        value = (int(seed) % 2**31) / 2**31 if seed == int(seed) else seed
        if not -1 <= value <= 1:
            raise error_at("RAND(seed): the seed must be an integer", pos)
        if self.seed is not None and self.seed != value:
            raise error_at("RAND(seed): a query can use only one seed", pos)
        self.seed = value

    def needs_setup(self, make: Callable[[int | None], str]) -> None:
        if make not in self.setups:
            self.setups.append(make)

    # ---- queries ----

    def query(self, node: ast.QueryNode, outer: Scope | None, limit: int | None) -> Result:
        if isinstance(node, ast.Select):
            return self.select(node, outer, (), None, limit)
        if isinstance(node, ast.SetOp):
            result = self.setop(node, outer)
            if limit is not None:
                result.sql += f" LIMIT {limit}"
            return result
        if isinstance(node.body, ast.Select):
            return self.select(node.body, outer, node.order_by, node.offset, limit)
        inner = self.query(node.body, outer, None)
        sql = inner.sql if isinstance(node.body, ast.SetOp) else f"({inner.sql})"
        if node.order_by:
            sql += " ORDER BY " + ", ".join(self._order_outputs(node.order_by, inner.outs))
        if limit is not None:
            sql += f" LIMIT {limit}"
        if node.offset is not None:
            sql += f" OFFSET {node.offset}"
        return Result(sql, inner.outs, inner.open)

    def setop(self, node: ast.SetOp, outer: Scope | None) -> Result:
        left = self.query(node.left, outer, None)
        right = self.query(node.right, outer, None)
        if not (left.open or right.open):
            if len(left.outs) != len(right.outs):
                raise error_at(
                    f"the queries of {node.op} have different numbers of columns "
                    f"({len(left.outs)} and {len(right.outs)})",
                    node.pos,
                )
            outs = []
            for i, (a, b) in enumerate(zip(left.outs, right.outs, strict=True), 1):
                merged = self.common_type([a.typed, b.typed], f"{node.op} (column {i})", node.pos)
                column = a.column
                if merged.datatype != a.typed.datatype and merged.kind == "num":
                    column = replace(column, datatype=merged.datatype)
                outs.append(Out(a.name, merged, column, a.given, a.given_quoted))
        else:
            outs = left.outs
        all_ = " ALL" if node.all else ""
        sql = f"({left.sql}) {node.op}{all_} ({right.sql})"
        return Result(sql, outs, left.open or right.open)

    def _order_outputs(self, items: tuple[ast.OrderItem, ...], outs: list[Out]) -> list[str]:
        """ORDER BY on a set operation: result column names or positions only."""
        terms = []
        for item in items:
            position = self._output_position(item.expr, outs)
            if position is None:
                raise error_at(
                    "ORDER BY after UNION, INTERSECT or EXCEPT must name a result column or "
                    "give its position",
                    item.pos,
                )
            terms.append(f"{position}{' DESC' if item.desc else ''}")
        return terms

    def _output_position(
        self, expr: ast.Expr, outs: list[Out], is_open: bool = False
    ) -> int | None:
        if isinstance(expr, ast.Literal) and expr.kind == "int":
            if not 1 <= expr.value <= len(outs) and not (is_open and expr.value >= 1):
                raise error_at(
                    f"position {expr.value} is not a result column (1 to {len(outs)})", expr.pos
                )
            return expr.value
        if isinstance(expr, ast.ColumnRef) and len(expr.parts) == 1:
            name = expr.parts[0]
            hits = [i for i, o in enumerate(outs, 1) if _out_matches(o, name)]
            if len(hits) > 1:
                raise error_at(f"'{name.name}' names more than one result column", name.pos)
            if hits:
                return hits[0]
        return None

    def select(
        self,
        node: ast.Select,
        outer: Scope | None,
        order_by: tuple[ast.OrderItem, ...],
        offset: int | None,
        limit: int | None,
    ) -> Result:
        scope = Scope(outer)
        from_sql = []
        for item in node.from_:
            fr = self.from_item(item, outer)
            scope.relations += fr.relations
            scope.visible += fr.visible
            from_sql.append(fr.sql)
        self._check_unique_names(scope.relations)

        outs: list[Out] = []
        entries: list[Out | str] = []  # outputs, and wildcards of open relations (permissive)
        for item in node.items:
            if isinstance(item, ast.SelectStar):
                for v in self._star(item, scope):
                    if v.wildcard:
                        entries.append(v.typed.sql)
                        continue
                    out = Out(v.name, v.typed, ty.result_column(v.typed, v.name), v.name)
                    outs.append(out)
                    entries.append(out)
                continue
            t = self.value(item.expr, scope, "a result column")
            if item.alias is not None:
                given, quoted = item.alias.name, item.alias.quoted
            else:
                plain_column = isinstance(item.expr, ast.ColumnRef)
                given, quoted = (t.name_hint if plain_column else None), False
            name = given or t.name_hint or f"col{len(outs) + 1}"
            out = Out(name, t, ty.result_column(t, name), given, quoted)
            outs.append(out)
            entries.append(out)
        _unique_names(outs)
        select_list = []
        for entry in entries:
            if isinstance(entry, str):
                select_list.append(entry)
            else:
                entry.column = replace(entry.column, name=entry.name)
                select_list.append(f"{entry.typed.sql} AS {quote_ident(entry.name)}")
        is_open = any(isinstance(e, str) for e in entries)

        sql = "SELECT " + ("DISTINCT " if node.distinct else "") + ", ".join(select_list)
        sql += " FROM " + ", ".join(from_sql)
        if node.where is not None:
            _no_aggregate(node.where, "WHERE (use HAVING for conditions on aggregates)")
            sql += " WHERE " + self.condition(node.where, scope, "WHERE").sql
        if node.group_by:
            for e in node.group_by:
                _no_aggregate(e, "GROUP BY")
                _no_constant(e, "GROUP BY")
            terms = [self._group_term(e, scope, outs, is_open) for e in node.group_by]
            sql += " GROUP BY " + ", ".join(terms)
        if node.having is not None:
            sql += " HAVING " + self.condition(node.having, scope, "HAVING").sql
        if order_by:
            terms = []
            for item in order_by:
                _no_constant(item.expr, "ORDER BY")
                position = self._output_position(item.expr, outs, is_open)
                term = str(position) if position else self.value(item.expr, scope, "ORDER BY").sql
                terms.append(term + (" DESC" if item.desc else ""))
            sql += " ORDER BY " + ", ".join(terms)
        caps = [n for n in (node.top, limit) if n is not None]
        if caps:
            sql += f" LIMIT {min(caps)}"
            rows = min(caps) + (offset or 0)
            self.most_rows = max(rows, self.most_rows or 0)
        if offset is not None:
            sql += f" OFFSET {offset}"
        return Result(sql, outs, is_open)

    def _group_term(self, expr: ast.Expr, scope: Scope, outs: list[Out], is_open: bool) -> str:
        if isinstance(expr, ast.ColumnRef) and len(expr.parts) == 1:
            found = self._lookup_unqualified(expr.parts[0], scope)
            if found is not None:
                return found.sql
            position = self._output_position(expr, outs)
            if position is not None:
                return str(position)
        if isinstance(expr, ast.Literal) and expr.kind == "int":
            return str(self._output_position(expr, outs, is_open))
        return self.value(expr, scope, "GROUP BY").sql

    def _check_unique_names(self, relations: list[Relation]) -> None:
        if self.permissive:
            return
        seen: dict[str, Relation] = {}
        for rel in relations:
            if rel.alias is not None:
                key = rel.alias.key
            elif rel.table is not None:
                key = rel.table.name.lower()
            else:
                key = (rel.cte_name or rel.label).lower()
            if key in seen:
                raise error_at(
                    f"'{rel.label}' appears more than once in FROM; give each occurrence its own "
                    "alias (FROM t AS a, t AS b)",
                    rel.alias.pos if rel.alias else None,
                )
            seen[key] = rel

    def _star(self, item: ast.SelectStar, scope: Scope) -> list[Visible]:
        if item.qualifier is None:
            return scope.visible
        rel = self._find_relation(item.qualifier, scope, item.pos)
        if rel is None:  # permissive: an unknown qualifier
            text = ".".join(quote_ident(p.key) for p in item.qualifier)
            return [Visible("*", Typed(f"{text}.*", "any"), None, wildcard=True)]
        return self._relation_visible(rel)

    def _relation_visible(self, rel: Relation) -> list[Visible]:
        out = [Visible.of(rel, c) for c in rel.columns]
        if rel.open:
            out.append(Visible("*", Typed(f"{rel.qual}.*", "any"), rel, wildcard=True))
        return out

    # ---- FROM ----

    def from_item(self, item: ast.FromItem, outer: Scope | None) -> FromResult:
        if isinstance(item, ast.TableName):
            return self._table(item)
        if isinstance(item, ast.Derived):
            sub = self.query(item.query, outer, None)
            qual = quote_ident(item.alias.key)
            rel = Relation(
                label=item.alias.name,
                qual=qual,
                columns=[_rel_column(o) for o in sub.outs],
                alias=item.alias,
                open=sub.open,
                sky=inherited_sky(sub.outs),
            )
            return FromResult(f"({sub.sql}) AS {qual}", [rel], self._relation_visible(rel))
        return self._join(item, outer)

    def _table(self, item: ast.TableName) -> FromResult:
        parts = item.parts
        cte = self.ctes.get(parts[0].key) if len(parts) == 1 else None
        alias_sql = f" AS {quote_ident(item.alias.key)}" if item.alias else ""
        if cte is not None:
            qual = quote_ident(item.alias.key) if item.alias else quote_ident(cte.name)
            rel = Relation(
                label=item.alias.name if item.alias else cte.name,
                qual=qual,
                columns=[_rel_column(o) for o in cte.result.outs],
                alias=item.alias,
                cte_name=cte.name,
                open=cte.result.open,
                sky=inherited_sky(cte.result.outs),
            )
            return FromResult(quote_ident(cte.name) + alias_sql, [rel], self._relation_visible(rel))
        table = self.catalog.resolve(parts)
        if table is None:  # permissive catalog, unknown table
            sql_name = ".".join(quote_ident(p.key) for p in parts)
            rel = Relation(
                label=ast.dotted_text(parts),
                qual=quote_ident(item.alias.key) if item.alias else sql_name,
                columns=[],
                alias=item.alias,
                open=True,
            )
            return FromResult(sql_name + alias_sql, [rel], self._relation_visible(rel))
        self.tables.add(table.qualified_name)
        sql_name = self.catalog.sql_name(table)
        rel = Relation(
            label=item.alias.name if item.alias else table.qualified_name,
            qual=quote_ident(item.alias.key) if item.alias else sql_name,
            columns=self.catalog.columns(table),
            table=table,
            alias=item.alias,
            sky=tuple((si.ra, si.dec, si.healpix) for si in table.sky_indexes),
            cells=tuple((si.ra, si.dec, si.cells) for si in table.sky_indexes if si.cells),
            cell_indexed=tuple(si.healpix for si in table.sky_indexes if si.cell_index),
        )
        visible = [Visible.of(rel, c) for c in rel.columns]
        return FromResult(sql_name + alias_sql, [rel], visible)

    def _join(self, node: ast.Join, outer: Scope | None) -> FromResult:
        left = self.from_item(node.left, outer)
        right = self.from_item(node.right, outer)
        right_sql = f"({right.sql})" if isinstance(node.right, ast.Join) else right.sql
        relations = left.relations + right.relations
        if node.kind == "CROSS":
            sql = f"{left.sql} CROSS JOIN {right_sql}"
            return FromResult(sql, relations, left.visible + right.visible)
        kind = {"INNER": "JOIN", "LEFT": "LEFT JOIN", "RIGHT": "RIGHT JOIN", "FULL": "FULL JOIN"}[
            node.kind
        ]
        if node.on is not None:
            _no_aggregate(node.on, "ON")
            scope = Scope(outer, relations, left.visible + right.visible)
            cond = self.condition(node.on, scope, "ON")
            sql = f"{left.sql} {kind} {right_sql} ON {cond.sql}"
            return FromResult(sql, relations, left.visible + right.visible)
        if node.natural:
            if any(v.wildcard for v in left.visible + right.visible):
                sql = f"{left.sql} NATURAL {kind} {right_sql}"
                return FromResult(sql, relations, left.visible + right.visible)
            right_names = {v.name for v in right.visible}
            names = [v.name for v in left.visible if v.name in right_names]
            pairs = [
                (
                    next(v for v in left.visible if v.name == n),
                    next(v for v in right.visible if v.name == n),
                )
                for n in dict.fromkeys(names)
            ]
        else:
            pairs = [
                (self._using_side(n, left, "left"), self._using_side(n, right, "right"))
                for n in node.using or ()
            ]
        if not pairs:
            sql = f"{left.sql} {kind} {right_sql} ON TRUE"
            return FromResult(sql, relations, left.visible + right.visible)
        cond = " AND ".join(f"{a.typed.sql} = {b.typed.sql}" for a, b in pairs)
        merged = []
        for a, b in pairs:
            if node.kind == "FULL":
                t = self.common_type([a.typed, b.typed], "USING", node.pos)
                t = t.with_sql(f"COALESCE({a.typed.sql}, {b.typed.sql})")
                t = replace(t, column=a.typed.column, ref=a.typed.ref)
            else:
                t = b.typed if node.kind == "RIGHT" else a.typed
            merged.append(Visible(a.name, t, None))
        used = {id(v) for pair in pairs for v in pair}
        visible = (
            merged
            + [v for v in left.visible if id(v) not in used]
            + [v for v in right.visible if id(v) not in used]
        )
        sql = f"{left.sql} {kind} {right_sql} ON ({cond})"
        return FromResult(sql, relations, visible)

    def _using_side(self, name: ast.Ident, side: FromResult, which: str) -> Visible:
        hits = [v for v in side.visible if not v.wildcard and name.matches(v.name)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise error_at(f"USING column '{name.name}' is ambiguous on the {which} side", name.pos)
        opened = [v for v in side.visible if v.wildcard and v.relation is not None]
        if opened:
            rel = opened[0].relation
            sql = f"{rel.qual}.{quote_ident(name.key)}"
            return Visible(name.key, Typed(sql, "any", name_hint=name.key), rel)
        raise error_at(
            f"USING column '{name.name}' is not a column of the {which} side of the join", name.pos
        )

    # ---- names ----

    def _find_relation(
        self, qualifier: tuple[ast.Ident, ...], scope: Scope, pos
    ) -> Relation | None:
        for lenient in (False, True):
            s: Scope | None = scope
            while s is not None:
                rels = [r for r in s.relations if r.answers_to(qualifier, lenient)]
                if len(rels) > 1:
                    text = ast.dotted_text(qualifier)
                    raise error_at(f"'{text}' is ambiguous: alias each table", qualifier[0].pos)
                if rels:
                    return rels[0]
                s = s.parent
        if self.permissive:
            return None
        text = ast.dotted_text(qualifier)
        names = [r.label for s in chain(scope) for r in s.relations]
        close = difflib.get_close_matches(text.lower(), [n.lower() for n in names], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listed = ", ".join(names) if names else "none"
        raise error_at(
            f"'{text}' is not a table or alias of the FROM clause (tables: {listed}){hint}",
            qualifier[0].pos,
        )

    def column(self, node: ast.ColumnRef, scope: Scope) -> Typed:
        parts = node.parts
        if len(parts) == 1:
            found = self._lookup_unqualified(parts[0], scope)
            if found is not None:
                return found
            if self.permissive:
                key = parts[0].key
                return Typed(quote_ident(key), "any", name_hint=key)
            raise self._unknown_column(parts[0], scope)
        qualifier, name = parts[:-1], parts[-1]
        rel = self._find_relation(qualifier, scope, node.pos)
        if rel is None:
            sql = ".".join(quote_ident(p.key) for p in parts)
            return Typed(sql, "any", name_hint=name.key)
        hits = rel.find(name)
        if len(hits) == 1:
            return rel.typed(hits[0])
        if len(hits) > 1:
            raise error_at(f"column '{name.name}' is ambiguous in {rel.label}", name.pos)
        if rel.open or self.permissive:
            return Typed(f"{rel.qual}.{quote_ident(name.key)}", "any", name_hint=name.key)
        raise error_at(
            f"unknown column '{name.name}' in {rel.label}"
            + suggest(name.name, [c.name for c in rel.columns]),
            name.pos,
        )

    def _lookup_unqualified(self, name: ast.Ident, scope: Scope) -> Typed | None:
        s: Scope | None = scope
        while s is not None:
            hits = [v for v in s.visible if not v.wildcard and name.matches(v.name)]
            if len(hits) > 1:
                where = sorted({v.relation.label for v in hits if v.relation is not None})
                raise error_at(
                    f"column '{name.name}' is ambiguous: it is in {', '.join(where)}; "
                    "qualify it with the table name or alias",
                    name.pos,
                )
            if hits:
                return hits[0].typed
            s = s.parent
        return None

    def _unknown_column(self, name: ast.Ident, scope: Scope) -> AdqlError:
        rels = scope.relations
        candidates = [v.name for s in chain(scope) for v in s.visible if not v.wildcard]
        if len(rels) == 1:
            return error_at(
                f"unknown column '{name.name}' in {rels[0].label}" + suggest(name.name, candidates),
                name.pos,
            )
        return error_at(f"unknown column '{name.name}'" + suggest(name.name, candidates), name.pos)


# ---- module helpers ------------------------------------------------------------------------


def _rel_column(out: Out) -> RelColumn:
    proto = replace(
        out.typed,
        sql="",
        column=out.column,
        const=None,
        literal=False,
        geo=None,
        ref=None,
        name_hint=out.name,
    )
    return RelColumn(out.name, proto, out.column)


def _out_matches(out: Out, name: ast.Ident) -> bool:
    if out.given is None:
        return False
    if out.given_quoted:
        return name.matches(out.given) if name.quoted else name.name == out.given
    return name.matches(out.given)


def _unique_names(outs: list[Out]) -> None:
    """Make result names unique (case-insensitively): TAP clients fail on duplicates."""
    seen: set[str] = set()
    for out in outs:
        name = out.name
        if name.lower() in seen:
            k = 2
            while f"{name}_{k}".lower() in seen:
                k += 1
            name = f"{name}_{k}"
        seen.add(name.lower())
        out.name = name


def _no_constant(node: ast.Expr, clause: str) -> None:
    """PostgreSQL reads an integer as a position and refuses any other constant."""
    if isinstance(node, ast.Literal) and node.kind != "int":
        raise error_at(
            f"{clause} needs a column, a position or an expression, not a constant", node.pos
        )


def _no_aggregate(node: ast.Expr, clause: str) -> None:
    found = _find_aggregate(node)
    if found is not None:
        raise error_at(
            f"aggregate functions such as {found[0]} are not allowed in {clause}", found[1]
        )


def _find_aggregate(node) -> tuple[str, ast.Pos] | None:
    """The first aggregate in an expression, not looking into subqueries (they have their own)."""
    if isinstance(node, ast.Aggregate):
        return node.name, node.pos
    udf = UDFS.get(node.name) if isinstance(node, ast.FuncCall) and node.udf else None
    if udf is not None and udf.aggregate:
        return node.name, node.pos
    if isinstance(node, ast.Select | ast.SetOp | ast.Query):
        return None
    if isinstance(node, tuple):
        children = node
    elif is_dataclass(node):
        children = tuple(getattr(node, f.name) for f in fields(node))
    else:
        return None
    for child in children:
        found = _find_aggregate(child)
        if found is not None:
            return found
    return None
