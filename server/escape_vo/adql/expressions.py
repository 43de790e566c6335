"""Translation of ADQL expressions: type checks, SQL text and the metadata of each value.

A mixin of the translator: it needs `query` (for subqueries), `column` (for names),
`permissive` and `catalog` from the class that uses it.
"""

from __future__ import annotations

from dataclasses import replace

from . import ast, functions, geometry
from . import types as ty
from .errors import error_at
from .scope import Result, Scope
from .sqltext import float_literal, quote_string
from .types import Typed


class ExpressionTranslator:
    def value(self, node: ast.Expr, scope: Scope, where: str) -> Typed:
        t = self.expr(node, scope)
        if t.kind == "bool" and not (t.column is not None and t.ref is not None):
            raise error_at(
                f"a condition cannot be used as {where}; use CASE WHEN ... THEN 1 ELSE 0 END",
                _pos(node),
            )
        return t

    def condition(self, node: ast.Expr, scope: Scope, clause: str) -> Typed:
        t = self.expr(node, scope)
        if t.kind != "bool":
            hint = ""
            if t.geo is not None and t.geo.kind in ("contains", "intersects"):
                hint = f" (write {t.geo.kind.upper()}(...) = 1)"
            raise error_at(
                f"{clause} needs a condition such as x > 1; got {t.describe()}{hint}", _pos(node)
            )
        return t

    def expr(self, node: ast.Expr, scope: Scope) -> Typed:
        method = getattr(self, "_x_" + type(node).__name__)
        return method(node, scope)

    def _x_Literal(self, node: ast.Literal, scope: Scope) -> Typed:
        if node.kind == "int":
            v = node.value
            if v > 2**63 - 1:
                return ty.number(float_literal(float(v)), const=float(v), literal=True)
            datatype = "int" if v <= 2**31 - 1 else "long"
            return ty.number(str(v), datatype, const=float(v), literal=True)
        if node.kind == "float":
            return ty.number(float_literal(node.value), const=node.value, literal=True)
        if node.kind == "string":
            return ty.string(quote_string(node.value), literal=True, text=node.value)
        return Typed("NULL", "null", datatype="char", arraysize="*", literal=True)

    def _x_ColumnRef(self, node: ast.ColumnRef, scope: Scope) -> Typed:
        return self.column(node, scope)

    def _x_FuncCall(self, node: ast.FuncCall, scope: Scope) -> Typed:
        if node.udf and node.name not in functions.UDFS:
            raise functions.unknown_function(node.name, node.pos)
        args = [self.value(a, scope, f"an argument of {node.name}") for a in node.args]
        return functions.call(self, node.name, args, node.udf, node.pos)

    def _x_Aggregate(self, node: ast.Aggregate, scope: Scope) -> Typed:
        arg = None if node.arg is None else self.value(node.arg, scope, f"argument of {node.name}")
        return functions.aggregate(self, node.name, arg, node.distinct, node.pos)

    def _x_Cast(self, node: ast.Cast, scope: Scope) -> Typed:
        x = self.value(node.expr, scope, "the argument of CAST")
        return functions.cast(self, x, node.type_name, node.length, node.pos)

    def _x_Case(self, node: ast.Case, scope: Scope) -> Typed:
        parts = ["CASE"]
        if node.operand is not None:
            operand = self.value(node.operand, scope, "a CASE operand")
            parts.append(operand.sql)
        results = []
        for when, then in node.whens:
            if node.operand is None:
                cond = self.condition(when, scope, "WHEN")
            else:
                cond = self.value(when, scope, "a WHEN value")
                self.check_comparable(operand, cond, "CASE", _pos(when))
            result = self.value(then, scope, "a THEN result")
            results.append(result)
            parts.append(f"WHEN {cond.sql} THEN {result.sql}")
        if node.else_ is not None:
            result = self.value(node.else_, scope, "an ELSE result")
            results.append(result)
            parts.append(f"ELSE {result.sql}")
        parts.append("END")
        common = self.common_type(results, "the results of CASE", node.pos)
        return common.with_sql("(" + " ".join(parts) + ")", name_hint="case")

    def _x_Unary(self, node: ast.Unary, scope: Scope) -> Typed:
        if node.op == "NOT":
            inner = self.condition(node.operand, scope, "NOT")
            return ty.boolean(f"(NOT {inner.sql})")
        x = self.value(node.operand, scope, f"the operand of {node.op}")
        if node.op == "~":
            self._need_integer(x, "~", node.pos)
            return self.plain(x).with_sql(f"(~{x.sql})", const=None)
        self._need_number(x, node.op, node.pos)
        if node.op == "+":
            return x
        const = -x.const if x.const is not None else None
        base = self.plain(x) if x.kind == "num" else ty.number("", unit=x.unit)
        return base.with_sql(f"(-{x.sql})", const=const, literal=x.literal)

    def _x_Binary(self, node: ast.Binary, scope: Scope) -> Typed:
        if node.op in ("AND", "OR"):
            a = self.condition(node.left, scope, node.op)
            b = self.condition(node.right, scope, node.op)
            return ty.boolean(f"({a.sql} {node.op} {b.sql})")
        a = self.value(node.left, scope, f"an operand of {node.op}")
        b = self.value(node.right, scope, f"an operand of {node.op}")
        if node.op == "||":
            return ty.string(f"({self._text(a, node.pos)} || {self._text(b, node.pos)})")
        if node.op in ("&", "|", "^"):
            self._need_integer(a, node.op, node.pos)
            self._need_integer(b, node.op, node.pos)
            op = "#" if node.op == "^" else node.op
            datatype = ty.wider_numeric(_int_type(a), _int_type(b))
            return ty.number(f"({a.sql} {op} {b.sql})", datatype)
        return self._arithmetic(node.op, a, b, node.pos)

    def _arithmetic(self, op: str, a: Typed, b: Typed, pos) -> Typed:
        self._need_number(a, op, pos, allow_string_literal=b.kind != "str")
        self._need_number(b, op, pos, allow_string_literal=a.kind != "str")
        types = [t.datatype if t.kind == "num" else None for t in (a, b)]
        if a.kind == "any" or b.kind == "any":
            datatype = "double"
        elif types[0] and types[1]:
            datatype = ty.wider_numeric(types[0], types[1])
        else:
            datatype = types[0] or types[1] or "double"
        if datatype == "float" and any(t in ty.INTEGER_TYPES for t in types if t):
            datatype = "double"
        const = _fold(op, a.const, b.const, datatype in ty.INTEGER_TYPES)
        return ty.number(
            f"({a.sql} {op} {b.sql})",
            datatype,
            unit=_unit_of(op, a, b),
            const=const,
            literal=a.literal and b.literal,
        )

    def _text(self, t: Typed, pos) -> str:
        if t.kind in ("geom", "array"):
            raise error_at(f"|| joins strings; got {t.describe()}", pos)
        if t.kind in ("num", "time"):
            return f"CAST({t.sql} AS text)"
        return t.sql

    def _need_number(self, t: Typed, op: str, pos, allow_string_literal: bool = False) -> None:
        if t.kind in ("num", "any", "null"):
            return
        if allow_string_literal and t.kind == "str" and t.literal:
            _literal_fits(t, "num", pos)
            return
        raise error_at(f"{op} needs numbers; got {t.describe()}", pos)

    def _need_integer(self, t: Typed, op: str, pos) -> None:
        if t.kind in ("any", "null") or t.is_integer:
            return
        raise error_at(f"the bitwise operator {op} needs integers; got {t.describe()}", pos)

    def _x_Compare(self, node: ast.Compare, scope: Scope) -> Typed:
        a = self.value(node.left, scope, "an operand of a comparison")
        b = self.value(node.right, scope, "an operand of a comparison")
        self.check_comparable(a, b, node.op, node.pos)
        sql = f"({a.sql} {node.op} {b.sql})"
        return ty.boolean(geometry.rewrite_comparison(node.op, a, b, sql, node.pos))

    def _x_Between(self, node: ast.Between, scope: Scope) -> Typed:
        x = self.value(node.expr, scope, "the operand of BETWEEN")
        low = self.value(node.low, scope, "a bound of BETWEEN")
        high = self.value(node.high, scope, "a bound of BETWEEN")
        self.check_comparable(x, low, "BETWEEN", node.pos)
        self.check_comparable(x, high, "BETWEEN", node.pos)
        neg = "NOT " if node.negated else ""
        return ty.boolean(f"({x.sql} {neg}BETWEEN {low.sql} AND {high.sql})")

    def _x_InList(self, node: ast.InList, scope: Scope) -> Typed:
        x = self.value(node.expr, scope, "the operand of IN")
        items = [self.value(i, scope, "a value of an IN list") for i in node.items]
        for item in items:
            self.check_comparable(x, item, "IN", node.pos)
        neg = "NOT " if node.negated else ""
        return ty.boolean(f"({x.sql} {neg}IN ({', '.join(i.sql for i in items)}))")

    def _x_InQuery(self, node: ast.InQuery, scope: Scope) -> Typed:
        x = self.value(node.expr, scope, "the operand of IN")
        sub = self.query(node.query, scope, None)
        if not sub.open:
            self._single_column(sub, "IN", node.pos)
            self.check_comparable(x, sub.outs[0].typed, "IN", node.pos)
        neg = "NOT " if node.negated else ""
        return ty.boolean(f"({x.sql} {neg}IN ({sub.sql}))")

    def _x_Like(self, node: ast.Like, scope: Scope) -> Typed:
        op = "ILIKE" if node.ilike else "LIKE"
        x = self.value(node.expr, scope, f"the operand of {op}")
        pattern = self.value(node.pattern, scope, f"the pattern of {op}")
        for t in (x, pattern):
            if t.kind not in ("str", "any", "null"):
                raise error_at(f"{op} compares strings; got {t.describe()}", node.pos)
        escape = "''"
        if node.escape is not None:
            e = self.value(node.escape, scope, "the ESCAPE character")
            if not (e.kind == "str" and e.literal and len(e.text or "") == 1):
                raise error_at("ESCAPE needs a string literal of one character", node.pos)
            escape = e.sql
        neg = "NOT " if node.negated else ""
        return ty.boolean(f"({x.sql} {neg}{op} {pattern.sql} ESCAPE {escape})")

    def _x_IsNull(self, node: ast.IsNull, scope: Scope) -> Typed:
        x = self.value(node.expr, scope, "the operand of IS NULL")
        return ty.boolean(f"({x.sql} IS {'NOT ' if node.negated else ''}NULL)")

    def _x_Exists(self, node: ast.Exists, scope: Scope) -> Typed:
        sub = self.query(node.query, scope, None)
        return ty.boolean(f"(EXISTS ({sub.sql}))")

    def _x_ScalarSubquery(self, node: ast.ScalarSubquery, scope: Scope) -> Typed:
        sub = self.query(node.query, scope, None)
        if sub.open:
            return Typed(f"({sub.sql})", "any")
        self._single_column(sub, "a scalar subquery", node.pos)
        out = sub.outs[0]
        return self.plain(out.typed).with_sql(f"({sub.sql})", name_hint=out.name)

    def _single_column(self, sub: Result, what: str, pos) -> None:
        if len(sub.outs) != 1:
            raise error_at(f"the subquery of {what} must return one column", pos)

    # ---- type helpers used by functions.py ----

    def plain(self, t: Typed) -> Typed:
        """The same type, no longer a column reference or constant (for derived values)."""
        return replace(t, column=None, ref=None, geo=None, const=None, literal=False)

    def check_comparable(self, a: Typed, b: Typed, op: str, pos) -> None:
        kinds = {a.kind, b.kind}
        if kinds & {"any", "null"} or len(kinds) == 1:
            if kinds == {"bool"}:
                raise error_at(f"{op} cannot compare conditions", pos)
            return
        for x, y in ((a, b), (b, a)):
            if x.kind == "str" and x.literal and y.kind in ("num", "time"):
                _literal_fits(x, y.kind, pos)
                return
        raise error_at(f"{op} cannot compare {a.describe()} with {b.describe()}", pos)

    def common_type(self, types: list[Typed], what: str, pos) -> Typed:
        """The type of a value that is one of `types` (CASE, COALESCE, UNION columns)."""
        real = [t for t in types if t.kind not in ("null", "any")]
        if not real:
            if any(t.kind == "any" for t in types):
                return Typed("", "any")
            return replace(types[0], column=None, ref=None, geo=None, const=None)
        firm = [t for t in real if not (t.kind == "str" and t.literal)] or real
        kinds = {t.kind for t in firm}
        if len(kinds) == 1:
            for t in real:
                if t.kind == "str" and t.literal:
                    _literal_fits(t, firm[0].kind, pos)
        if len(kinds) > 1:
            a, b = firm[0], next(t for t in firm if t.kind != firm[0].kind)
            raise error_at(f"{what} mixes {a.describe()} and {b.describe()}", pos)
        first = self.plain(firm[0])
        if first.kind == "num":
            datatype = first.datatype
            for t in firm[1:]:
                datatype = ty.wider_numeric(datatype, t.datatype)
            units = {t.unit for t in firm if not t.literal}
            unit = units.pop() if len(units) == 1 else None
            return replace(first, datatype=datatype, unit=unit, ucd=None)
        if first.kind == "str":
            sizes = {t.arraysize for t in firm}
            return replace(first, arraysize=sizes.pop() if len(sizes) == 1 else "*")
        if first.kind == "geom" and any(t.shape != first.shape for t in firm):
            return ty.geometry(first.sql, "region")
        return first


def _literal_fits(t: Typed, kind: str, pos) -> None:
    """A string literal used as a number must read as one (PostgreSQL would fail at run time)."""
    if kind != "num":
        return
    try:
        float(t.text or "")
    except ValueError:
        raise error_at(f"'{t.text}' is used as a number but is not one", pos) from None


def _pos(node) -> ast.Pos:
    return getattr(node, "pos", None)


def _int_type(t: Typed) -> str:
    return t.datatype if t.kind == "num" else "long"


def _fold(op: str, a: float | None, b: float | None, integer: bool) -> float | None:
    if a is None or b is None:
        return None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if integer:
                return float(int(a / b))
            return a / b
    except (ZeroDivisionError, OverflowError):
        return None
    return None


def _unit_of(op: str, a: Typed, b: Typed) -> str | None:
    if op in ("+", "-"):
        if a.unit == b.unit:
            return a.unit
        if a.unit and b.unit is None and b.const is not None:
            return a.unit
        if b.unit and a.unit is None and a.const is not None:
            return b.unit
        return None
    if a.unit and b.unit:
        from . import units

        return units.combine(a.unit, b.unit, op)
    if a.unit and b.const is not None:
        return a.unit
    if b.unit and a.const is not None and op == "*":
        return b.unit
    return None
